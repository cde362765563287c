// Training augmentation, batched on tensors, with the semantics of the datasheet's torchvision
// pipeline (applied per sample in this order):
//
//   RandomHorizontalFlip(0.5), RandomRotation(45), RandomResizedCrop(size, (0.6, 1), (3/4, 4/3)),
//   ColorJitter(0.5, 0.5, 0.5, 0.1), RandomAffine(0, translate (0.1, 0.1), scale (0.8, 1.2))
//
// Parameters are drawn per sample from torchvision's distributions (same ranges, same crop
// rejection sampling, same integer rounding), from one seeded generator (not torchvision's
// stream): params.ts. The four geometric transforms of a sample are composed into one 2x3 affine
// matrix and the whole batch is resampled once (one sampling grid, as affineGrid would make it,
// and gridSample): geometry.ts. Colour jitter runs as a few whole-group tensor operations per
// stage, in place: colour.ts. The config and its one validation: config.ts. Where this differs
// from running torchvision per sample:
// - Colour jitter runs before the warp rather than between crop and affine. Jitter is per pixel,
//   so the only differences are that contrast's mean is taken over the whole source image, and
//   that areas filled in by rotation or translation stay black (torchvision's contrast would
//   lift rotation's black corners towards the mean).
// - One interpolation for the composed warp (bilinear by default) where torchvision resamples
//   three times (nearest for rotation and affine, bilinear for the crop).
// - Colour jitter uses torchvision's tensor kernels (float HSV, float grayscale mean), not its
//   PIL ones (8-bit HSV), with the arithmetic regrouped (blends as f * img + constant + weighted
//   grayscale, the hue from arithmetic masks): equal up to float32 rounding (a few 1e-6).
// Evaluation applies no augmentation: call this on training batches only.
import * as torch from '../../torch/index.js';
import { colorJitter, isColourIdentity } from './colour.js';
import type { AugmentConfig, Interpolation } from './config.js';
import { isGeometryIdentity, warp } from './geometry.js';
import { sampleParams, type SampleParams } from './params.js';
import { takeScratch } from './scratch.js';

export { AugmentSchema, datasheetAugment, type AugmentConfig, type Interpolation } from './config.js';
export { identityParams, sampleParams, type CropBox, type JitterOp, type SampleParams } from './params.js';

/** Samples parameters from `gen` and applies them: the training-time entry point. */
export function augment(x: torch.Tensor, config: AugmentConfig, gen: torch.Generator): torch.Tensor {
  const [n, , height, width] = batchShape(x);
  return applyAugment(x, sampleParams(n, height, width, config, gen), config.interpolation);
}

/**
 * Applies per-sample parameters to a float32 NCHW batch in [-1, 1]; returns a new tensor of the
 * same shape in [-1, 1]. Work is skipped for stages where every sample's parameters are identity.
 */
export function applyAugment(x: torch.Tensor, params: readonly SampleParams[], interpolation: Interpolation = 'bilinear'): torch.Tensor {
  const [n, channels, height, width] = batchShape(x);
  if (params.length !== n) throw new RangeError(`applyAugment: ${params.length} parameter sets for a batch of ${n}`);
  const colour = params.some((p) => !isColourIdentity(p));
  const geometric = params.some((p) => !isGeometryIdentity(p, height, width));
  if (colour && channels !== 3) throw new RangeError(`applyAugment: colour jitter needs RGB images, got ${channels} channels`);
  if (!colour && !geometric) return x.clone();
  // Work in [0, 2], i.e. x + 1: twice torchvision's [0, 1] range. Black is 0 there, which is
  // what gridSample's zero padding fills in, and every operation below (blends, clamps, the HSV
  // hue shift, the warp) commutes exactly with a factor of two (a power of two: no float
  // rounding changes), so the result is exactly twice the [0, 1] computation, without the two
  // passes that scaling to [0, 1] and back would cost.
  //
  // Everything up to the warp runs in place in scratch tensors made once per call (scratch.ts).
  return torch.tidy(() => {
    const work = takeScratch(n, channels, height, width);
    const image = colour ? colorJitter(x, params, work) : work.image.copyInPlace(x).addInPlace(1); // [0, 2], original order
    const result = geometric ? warp(image, params, interpolation, work.grid) : image.clone();
    return result.addInPlace(-1);
  });
}

function batchShape(x: torch.Tensor): [number, number, number, number] {
  if (x.ndim !== 4 || x.dtype !== 'float32') {
    throw new RangeError(`augment: expected a float32 NCHW batch, got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  return x.shape as [number, number, number, number];
}
