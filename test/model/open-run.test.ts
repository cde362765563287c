import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { Ensemble } from '../../src/model/ensemble.js';
import { openRun } from '../../src/model/open-run.js';
import { RunDir } from '../../src/model/run-dir.js';
import { createModel } from '../../src/nn/index.js';
import { RunConfigSchema, modelConfigOf } from '../../src/train/config.js';

const modelConfig = modelConfigOf(RunConfigSchema.parse({ model: { width: 4 } }));

/** A run directory whose best.safetensors holds one untrained model with `metadata`. */
function singleModelRun(metadata: Record<string, string>): RunDir {
  const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-saved-')));
  saveSafetensors(run.file('best'), createModel(modelConfig).stateDict(), metadata);
  return run;
}

describe('openRun', () => {
  it('rebuilds the model from best.safetensors alone: no config.json needed', () => {
    const run = singleModelRun({ model: JSON.stringify(modelConfig), objective: 'ce' });
    rmSync(run.file('config'), { force: true });
    const opened = openRun(run.path);
    expect(opened.ensemble).toBe(1);
    expect(opened.modelConfig).toEqual(modelConfig);
    expect(opened.model).not.toBeInstanceOf(Ensemble);
    expect(opened.model.training).toBe(false);
  });

  it('refuses weights that do not match the ensemble their metadata announces', () => {
    const run = singleModelRun({ model: JSON.stringify(modelConfig), objective: 'ce', ensemble: '3' });
    expect(() => openRun(run.path)).toThrow(/is not a usable run: state dict does not match the model: missing member0/);
  });

  it('names what is wrong with the metadata', () => {
    expect(() => openRun(singleModelRun({ model: '{', objective: 'ce' }).path)).toThrow(/not a usable run: .*model config is not JSON/s);
    expect(() => openRun(singleModelRun({ model: JSON.stringify(modelConfig), objective: 'hinge' }).path)).toThrow(/objective/);
  });

  it('says when the folder holds no selected weights', () => {
    const empty = mkdtempSync(join(tmpdir(), 'retinagrade-saved-'));
    expect(() => openRun(empty)).toThrow(/is not a finished run directory: .*best\.safetensors is missing/);
  });
});
