// The augmentation config: the datasheet's five transforms, each switchable. AugmentSchema is its
// only validation: sampleParams and augment take parsed configs and do not check them again.
import { z } from 'zod';

const fraction = z.number().min(0).max(1);
const positive = z.number().positive();

/** A [min, max] range (min <= max) whose ends `end` accepts. */
const range = (end: z.ZodNumber, defaults: readonly [number, number]) =>
  z
    .tuple([end, end])
    .readonly()
    .refine(([min, max]) => min <= max, 'must be [min, max] with min <= max')
    .default(defaults);

/**
 * Each transform in torchvision's terms (the order and the differences: index.ts). The defaults
 * are the default recipe's milder strengths (RESULTS.md: the datasheet's hue/saturation jitter and
 * deep crops cost validation AUC at 28x28); `datasheetAugment` is the datasheet's own. Parsed
 * configs are frozen, so a shared one such as `datasheetAugment` cannot be changed by a caller.
 */
export const AugmentSchema = z
  .object({
    /** RandomHorizontalFlip(p). */
    horizontalFlip: z
      .object({ enabled: z.boolean().default(true), p: fraction.default(0.5) })
      .strict()
      .readonly()
      .prefault({}),
    /** RandomRotation(degrees): counter-clockwise angle uniform in [-degrees, degrees]. */
    rotation: z
      .object({ enabled: z.boolean().default(true), degrees: z.number().min(0).default(45) })
      .strict()
      .readonly()
      .prefault({}),
    /** RandomResizedCrop back to the input size: `scale` is the area fraction, `ratio` width/height. */
    resizedCrop: z
      .object({ enabled: z.boolean().default(true), scale: range(fraction, [0.85, 1]), ratio: range(positive, [0.9, 1 / 0.9]) })
      .strict()
      .readonly()
      .prefault({}),
    /** ColorJitter: factors uniform in [max(0, 1 - v), 1 + v]; hue shift uniform in [-hue, hue] turns. */
    colorJitter: z
      .object({
        enabled: z.boolean().default(true),
        brightness: z.number().min(0).default(0.2),
        contrast: z.number().min(0).default(0.2),
        saturation: z.number().min(0).default(0),
        hue: z.number().min(0).max(0.5).default(0),
      })
      .strict()
      .readonly()
      .prefault({}),
    /** RandomAffine(degrees 0, translate, scale): shift up to translate * size pixels, zoom in `scale`. */
    affine: z
      .object({
        enabled: z.boolean().default(true),
        translate: z.tuple([fraction, fraction]).readonly().default([0.05, 0.05]),
        scale: range(positive, [0.95, 1.05]),
      })
      .strict()
      .readonly()
      .prefault({}),
    /** How the composed warp samples the source image (bilinear is the closer to torchvision: BENCHMARKS.md). */
    interpolation: z.enum(['bilinear', 'nearest']).default('bilinear'),
  })
  .strict()
  .readonly();

export type AugmentConfig = z.infer<typeof AugmentSchema>;
export type Interpolation = AugmentConfig['interpolation'];

/** The datasheet's training augmentation. */
export const datasheetAugment: AugmentConfig = AugmentSchema.parse({
  horizontalFlip: { enabled: true, p: 0.5 },
  rotation: { enabled: true, degrees: 45 },
  resizedCrop: { enabled: true, scale: [0.6, 1.0], ratio: [3 / 4, 4 / 3] },
  colorJitter: { enabled: true, brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.1 },
  affine: { enabled: true, translate: [0.1, 0.1], scale: [0.8, 1.2] },
  interpolation: 'bilinear',
});
