// Reopens a run directory's selected model from best.safetensors alone: its metadata names the
// architecture, the objective and the ensemble size, so nothing else in the folder is needed.
import { z } from 'zod';
import { UserError } from '../errors.js';
import { loadSafetensors } from '../io/safetensors.js';
import {
  LogProbabilityObjective,
  LossConfigSchema,
  ModelConfigSchema,
  createModel,
  createObjective,
  renameLegacyKeys,
  type FeatureClassifier,
  type ModelConfig,
  type Objective,
} from '../nn/index.js';
import type { Tensor } from '../torch/index.js';
import { Ensemble } from './ensemble.js';
import { RunDir } from './run-dir.js';

/** What best.safetensors' metadata holds besides the weights (written by train). */
export const WEIGHTS_METADATA = {
  /** The model config as JSON. */
  model: 'model',
  /** The loss kind the model was trained with: how its outputs become probabilities. */
  objective: 'objective',
  /** Members averaged; absent for a single model. */
  ensemble: 'ensemble',
  /** The epoch a single model's weights come from. */
  epoch: 'epoch',
} as const;

export interface OpenedModel {
  run: RunDir;
  modelConfig: ModelConfig;
  /** Members whose probabilities are averaged (1: a single model). */
  ensemble: number;
  /** In eval mode. */
  model: FeatureClassifier;
  objective: Objective;
}

const MetadataSchema = z.object({
  model: z
    .string()
    .transform((json, ctx) => {
      try {
        return JSON.parse(json) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'the model config is not JSON' });
        return z.NEVER;
      }
    })
    .pipe(ModelConfigSchema),
  objective: LossConfigSchema.shape.kind,
  ensemble: z.coerce.number().int().min(1).max(64).default(1),
});

/** The first tensor holding NaN or an infinity, by name: weights no forward pass can use. */
function nonFiniteTensor(tensors: ReadonlyMap<string, Tensor>): string | undefined {
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    const values = t.data() as Float32Array | Float64Array;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return `${name}[${i}] is ${values[i]}`;
  }
  return undefined;
}

/**
 * What the run's config.json (when there is one) says about the model and the weights disagree
 * on, e.g. an input size: the two files do not belong to the same run.
 */
function configDisagreement(run: RunDir, modelConfig: ModelConfig, ensemble: number): string | undefined {
  if (!run.has('config')) return undefined;
  const config = run.readJson<{ size?: unknown; ensemble?: unknown; model?: { name?: unknown; width?: unknown } }>('config');
  const claims: [string, unknown, unknown][] = [
    ['size', config.size, modelConfig.inputSize],
    ['ensemble', config.ensemble, ensemble],
    ['model.name', config.model?.name, modelConfig.name],
    ['model.width', config.model?.width, modelConfig.width],
  ];
  const differing = claims.filter(([, claimed, actual]) => claimed !== undefined && actual !== undefined && claimed !== actual);
  if (differing.length === 0) return undefined;
  const what = differing.map(([key, claimed, actual]) => `${key} ${JSON.stringify(claimed)} against ${JSON.stringify(actual)}`).join(', ');
  return `${run.file('config')} does not describe the model in ${run.file('best')} (${what}): the files are from different runs`;
}

/** Opens a run directory's model; anything unusable about it is a UserError naming the directory. */
export function openRun(path: string): OpenedModel {
  const run = new RunDir(path);
  if (!run.has('best')) throw new UserError(`${path} is not a finished run directory: ${run.file('best')} is missing`);
  try {
    const weights = loadSafetensors(run.file('best'));
    try {
      const metadata = MetadataSchema.parse(weights.metadata);
      const modelConfig = metadata.model;
      const damaged = nonFiniteTensor(weights.tensors);
      if (damaged) throw new Error(`its weights hold a non-finite value (${damaged}): the model diverged or the file is damaged`);
      const disagreement = configDisagreement(run, modelConfig, metadata.ensemble);
      if (disagreement) throw new UserError(disagreement);
      const memberObjective = createObjective(LossConfigSchema.parse({ kind: metadata.objective }), modelConfig.numClasses);
      const single = metadata.ensemble === 1;
      const model = single
        ? createModel(modelConfig)
        : new Ensemble(
            Array.from({ length: metadata.ensemble }, () => createModel(modelConfig)),
            memberObjective,
          );
      try {
        model.loadStateDict(renameLegacyKeys(weights.tensors));
      } catch (error) {
        model.dispose();
        throw error;
      }
      model.eval();
      const objective = single ? memberObjective : new LogProbabilityObjective(modelConfig.numClasses);
      return { run, modelConfig, ensemble: metadata.ensemble, model, objective };
    } finally {
      for (const t of weights.tensors.values()) t.dispose();
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    const reason = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
    throw new UserError(`${path} is not a usable run: ${reason.length > 400 ? `${reason.slice(0, 400)}...` : reason}`);
  }
}
