// The one schema of a training run. CLI flags and `--config run.json` both land here; unknown keys
// are errors. Recipes are named partial configs layered under the user's choices.
import { z } from 'zod';
import { validateAugmentConfig } from '../data/augment.js';

/** Seeds are 32-bit unsigned integers (libtorch generators and our samplers take them so). */
const MAX_SEED = 2 ** 32 - 1;

const range = (lo: number, hi: number) => z.tuple([z.number(), z.number()]).readonly().default([lo, hi]);

/**
 * The datasheet's five transforms (src/data/augment.ts), each switchable. The defaults are the
 * default recipe's milder strengths (RESULTS.md: the datasheet's hue/saturation jitter and deep
 * crops cost validation AUC at 28x28); the datasheet recipe sets the datasheet's own.
 */
const AugmentSchema = z
  .object({
    horizontalFlip: z.object({ enabled: z.boolean().default(true), p: z.number().min(0).max(1).default(0.5) }).strict().prefault({}),
    rotation: z.object({ enabled: z.boolean().default(true), degrees: z.number().min(0).default(45) }).strict().prefault({}),
    resizedCrop: z
      .object({ enabled: z.boolean().default(true), scale: range(0.85, 1), ratio: range(0.9, 1 / 0.9) })
      .strict()
      .prefault({}),
    colorJitter: z
      .object({
        enabled: z.boolean().default(true),
        brightness: z.number().min(0).default(0.2),
        contrast: z.number().min(0).default(0.2),
        saturation: z.number().min(0).default(0),
        hue: z.number().min(0).max(0.5).default(0),
      })
      .strict()
      .prefault({}),
    affine: z.object({ enabled: z.boolean().default(true), translate: range(0.05, 0.05), scale: range(0.95, 1.05) }).strict().prefault({}),
    interpolation: z.enum(['bilinear', 'nearest']).default('bilinear'),
  })
  .strict();

/** Every default below is the default recipe, chosen on the validation split (RESULTS.md). */
export const RunConfigSchema = z
  .object({
    /** The recipe (src/train/recipes.ts) this config was layered on; informational. */
    recipe: z.string().default('default'),
    dataset: z.literal('retinamnist').default('retinamnist'),
    /** Model input size; images from a smaller file are upsampled (recorded in metrics.json). */
    size: z.union([z.literal(28), z.literal(64), z.literal(128), z.literal(224)]).default(28),
    model: z
      .object({
        name: z.enum(['cnn', 'resnet18', 'resnet50']).default('cnn'),
        width: z.number().int().positive().optional(),
        dropout: z.number().min(0).max(0.95).default(0),
        stemStride: z.union([z.literal(1), z.literal(2)]).optional(),
      })
      .strict()
      .prefault({}),
    loss: z
      .object({
        kind: z.enum(['ce', 'focal', 'ordinal']).default('ce'),
        gamma: z.number().min(0).default(4),
        alpha: z.array(z.number().positive()).length(5).optional(),
        classWeights: z.enum(['none', 'inverse', 'sqrt-inverse', 'effective-number']).default('none'),
        labelSmoothing: z.number().min(0).max(0.5).default(0),
      })
      .strict()
      .prefault({}),
    sampler: z.enum(['shuffle', 'weighted']).default('shuffle'),
    /** false disables augmentation; otherwise the datasheet's five transforms, each switchable. */
    augment: z.union([z.literal(false), AugmentSchema]).prefault({}),
    optimizer: z
      .object({
        name: z.enum(['adamw', 'adam', 'sgd']).default('adamw'),
        lr: z.number().positive().default(1e-3),
        weightDecay: z.number().min(0).default(1e-4),
        momentum: z.number().min(0).max(1).default(0.9),
      })
      .strict()
      .prefault({}),
    schedule: z
      .object({
        name: z.enum(['cosine', 'multistep', 'onecycle', 'constant']).default('cosine'),
        /** Linear warm-up of the cosine schedule (the others have none). */
        warmupEpochs: z.number().min(0).default(1),
        /** Multistep milestones as fractions of the run, so they survive a change of epochs. */
        milestones: z.array(z.number().min(0).max(1)).default([0.5, 0.75]),
        gamma: z.number().positive().default(0.1),
      })
      .strict()
      .prefault({}),
    epochs: z.number().int().positive().default(100),
    /** At least 2: batch norm cannot train on one image. */
    batchSize: z.number().int().min(2).default(64),
    /** Exponential moving average of the weights, evaluated instead of the raw ones; 0 disables. */
    ema: z.number().min(0).lt(1).default(0),
    /** Models trained from different seeds whose probabilities are averaged (1: a single model). */
    ensemble: z.number().int().min(1).max(16).default(5),
    selectOn: z.enum(['auc', 'acc', 'qwk']).default('auc'),
    /** Stop after this many epochs without improvement of `selectOn`; 0 never stops early. */
    patience: z.number().int().min(0).default(0),
    seed: z.number().int().min(0).max(MAX_SEED).default(0),
    threads: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Options that the chosen loss would silently ignore are refused instead.
    const { kind, classWeights, labelSmoothing, alpha } = config.loss;
    const ignored = [
      kind === 'ordinal' && classWeights !== 'none' && 'classWeights',
      kind !== 'ce' && labelSmoothing > 0 && 'labelSmoothing',
      kind !== 'focal' && alpha !== undefined && 'alpha',
      kind === 'focal' && alpha !== undefined && classWeights !== 'none' && 'classWeights (alpha already weighs the classes)',
    ].filter(Boolean);
    for (const option of ignored) ctx.addIssue({ code: 'custom', path: ['loss'], message: `loss '${kind}' does not use ${option}` });
    // Member k of an ensemble trains with seed * ensemble + k (trainer.ts, memberSeed).
    if (config.seed * config.ensemble + config.ensemble - 1 > MAX_SEED) {
      ctx.addIssue({ code: 'custom', path: ['seed'], message: `with an ensemble of ${config.ensemble}, the seed must be at most ${Math.floor((MAX_SEED - config.ensemble + 1) / config.ensemble)}` });
    }
    if (config.model.stemStride !== undefined && config.model.name !== 'cnn') {
      ctx.addIssue({ code: 'custom', path: ['model', 'stemStride'], message: `only the compact CNN has a stemStride; ${config.model.name} sets its stem by input size` });
    }
    if (config.augment) {
      try {
        validateAugmentConfig(config.augment);
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['augment'], message: (error as Error).message });
      }
    }
  });

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type AugmentConfig = z.infer<typeof AugmentSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;
