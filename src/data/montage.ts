// A PNG contact sheet for eyeballing augmentation: the first row shows real samples, each row
// below shows one augmented draw of the same samples, all upscaled with nearest-neighbour.
import sharp from 'sharp';
import * as torch from '../torch/index.js';
import { augment as augmentBatch, type AugmentConfig } from './augment/index.js';

export interface MontageOptions {
  /** Samples (columns), taken from the start of the batch. Default 8. */
  count?: number;
  /** Augmented rows under the originals. Default 4. */
  variants?: number;
  /** Integer upscaling factor for visibility. Default 4. */
  scale?: number;
}

/**
 * Writes the montage of `images` (float32 NCHW RGB in [-1, 1]) to `path` as PNG and returns its
 * pixel size: width = count * W * scale, height = (1 + variants) * H * scale.
 */
export async function writeMontage(
  path: string,
  images: torch.Tensor,
  augment: AugmentConfig,
  gen: torch.Generator,
  options: MontageOptions = {},
): Promise<{ width: number; height: number }> {
  const { count = 8, variants = 4, scale = 4 } = options;
  if (images.ndim !== 4 || images.shape[1] !== 3) {
    throw new RangeError(`writeMontage: expected RGB NCHW images, got [${images.shape.join(', ')}]`);
  }
  const [n, , height, width] = images.shape as [number, number, number, number];
  for (const [name, value, max] of [
    ['count', count, n],
    ['variants', variants, Infinity],
    ['scale', scale, Infinity],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw new RangeError(`writeMontage: ${name} must be an integer in [1, ${max}], got ${value}`);
    }
  }
  const rows = 1 + variants;
  const pixels = torch.tidy(() => {
    const originals = images.slice(0, 0, count);
    const grid = torch.stack([originals, ...Array.from({ length: variants }, () => augmentBatch(originals, augment, gen))]);
    // [rows, count, C, H, W] -> [rows * H, count * W, C]: one raw RGB image, row-major.
    return grid
      .permute([0, 3, 1, 4, 2])
      .reshape([rows * height, count * width, 3])
      .add(1)
      .mul(127.5)
      .round()
      .clamp(0, 255)
      .to('uint8')
      .data() as Uint8Array;
  });
  const size = { width: count * width * scale, height: rows * height * scale };
  await sharp(pixels, { raw: { width: count * width, height: rows * height, channels: 3 } })
    .resize(size.width, size.height, { kernel: 'nearest' })
    .png()
    .toFile(path);
  return size;
}
