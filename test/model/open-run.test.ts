import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveSafetensors } from '../../src/io/safetensors.js';
import { Ensemble } from '../../src/model/ensemble.js';
import { ModelOutputError } from '../../src/errors.js';
import { predictImage } from '../../src/model/grade-photo.js';
import { checkProbabilities } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { CHECKPOINT_STATE_KEY, RunDir } from '../../src/model/run-dir.js';
import { LossConfigSchema, createModel, createObjective } from '../../src/nn/index.js';
import * as torch from '../../src/torch/index.js';
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

  it('computes at the precision the run was trained at unless told otherwise; a run without one is fp32', () => {
    const precisionOf = (saved: object, requested?: torch.Precision) => {
      const run = singleModelRun({ model: JSON.stringify(saved), objective: 'ce', ensemble: '2' });
      saveSafetensors(
        run.file('best'),
        new Ensemble([createModel(modelConfig), createModel(modelConfig)], createObjective(LossConfigSchema.parse({}), 5)).stateDict(),
        {
          model: JSON.stringify(saved),
          objective: 'ce',
          ensemble: '2',
        },
      );
      const opened = openRun(run.path, requested ? { precision: requested } : {});
      const members = (opened.model as Ensemble).members.map((m) => (m as unknown as { precision: string }).precision);
      return [opened.precision, ...members];
    };
    const bf16 = torch.cpuHasBf16() ? 'bf16' : 'fp32'; // bf16 only where the CPU has it
    expect(precisionOf(modelConfig)).toEqual(['fp32', 'fp32', 'fp32']);
    expect(precisionOf({ ...modelConfig, precision: 'bf16' })).toEqual([bf16, bf16, bf16]);
    expect(precisionOf({ ...modelConfig, precision: 'bf16' }, 'fp32')).toEqual(['fp32', 'fp32', 'fp32']);
    expect(precisionOf(modelConfig, 'bf16')).toEqual([bf16, bf16, bf16]);
  });

  it('refuses weights that do not match the ensemble their metadata announces', () => {
    const run = singleModelRun({ model: JSON.stringify(modelConfig), objective: 'ce', ensemble: '3' });
    expect(() => openRun(run.path)).toThrow(/is not a usable run: state dict does not match the model: missing member0/);
  });

  it('names what is wrong with the metadata', () => {
    expect(() => openRun(singleModelRun({ model: '{', objective: 'ce' }).path)).toThrow(/not a usable run: .*model config is not JSON/s);
    expect(() => openRun(singleModelRun({ model: JSON.stringify(modelConfig), objective: 'hinge' }).path)).toThrow(/objective/);
  });

  it('loads runs saved with the layer-index names of earlier versions, single and ensemble', () => {
    // The keys a width-4 compact CNN was saved under before the readable names: parameters, then buffers.
    const oldParameters = [
      ...['0', '1', '3', '4', '7', '8', '10', '11', '14', '15', '17', '18'].flatMap((layer, i) =>
        i % 2 === 0 ? [`${layer}.weight`] : [`${layer}.weight`, `${layer}.bias`],
      ),
      '22.weight',
      '22.bias',
    ];
    const oldBuffers = ['1', '4', '8', '11', '15', '18'].flatMap((bn) => [
      `${bn}.running_mean`,
      `${bn}.running_var`,
      `${bn}.num_batches_tracked`,
    ]);
    const x = torch.keep(new torch.Generator(3).normal([2, 3, 28, 28]).clamp(-1, 1));
    for (const ensemble of [1, 2]) {
      const source =
        ensemble === 1
          ? createModel(modelConfig)
          : new Ensemble([createModel(modelConfig), createModel(modelConfig)], createObjective(LossConfigSchema.parse({}), 5));
      const values = [...source.stateDict().values()];
      const prefixes = ensemble === 1 ? [''] : ['member0.', 'member1.'];
      const oldKeys = [oldParameters, oldBuffers].flatMap((keys) => prefixes.flatMap((m) => keys.map((k) => m + k)));
      expect(oldKeys).toHaveLength(values.length);
      const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-saved-')));
      const metadata = { model: JSON.stringify(modelConfig), objective: 'ce', ensemble: String(ensemble) };
      saveSafetensors(run.file('best'), new Map(oldKeys.map((k, i) => [k, values[i]!])), metadata);
      const opened = openRun(run.path);
      source.eval();
      const expected = torch.noGrad(() => Array.from(source.forward(x).data() as Float32Array));
      expect(torch.noGrad(() => Array.from(opened.model.forward(x).data() as Float32Array))).toEqual(expected);
      source.dispose();
      opened.model.dispose();
    }
  });

  it('says when the folder holds no selected weights', () => {
    const empty = mkdtempSync(join(tmpdir(), 'retinagrade-saved-'));
    expect(() => openRun(empty)).toThrow(/is not a finished run directory: .*best\.safetensors is missing/);
  });
});

describe('openRun refuses weights it cannot trust', () => {
  const metadata = { model: JSON.stringify(modelConfig), objective: 'ce' };

  it('weights changed after they were written: the checksum names the file', () => {
    const run = singleModelRun(metadata);
    const bytes = readFileSync(run.file('best'));
    bytes[bytes.length - 5]! ^= 0x40;
    writeFileSync(run.file('best'), bytes);
    expect(() => openRun(run.path)).toThrow(
      `${run.path} is not a usable run: ${run.file('best')}: its weights or metadata do not match the sha256 written with them`,
    );
  });

  it('weights holding NaN, named by tensor', () => {
    const state = createModel(modelConfig).stateDict();
    const [name, first] = [...state][0]!;
    state.set(name, first.mul(Number.NaN));
    const run = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-saved-')));
    saveSafetensors(run.file('best'), state, metadata);
    expect(() => openRun(run.path)).toThrow(`is not a usable run: its weights hold a non-finite value (${name}[0] is NaN)`);
  });

  it('a config.json that describes another model', () => {
    const run = singleModelRun(metadata);
    run.writeJson('config', { size: 224, ensemble: 1, model: { name: 'cnn', width: 4 } });
    expect(() => openRun(run.path)).toThrow(
      `${run.file('config')} does not describe the model in ${run.file('best')} (size 224 against 28)`,
    );
    run.writeJson('config', { size: 28, ensemble: 1, model: { name: 'cnn', width: 4 } });
    expect(openRun(run.path).modelConfig.inputSize).toBe(28);
  });

  it('a file without a checksum (written by another tool) still opens', () => {
    const run = singleModelRun(metadata);
    const bytes = readFileSync(run.file('best'));
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString()) as { __metadata__: Record<string, string> };
    delete header.__metadata__.sha256;
    const json = Buffer.from(JSON.stringify(header).padEnd(headerLength));
    writeFileSync(run.file('best'), Buffer.concat([bytes.subarray(0, 8), json, bytes.subarray(8 + headerLength)]));
    expect(openRun(run.path).ensemble).toBe(1);
  });
});

describe('predictions that are not probabilities', () => {
  it('are a ModelOutputError, never a grade', async () => {
    const opened = openRun(untrainedRun(1, { weightScale: 1e30 }));
    const photo = join(process.env.MEDMNIST_DIR ?? join(import.meta.dirname, '../../../shared/data'), '../samples/fundus_a.jpg');
    const error = await predictImage(opened, photo, { crop: 'disc' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelOutputError);
    expect((error as Error).message).toMatch(
      /^the model gave NaN as the probability of grade 0 for image 1: its weights are damaged or diverged/,
    );
    opened.model.dispose();
  });

  it('checkProbabilities accepts distributions and refuses NaN, negatives and rows not summing to 1', () => {
    expect(() => checkProbabilities(Float32Array.from([0.25, 0.75, 1, 0]), 2)).not.toThrow();
    expect(() => checkProbabilities(Float32Array.from([0.5, 0.5, Number.NaN, 1]), 2)).toThrow(
      /NaN as the probability of grade 0 for image 2/,
    );
    expect(() => checkProbabilities(Float32Array.from([-0.1, 1.1]), 2)).toThrow(ModelOutputError);
    expect(() => checkProbabilities(Float32Array.from([0.5, 0.6]), 2)).toThrow(/sum to 1\.1\d*, not 1/);
  });
});

/** Writes what train leaves in `run` while it trains: config.json, best weights of `bestEpoch`, a checkpoint after `epochsDone`. */
function inTraining(run: RunDir, config: { epochs: number; ensemble: number }, progress?: { bestEpoch: number; epochsDone: number }) {
  run.create();
  run.writeJson('config', config);
  if (!progress) return run;
  const metadata = { model: JSON.stringify(modelConfig), objective: 'ce', epoch: String(progress.bestEpoch) };
  saveSafetensors(run.file('best'), createModel(modelConfig).stateDict(), metadata);
  saveSafetensors(run.file('checkpoint'), new Map(), {
    [CHECKPOINT_STATE_KEY]: JSON.stringify({ epochsDone: progress.epochsDone, stopped: false }),
  });
  return run;
}

describe('openRun on a run that has not finished', () => {
  it('refuses a single model with the command that finishes it, and opens its best epoch when allowed', () => {
    const run = inTraining(
      new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-unfinished-'))),
      { epochs: 5, ensemble: 1 },
      {
        bestEpoch: 2,
        epochsDone: 3,
      },
    );
    expect(() => openRun(run.path)).toThrow(
      `${run.path} holds an unfinished run (3 of 5 epochs done). Finish it with:\n  retinagrade train --out ${run.path} --resume`,
    );
    expect(openRun(run.path, { allowUnfinished: true }).unfinished).toBe(
      'unfinished run (3 of 5 epochs done): weights of epoch 2, not final',
    );
    inTraining(run, { epochs: 5, ensemble: 1 }, { bestEpoch: 4, epochsDone: 5 });
    expect(openRun(run.path).unfinished).toBeUndefined(); // its last epoch checkpointed: finished
  });

  it('an ensemble stopped part-way: its members so far when allowed; a member in training points at the ensemble', () => {
    const top = new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-unfinished-ensemble-')));
    inTraining(top, { epochs: 5, ensemble: 3 });
    inTraining(top.member(0), { epochs: 5, ensemble: 1 }, { bestEpoch: 4, epochsDone: 5 });
    inTraining(top.member(1), { epochs: 5, ensemble: 1 }, { bestEpoch: 1, epochsDone: 2 });
    expect(() => openRun(top.path)).toThrow(
      `(member 2 of 3: 2 of 5 epochs done). Finish it with:\n  retinagrade train --out ${top.path} --resume`,
    );
    const partial = openRun(top.path, { allowUnfinished: true });
    expect(partial.ensemble).toBe(2);
    expect(partial.model).toBeInstanceOf(Ensemble);
    expect(partial.unfinished).toBe('unfinished ensemble (member 2 of 3: 2 of 5 epochs done): 2 member(s) at epochs 4, 1, not final');
    expect(() => openRun(top.member(1).path)).toThrow(`retinagrade train --out ${top.path} --resume`);
    expect(openRun(top.member(0).path).unfinished).toBeUndefined();
  });

  it('says to pass the run directory when given a file in it', () => {
    const run = singleModelRun({ model: JSON.stringify(modelConfig), objective: 'ce' });
    expect(() => openRun(run.file('best'))).toThrow(`${run.file('best')} is a file: pass the run directory that holds it (${run.path})`);
  });
});
