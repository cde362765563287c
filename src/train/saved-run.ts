// Reopens a finished run directory: its config, and the model with the selected weights.
import { createModel, ModelConfigSchema, type FeatureClassifier } from '../nn/index.js';
import { loadSafetensors } from '../io/safetensors.js';
import { RunConfigSchema, type RunConfig } from './config.js';
import { createObjective } from './objective.js';
import type { Objective } from './losses.js';
import { RunDir } from './run-dir.js';
import { UserError } from '../errors.js';

export interface SavedRun {
  run: RunDir;
  config: RunConfig;
  model: FeatureClassifier;
  objective: Objective;
}

export function openRun(path: string): SavedRun {
  const run = new RunDir(path);
  for (const needed of ['config', 'best'] as const) {
    if (!run.has(needed)) throw new UserError(`${path} is not a finished run directory: ${run.file(needed)} is missing`);
  }
  const stored = run.readJson<RunConfig & { model: object }>('config');
  const modelConfig = ModelConfigSchema.parse(stored.model);
  const config = RunConfigSchema.parse({ ...stored, model: { name: modelConfig.name, width: modelConfig.width, dropout: modelConfig.dropout } });
  const objective = createObjective(config.loss, modelConfig.numClasses);
  const model = createModel(modelConfig);
  const weights = loadSafetensors(run.file('best'));
  try {
    model.loadStateDict(weights.tensors);
  } finally {
    for (const t of weights.tensors.values()) t.dispose();
  }
  model.eval();
  return { run, config, model, objective };
}

