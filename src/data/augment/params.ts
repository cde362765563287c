// Per-sample augmentation parameters, drawn from torchvision's distributions (same ranges, same
// crop rejection sampling, same integer rounding) from one seeded generator (not torchvision's stream).
import * as torch from '../../torch/index.js';
import type { AugmentConfig } from './config.js';

export type JitterOp = 'brightness' | 'contrast' | 'saturation' | 'hue';
export const JITTER_OPS: readonly JitterOp[] = ['brightness', 'contrast', 'saturation', 'hue'];

/** A crop box in pixels of the (flipped, rotated) image, as torchvision's (i, j, h, w). */
export interface CropBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

/** Everything random about one sample's augmentation. Disabled transforms get identity values. */
export interface SampleParams {
  readonly flip: boolean;
  /** Degrees, counter-clockwise. */
  readonly angle: number;
  readonly crop: CropBox;
  /** Whole pixels [dx, dy], right and down. */
  readonly translate: readonly [number, number];
  readonly scale: number;
  readonly brightness: number;
  readonly contrast: number;
  readonly saturation: number;
  readonly hue: number;
  /** The order in which the four colour operations apply (torchvision's randperm(4)). */
  readonly jitterOrder: readonly JitterOp[];
}

/** Parameters that leave an image of this size unchanged. */
export function identityParams(height: number, width: number): SampleParams {
  return {
    flip: false,
    angle: 0,
    crop: { top: 0, left: 0, height, width },
    translate: [0, 0],
    scale: 1,
    brightness: 1,
    contrast: 1,
    saturation: 1,
    hue: 0,
    jitterOrder: JITTER_OPS,
  };
}

// Every sample consumes the same number of uniform draws whether or not a transform is enabled,
// so switching one transform off does not change the parameters the others get for a seed.
const CROP_ATTEMPTS = 10; // torchvision's RandomResizedCrop tries 10 boxes, then crops the centre
// flip, angle, crop (area and ratio per attempt, then top and left), affine (dx, dy, zoom),
// the four jitter factors, and four keys that sort into the jitter order.
const DRAWS_PER_SAMPLE = 1 + 1 + 2 * CROP_ATTEMPTS + 2 + 3 + 4 + 4;

/** Draws the augmentation parameters of `n` images of height x width; `config` is parsed (AugmentSchema), not checked here. */
export function sampleParams(n: number, height: number, width: number, config: AugmentConfig, gen: torch.Generator): SampleParams[] {
  const uniforms = torch.tidy(() => gen.uniform([n, DRAWS_PER_SAMPLE], 0, 1, 'float64').data() as Float64Array);
  const identity = identityParams(height, width);
  const { horizontalFlip, rotation, resizedCrop, colorJitter, affine } = config;
  const params: SampleParams[] = [];
  for (let i = 0; i < n; i++) {
    let next = i * DRAWS_PER_SAMPLE;
    const draw = (): number => uniforms[next++];
    const take = (count: number): number[] => Array.from({ length: count }, draw);

    const flip = draw() < horizontalFlip.p && horizontalFlip.enabled;
    const angle = between(draw(), -rotation.degrees, rotation.degrees);
    const crop = sampleCrop(height, width, resizedCrop, take(2 * CROP_ATTEMPTS), take(2));
    const [dx, dy, zoom] = take(3);
    const [brightness, contrast, saturation, hue] = take(4);
    const orderKeys = take(4);

    params.push({
      flip,
      angle: rotation.enabled ? angle : 0,
      crop: resizedCrop.enabled ? crop : identity.crop,
      translate: affine.enabled
        ? [
            pythonRound(between(dx, -affine.translate[0] * width, affine.translate[0] * width)),
            pythonRound(between(dy, -affine.translate[1] * height, affine.translate[1] * height)),
          ]
        : identity.translate,
      scale: affine.enabled ? between(zoom, affine.scale[0], affine.scale[1]) : 1,
      brightness: colorJitter.enabled ? jitterFactor(brightness, colorJitter.brightness) : 1,
      contrast: colorJitter.enabled ? jitterFactor(contrast, colorJitter.contrast) : 1,
      saturation: colorJitter.enabled ? jitterFactor(saturation, colorJitter.saturation) : 1,
      hue: colorJitter.enabled ? between(hue, -colorJitter.hue, colorJitter.hue) : 0,
      // Sorting four uniforms gives a uniformly random permutation, like randperm(4).
      jitterOrder: [0, 1, 2, 3].sort((a, b) => orderKeys[a] - orderKeys[b]).map((k) => JITTER_OPS[k]),
    });
  }
  return params;
}

const between = (u: number, low: number, high: number): number => low + u * (high - low);
const jitterFactor = (u: number, amount: number): number => between(u, Math.max(0, 1 - amount), 1 + amount);

/** Python's round(): halves go to the even neighbour. torchvision rounds crop sizes and shifts with it. */
function pythonRound(x: number): number {
  const nearest = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : nearest;
}

/** RandomResizedCrop.get_params: `attempts` holds (area, log-ratio) draw pairs, `position` (top, left). */
function sampleCrop(
  height: number,
  width: number,
  { scale, ratio }: AugmentConfig['resizedCrop'],
  attempts: number[],
  position: number[],
): CropBox {
  const area = height * width;
  const [logMin, logMax] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let a = 0; a < CROP_ATTEMPTS; a++) {
    const targetArea = area * between(attempts[2 * a], scale[0], scale[1]);
    const aspect = Math.exp(between(attempts[2 * a + 1], logMin, logMax));
    const w = pythonRound(Math.sqrt(targetArea * aspect));
    const h = pythonRound(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = Math.floor(position[0] * (height - h + 1));
      const left = Math.floor(position[1] * (width - w + 1));
      return { top, left, height: h, width: w };
    }
  }
  // Fallback: the largest centred box whose aspect ratio is inside the allowed range.
  const inRatio = width / height;
  let [w, h] = [width, height];
  if (inRatio < ratio[0]) h = pythonRound(w / ratio[0]);
  else if (inRatio > ratio[1]) w = pythonRound(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}
