// A run directory holding an untrained model, for tests (and benchmarks) of what uses a run.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { Ensemble } from '../../src/model/ensemble.js';
import { RunDir } from '../../src/model/run-dir.js';
import { ModelConfigSchema, createModel, createObjective, LossConfigSchema, type ModelConfig } from '../../src/nn/index.js';

export interface UntrainedRunOptions {
  /** Default: a compact CNN at 28 px, width 8. */
  modelConfig?: ModelConfig;
  /** Written as the run's metrics.json when given. */
  metrics?: object;
  /** Every weight multiplied by this (1e30: finite weights whose outputs overflow). */
  weightScale?: number;
}

/** A run directory holding an untrained model, or an ensemble of `ensemble` of them. */
export function untrainedRun(ensemble: number, options: UntrainedRunOptions = {}): string {
  const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-untrained-')));
  const modelConfig = options.modelConfig ?? ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 });
  const loss = LossConfigSchema.parse({});
  const members = Array.from({ length: ensemble }, () => createModel(modelConfig));
  const model = ensemble === 1 ? members[0]! : new Ensemble(members, createObjective(loss, modelConfig.numClasses));
  const state = model.stateDict();
  const scale = options.weightScale;
  const weights = scale === undefined ? state : new Map([...state].map(([name, t]) => [name, t.dtype === 'float32' ? t.mul(scale) : t]));
  saveSafetensors(run.file('best'), weights, {
    model: JSON.stringify(modelConfig),
    objective: loss.kind,
    ensemble: String(ensemble),
  });
  model.dispose();
  if (options.metrics) run.writeJson('metrics', options.metrics);
  return run.path;
}
