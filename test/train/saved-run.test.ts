import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/nn/index.js';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { RunDir } from '../../src/train/run-dir.js';
import { openRun } from '../../src/train/saved-run.js';
import { modelConfigOf } from '../../src/train/trainer.js';
import { Ensemble } from '../../src/train/ensemble.js';

function singleModelRun(config: object): RunDir {
  const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-saved-')));
  const modelConfig = modelConfigOf(RunConfigSchema.parse({ model: { width: 4 } }));
  run.writeJson('config', { ...config, model: modelConfig });
  saveSafetensors(run.file('best'), createModel(modelConfig).stateDict(), { model: JSON.stringify(modelConfig) });
  return run;
}

describe('openRun', () => {
  it('opens a run saved before ensembles existed (no `ensemble` key) as one model', () => {
    const { ensemble: _, ...withoutEnsemble } = RunConfigSchema.parse({});
    const saved = openRun(singleModelRun(withoutEnsemble).path);
    expect(saved.config.ensemble).toBe(1);
    expect(saved.model).not.toBeInstanceOf(Ensemble);
  });

  it('refuses weights that do not match the ensemble config.json announces', () => {
    const run = singleModelRun(RunConfigSchema.parse({ ensemble: 3 }));
    expect(() => openRun(run.path)).toThrow(/holds weights of another model than config.json describes/);
  });
});
