// The one schema of a training run. CLI flags and `--config run.json` both land here; unknown keys
// are errors. Recipes are named partial configs layered under the user's choices.
import { z } from 'zod';
import { AugmentSchema } from '../data/augment/index.js';
import { NUM_GRADES } from '../data/grades.js';
import { MIN_PREPARED_SIZE } from '../data/prepared-dataset.js';
import { DEFAULT_IMAGE_SIZE, IMAGE_SIZES, isImageSize } from '../data/registry.js';
import { LossConfigSchema, ModelConfigSchema, ModelNameSchema, PrecisionSchema, createObjective, type ModelConfig } from '../nn/index.js';
import { OptimizerConfigSchema, ScheduleConfigSchema } from '../optim/index.js';
import { resolvePrecision } from '../torch/index.js';

/** Seeds are 32-bit unsigned integers (libtorch generators and our samplers take them so). */
const MAX_SEED = 2 ** 32 - 1;

/** Every default below is the default recipe, chosen on the validation split (RESULTS.md). */
export const RunConfigSchema = z
  .object({
    /** The recipe (src/train/recipes.ts) this config was layered on; informational. */
    recipe: z.string().default('default'),
    dataset: z.literal('retinamnist').default('retinamnist'),
    /** A prepared dataset folder (`retinagrade prepare`) trained on instead of the RetinaMNIST file. */
    data: z.string().min(1).optional(),
    /** A finished single-model run whose selected weights the model starts from (`train/init.ts`). */
    init: z.string().min(1).optional(),
    /**
     * Model input size. On RetinaMNIST one of its files' sizes (images from a smaller file are
     * upsampled, recorded in metrics.json); on a prepared dataset any size up to the stored one,
     * by default 64 or the stored size when smaller (resolved from dataset.json by the CLI).
     */
    size: z.number().int().min(MIN_PREPARED_SIZE).default(DEFAULT_IMAGE_SIZE),
    /** The architecture; the input size, channels and head width follow from the rest (modelConfigOf). */
    model: ModelConfigSchema.pick({ width: true, dropout: true, stemStride: true })
      .extend({ name: ModelNameSchema.default('cnn') })
      .strict()
      .prefault({}),
    loss: LossConfigSchema.prefault({}),
    sampler: z.enum(['shuffle', 'weighted']).default('shuffle'),
    /** false disables augmentation; otherwise the datasheet's five transforms, each switchable. */
    augment: z.union([z.literal(false), AugmentSchema]).prefault({}),
    optimizer: OptimizerConfigSchema.prefault({}),
    schedule: ScheduleConfigSchema.prefault({}),
    /** 60, not the 100 that validate 0.5 AUC higher: the whole default run fits 5 minutes on 2 cores (RESULTS.md, "Time to quality"). */
    epochs: z.number().int().positive().default(60),
    /** At least 2: batch norm cannot train on one image. */
    batchSize: z.number().int().min(2).default(64),
    /** bf16 trains (and grades) with bf16 convolutions and matrix products where the CPU has them; absent: fp32. */
    precision: PrecisionSchema.optional(),
    /** Exponential moving average of the weights, evaluated instead of the raw ones; 0 disables. */
    ema: z.number().min(0).lt(1).default(0),
    /** Models trained from different seeds whose probabilities are averaged (1: a single model). */
    ensemble: z.number().int().min(1).max(16).default(5),
    selectOn: z.enum(['auc', 'acc', 'qwk']).default('auc'),
    /** Stop after this many epochs without improvement of `selectOn`; 0 never stops early. */
    patience: z.number().int().min(0).default(0),
    seed: z.number().int().min(0).max(MAX_SEED).default(0),
    /**
     * Data-parallel ranks normalize with batch-norm statistics over the whole global batch (summed
     * over the ranks in every forward and backward pass); unset, each rank uses its own shard's, as
     * DistributedDataParallel does. No effect on one process.
     */
    syncBatchNorm: z.boolean().optional(),
    threads: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    // Options that the chosen loss would silently ignore are refused instead.
    const { kind, classWeights, labelSmoothing, alpha } = config.loss;
    const ignored: [key: string, why: string][] = [];
    if (kind === 'ordinal' && classWeights !== 'none') ignored.push(['classWeights', '']);
    if (kind !== 'ce' && labelSmoothing > 0) ignored.push(['labelSmoothing', '']);
    if (kind !== 'focal' && alpha !== undefined) ignored.push(['alpha', '']);
    if (kind === 'focal' && alpha !== undefined && classWeights !== 'none')
      ignored.push(['classWeights', ' (alpha already weighs the classes)']);
    for (const [key, why] of ignored) {
      ctx.addIssue({ code: 'custom', path: ['loss', key], message: `loss '${kind}' does not use ${key}${why}` });
    }
    // Member k of an ensemble trains with seed * ensemble + k (src/train/ensemble.ts, memberSeed).
    if (config.seed * config.ensemble + config.ensemble - 1 > MAX_SEED) {
      const largestSeed = Math.floor((MAX_SEED - config.ensemble + 1) / config.ensemble);
      ctx.addIssue({
        code: 'custom',
        path: ['seed'],
        message: `with an ensemble of ${config.ensemble}, the seed must be at most ${largestSeed}`,
      });
    }
    if (config.data === undefined && !isImageSize(config.size)) {
      ctx.addIssue({
        code: 'custom',
        path: ['size'],
        message: `expected one of ${IMAGE_SIZES.join(', ')} (RetinaMNIST's files); other sizes need a prepared dataset (--data)`,
      });
    }
    if (config.model.stemStride !== undefined && config.model.name !== 'cnn') {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'stemStride'],
        message: `only the compact CNN has a stemStride; ${config.model.name} sets its stem by input size`,
      });
    }
  });

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/**
 * The model config a run config implies: the head's width depends on the objective, and above
 * 32 px the compact CNN's first convolution has stride 2 unless the config says otherwise (like
 * ResNet's standard stem; at 64 px, upsampled from 28, it validated better at a quarter of the FLOPs).
 * The precision is the one this CPU runs (bf16 falls back to fp32 where the CPU lacks it).
 */
export function modelConfigOf(config: RunConfig): ModelConfig {
  const outputs = createObjective(config.loss, NUM_GRADES).outputs;
  const stem = config.model.name === 'cnn' && config.size > 32 ? { stemStride: config.model.stemStride ?? 2 } : {};
  const precision = config.precision && resolvePrecision(config.precision).precision;
  return ModelConfigSchema.parse({
    ...config.model,
    ...stem,
    inputSize: config.size,
    inChannels: 3,
    numClasses: NUM_GRADES,
    outputs,
    precision,
  });
}

/** What config.json holds: this configuration as `--config` accepts it, less the machine's thread count. */
export const savedConfigOf = (config: RunConfig): RunConfig => ({ ...config, threads: undefined });

/** The other form of config.json that resume accepts: the model as built instead of as configured. */
export const legacySavedConfigOf = (config: RunConfig): object => ({ ...savedConfigOf(config), model: modelConfigOf(config) });

/** A config.json as read, in the form `--config` takes: a legacy one's model is cut back to the configured fields. */
export function configOfSaved(saved: Record<string, unknown>): Record<string, unknown> {
  const model = saved.model as Record<string, unknown> | undefined;
  if (model === undefined || !('inputSize' in model)) return saved;
  const { name, width, dropout, stemStride } = model;
  return { ...saved, model: { name, width, dropout, stemStride } };
}
