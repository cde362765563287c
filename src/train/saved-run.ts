// Reopens a finished run directory: its config, and the model with the selected weights.
import { isDeepStrictEqual } from 'node:util';
import { createModel, ModelConfigSchema, type FeatureClassifier, type ModelConfig } from '../nn/index.js';
import { loadSafetensors } from '../io/safetensors.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import { createObjective } from './objective.js';
import { Ensemble, LogProbabilityObjective } from './ensemble.js';
import type { Objective } from './losses.js';
import { RunDir } from './run-dir.js';
import { UserError } from '../errors.js';
import { z } from 'zod';

export interface SavedRun {
  run: RunDir;
  config: RunConfig;
  model: FeatureClassifier;
  objective: Objective;
}

/** Whether the weights' metadata describes `config` (compared as values: key order is not meaningful). */
function sameModel(metadata: string | undefined, config: ModelConfig): boolean {
  try {
    return isDeepStrictEqual(ModelConfigSchema.parse(JSON.parse(metadata ?? 'null')), config);
  } catch {
    return false;
  }
}

/** Opens a run directory; anything unusable about it is a UserError naming the directory. */
export function openRun(path: string): SavedRun {
  const run = new RunDir(path);
  for (const needed of ['config', 'best'] as const) {
    if (!run.has(needed)) throw new UserError(`${path} is not a finished run directory: ${run.file(needed)} is missing`);
  }
  try {
    const stored = run.readJson<RunConfig & { model: object }>('config');
    const modelConfig = ModelConfigSchema.parse(stored.model);
    const config = RunConfigSchema.parse({
      ...stored,
      // Runs saved before ensembles existed were single models.
      ensemble: stored.ensemble ?? 1,
      model: { name: modelConfig.name, width: modelConfig.width, dropout: modelConfig.dropout, stemStride: modelConfig.stemStride },
    });
    const weights = loadSafetensors(run.file('best'));
    const memberObjective = createObjective(config.loss, modelConfig.numClasses);
    const model =
      config.ensemble === 1
        ? createModel(modelConfig)
        : new Ensemble(Array.from({ length: config.ensemble }, () => createModel(modelConfig)), memberObjective);
    try {
      if (!sameModel(weights.metadata.model, modelConfig) || Number(weights.metadata.ensemble ?? 1) !== config.ensemble) {
        throw new Error(`${run.file('best')} holds weights of another model than config.json describes`);
      }
      model.loadStateDict(weights.tensors);
    } catch (error) {
      model.dispose();
      throw error;
    } finally {
      for (const t of weights.tensors.values()) t.dispose();
    }
    model.eval();
    const objective = config.ensemble === 1 ? memberObjective : new LogProbabilityObjective(modelConfig.numClasses);
    return { run, config, model, objective };
  } catch (error) {
    if (error instanceof UserError) throw error;
    const reason = error instanceof z.ZodError ? z.prettifyError(error) : (error as Error).message;
    throw new UserError(`${path} is not a usable run: ${reason.length > 400 ? `${reason.slice(0, 400)}...` : reason}`);
  }
}
