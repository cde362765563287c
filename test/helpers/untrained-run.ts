import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelConfigSchema, createModel } from '../../src/nn/index.js';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { RunDir } from '../../src/train/run-dir.js';
import { Ensemble } from '../../src/train/ensemble.js';
import { createObjective } from '../../src/train/objective.js';

/** A run directory holding an untrained compact CNN (28 px, width 8), or an ensemble of them. */
export function untrainedRun(ensemble: number, metrics?: object): string {
  const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-serve-')));
  const modelConfig = ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8 });
  const config = RunConfigSchema.parse({ size: 28, ensemble });
  run.writeJson('config', { ...config, model: modelConfig });
  const model =
    ensemble === 1
      ? createModel(modelConfig)
      : new Ensemble(Array.from({ length: ensemble }, () => createModel(modelConfig)), createObjective(config.loss, 5));
  saveSafetensors(run.file('best'), model.stateDict(), { model: JSON.stringify(modelConfig), ensemble: String(ensemble) });
  if (metrics) run.writeJson('metrics', metrics);
  return run.path;
}
