// A PNG contact sheet for eyeballing augmentation: one row per sample, labelled (with its grade)
// at the left; the first column shows the real image, each column after it one augmented draw of
// it, all upscaled with nearest-neighbour.
import sharp from 'sharp';
import * as torch from '../torch/index.js';
import { augment as augmentBatch, type AugmentConfig } from './augment/index.js';
import { textSvg } from './picture-text.js';

/** Width of the label column at the left of the rows, when there are labels. */
export const LABEL_WIDTH = 130;

export interface MontageOptions {
  /** Samples (rows), taken from the start of the batch. Default 8. */
  count?: number;
  /** Augmented columns right of the originals. Default 4. */
  variants?: number;
  /** A label per sample (e.g. its grade), written at the left of its row. */
  labels?: string[];
  /** Integer upscaling factor for visibility. Default 4. */
  scale?: number;
}

/**
 * Writes the montage of `images` (float32 NCHW RGB in [-1, 1]) to `path` as PNG and returns its
 * pixel size: width = (1 + variants) * W * scale (+ LABEL_WIDTH with labels), height = count * H * scale.
 */
export async function writeMontage(
  path: string,
  images: torch.Tensor,
  augment: AugmentConfig,
  gen: torch.Generator,
  options: MontageOptions = {},
): Promise<{ width: number; height: number }> {
  const { count = 8, variants = 4, scale = 4, labels } = options;
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
  if (labels && labels.length < count) throw new RangeError(`writeMontage: ${labels.length} labels for ${count} rows`);
  const columns = 1 + variants;
  const pixels = torch.tidy(() => {
    const originals = images.slice(0, 0, count);
    const grid = torch.stack([originals, ...Array.from({ length: variants }, () => augmentBatch(originals, augment, gen))]);
    // [columns, count, C, H, W] -> [count * H, columns * W, C]: one raw RGB image, row-major.
    return grid
      .permute([1, 3, 0, 4, 2])
      .reshape([count * height, columns * width, 3])
      .add(1)
      .mul(127.5)
      .round()
      .clamp(0, 255)
      .to('uint8')
      .data() as Uint8Array;
  });
  const grid = { width: columns * width * scale, height: count * height * scale };
  const scaled = await sharp(pixels, { raw: { width: columns * width, height: count * height, channels: 3 } })
    .resize(grid.width, grid.height, { kernel: 'nearest' })
    .raw()
    .toBuffer();
  const left = labels ? LABEL_WIDTH : 0;
  const rowHeight = height * scale;
  await sharp({ create: { width: left + grid.width, height: grid.height, channels: 3, background: '#ffffff' } })
    .composite([
      { input: scaled, raw: { ...grid, channels: 3 }, top: 0, left },
      ...(labels ?? [])
        .slice(0, count)
        .map((label, row) => ({ input: textSvg(LABEL_WIDTH, rowHeight, label), top: row * rowHeight, left: 0 })),
    ])
    .removeAlpha()
    .png()
    .toFile(path);
  return { width: left + grid.width, height: grid.height };
}
