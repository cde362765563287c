// Starting and resuming a run directory (beginRun), and checkpoint/resume through trainModel on a
// tiny synthetic dataset: an interrupted run must end exactly where an uninterrupted one does, the
// crash window between best.safetensors and the checkpoint must be reconciled, and a run stopped
// early must stay stopped.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData } from '../../src/data/training-data.js';
import { UserError } from '../../src/errors.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { RunDir } from '../../src/model/run-dir.js';
import * as torch from '../../src/torch/index.js';
import { beginRun } from '../../src/train/checkpoint.js';
import { RunConfigSchema, modelConfigOf, savedConfigOf, type RunConfig, type RunConfigInput } from '../../src/train/config.js';
import { trainModel, type EpochLog, type TrainedModel } from '../../src/train/loop.js';
import { syntheticSplit } from '../helpers/synthetic-split.js';

const tempRun = (): RunDir => new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-checkpoint-')));
const jsonOf = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe('beginRun', () => {
  const config = RunConfigSchema.parse({ model: { width: 4 }, epochs: 3, ensemble: 1, threads: 3 });

  it('starts afresh: removes the old run files (not other files) and writes config.json without threads', () => {
    const run = tempRun();
    for (const name of ['log', 'best', 'checkpoint', 'metrics', 'predictions', 'card'] as const) writeFileSync(run.file(name), 'old');
    run.writeJson('config', { stale: true });
    mkdirSync(join(run.member(0).path), { recursive: true });
    writeFileSync(run.member(0).file('best'), 'old');
    writeFileSync(join(run.path, 'notes.txt'), 'mine');

    beginRun(run, config, false);

    expect(run.runFilesPresent()).toEqual(['config.json']);
    expect(readFileSync(join(run.path, 'notes.txt'), 'utf8')).toBe('mine');
    const saved = run.readJson<Record<string, unknown>>('config');
    expect(saved).toEqual(jsonOf(savedConfigOf(config)));
    expect(saved).not.toHaveProperty('threads');
    expect(saved.model).toEqual({ name: 'cnn', width: 4, dropout: 0 }); // the config's model, not the model as built
    // What was written is a config `--config` accepts, and it parses back to this run's configuration.
    expect(RunConfigSchema.parse(saved)).toEqual({ ...config, threads: undefined });
  });

  it('resumes a run of the same configuration on another thread count, leaving its files alone', () => {
    const run = tempRun();
    beginRun(run, config, false);
    run.appendLog({ epoch: 1 });
    const before = readFileSync(run.file('config'), 'utf8');
    expect(() => beginRun(run, { ...config, threads: 1 }, true)).not.toThrow();
    expect(() => beginRun(run, { ...config, threads: undefined }, true)).not.toThrow();
    expect(readFileSync(run.file('config'), 'utf8')).toBe(before);
    expect(run.has('log')).toBe(true);
  });

  it('refuses to resume a different configuration, naming the directory, before removing anything', () => {
    const run = tempRun();
    beginRun(run, config, false);
    run.appendLog({ epoch: 1 });
    writeFileSync(run.file('checkpoint'), 'state');
    for (const changed of [
      { ...config, epochs: 4 },
      { ...config, model: { ...config.model, width: 8 } },
      { ...config, seed: 1 },
    ]) {
      let error: unknown;
      try {
        beginRun(run, changed, true);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toContain(run.path);
    }
    expect(run.has('log')).toBe(true);
    expect(readFileSync(run.file('checkpoint'), 'utf8')).toBe('state');
  });

  it('accepts a legacy config.json (the model as built, and threads) on resume, and still refuses a different one', () => {
    const run = tempRun();
    const legacy = { ...(jsonOf(config) as object), model: modelConfigOf(config), threads: 2 };
    run.writeJson('config', legacy);
    expect((run.readJson<{ model: object }>('config').model as { inputSize?: number }).inputSize).toBe(28);
    expect(() => beginRun(run, config, true)).not.toThrow();
    expect(() => beginRun(run, { ...config, epochs: 4 }, true)).toThrow(UserError);
    expect(() => beginRun(run, { ...config, model: { ...config.model, width: 8 } }, true)).toThrow(UserError);
  });
});

// ---------------------------------------------------------------------------------------------
// trainModel on synthetic data

function syntheticData(): RetinaTensors {
  const generator = new torch.Generator(2024);
  return {
    train: syntheticSplit(generator, 24),
    val: syntheticSplit(generator, 8),
    test: syntheticSplit(generator, 8),
    source: { file: 'synthetic', md5: '', size: 28, upsampled_from: null },
  };
}

const configOf = (overrides: RunConfigInput = {}): RunConfig =>
  RunConfigSchema.parse({ model: { width: 4 }, epochs: 3, ensemble: 1, batchSize: 8, threads: 1, augment: false, seed: 3, ...overrides });

interface Snapshot {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }>;
}

/** A safetensors file's metadata and every tensor's dtype, shape and bytes (the tensors are freed). */
function snapshot(file: string): Snapshot {
  const { tensors, metadata } = loadSafetensors(file);
  const out: Snapshot['tensors'] = {};
  for (const [name, t] of tensors) {
    const data = t.data();
    out[name] = { dtype: t.dtype, shape: t.shape, bytes: Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
    t.dispose();
  }
  return { metadata, tensors: out };
}

/** The tensors whose names start with `prefix`, prefix removed. */
const part = (snap: Snapshot, prefix: string): Snapshot['tensors'] =>
  Object.fromEntries(Object.entries(snap.tensors).flatMap(([k, v]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), v]] : [])));

const STATE_KEY = 'retinagrade_state';
const loopState = (snap: Snapshot): Record<string, unknown> => JSON.parse(snap.metadata[STATE_KEY]!) as Record<string, unknown>;

const logOf = (run: RunDir): EpochLog[] =>
  readFileSync(run.file('log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EpochLog);

/** A log without its wall-clock field, for comparing runs. */
const untimed = (log: EpochLog[]): Omit<EpochLog, 'seconds'>[] => log.map(({ seconds: _, ...rest }) => rest);

class Interrupted extends Error {}

/** trainModel, returning the summary and freeing the model. */
async function trainFor(run: RunDir, config: RunConfig, resume: boolean, onEpoch?: () => void): Promise<Omit<TrainedModel, 'model'>> {
  const { model, ...summary } = await trainModel(run, config, data, { resume, onEpoch });
  model.dispose();
  return summary;
}

/** Trains in `run` until `epochs` epochs are checkpointed, then throws as a crash would: after epoch epochs+1's log line. */
async function interruptedAfter(run: RunDir, config: RunConfig, epochs: number): Promise<void> {
  let calls = 0;
  const crash = (): void => {
    if (++calls === epochs + 1) throw new Interrupted(`interrupted in epoch ${calls}`);
  };
  await expect(trainFor(run, config, false, crash)).rejects.toThrow(Interrupted);
}

let data: RetinaTensors;
beforeAll(() => {
  torch.setNumThreads(1);
  data = syntheticData();
  return () => {
    releaseTrainingData(data);
  };
});

describe('trainModel checkpoint and resume', () => {
  // Dropout and EMA on, so that resuming must restore the EMA and reseed dropout like the uninterrupted run.
  const config = configOf({ model: { width: 4, dropout: 0.2 }, ema: 0.9, optimizer: { lr: 0.01 } });
  const uninterrupted = tempRun();
  const snapshots = mkdtempSync(join(tmpdir(), 'retinagrade-snapshots-'));
  /** checkpoint.safetensors of the uninterrupted run after epoch e. */
  const checkpointAfter = (e: number): string => join(snapshots, `checkpoint-${e}.safetensors`);
  let reference: Omit<TrainedModel, 'model'>;

  beforeAll(async () => {
    let epoch = 0;
    // onEpoch runs after an epoch's log line, before its checkpoint: the checkpoint on disk is the previous epoch's.
    reference = await trainFor(uninterrupted, config, false, () => {
      epoch++;
      if (epoch > 1) copyFileSync(uninterrupted.file('checkpoint'), checkpointAfter(epoch - 1));
    });
    copyFileSync(uninterrupted.file('checkpoint'), checkpointAfter(config.epochs));
  });

  it('an interrupted and resumed run ends bit-identical to an uninterrupted one', async () => {
    expect(reference.epochsRun).toBe(3);
    expect(reference.bestEpoch).toBeGreaterThan(1); // so the compared best weights come from an epoch trained after the resume
    const run = tempRun();
    await interruptedAfter(run, config, 1);
    expect(logOf(run).map((e) => e.epoch)).toEqual([1, 2]); // epoch 2 was logged, not checkpointed
    expect(loopState(snapshot(run.file('checkpoint'))).epochsDone).toBe(1);

    const resumed = await trainFor(run, config, true);
    expect(resumed.epochsRun).toBe(reference.epochsRun);
    expect(resumed.bestEpoch).toBe(reference.bestEpoch);
    expect(snapshot(run.file('best'))).toEqual(snapshot(uninterrupted.file('best')));
    // Model, EMA and optimizer state after the last epoch, not only the selected weights.
    const [mine, theirs] = [snapshot(run.file('checkpoint')), snapshot(uninterrupted.file('checkpoint'))];
    expect(Object.keys(part(mine, 'ema.')).length).toBeGreaterThan(0);
    expect(Object.keys(part(mine, 'optimizer.')).length).toBeGreaterThan(0);
    expect(mine.tensors).toEqual(theirs.tensors);
    expect({ ...loopState(mine), secondsSoFar: 0 }).toEqual({ ...loopState(theirs), secondsSoFar: 0 });
    expect(untimed(logOf(run))).toEqual(untimed(logOf(uninterrupted)));
    expect(logOf(run)).toHaveLength(config.epochs);
  });

  it('a run interrupted before its first checkpoint starts over on resume', async () => {
    const run = tempRun();
    await interruptedAfter(run, config, 0);
    expect(run.has('checkpoint')).toBe(false);
    expect(logOf(run)).toHaveLength(1);
    const resumed = await trainFor(run, config, true);
    expect(resumed.bestEpoch).toBe(reference.bestEpoch);
    expect(snapshot(run.file('best'))).toEqual(snapshot(uninterrupted.file('best')));
    expect(untimed(logOf(run))).toEqual(untimed(logOf(uninterrupted)));
  });

  /**
   * A run directory in the state of a crash during epoch 2: log lines for epochs 1-2, the
   * checkpoint after epoch 1 with its best score raised to 1 (no AUC beats it: as if epoch 2's
   * re-run scored lower than the crashed run's, e.g. on another thread count), and
   * best.safetensors holding the EMA weights after `bestFileEpoch` (metadata epoch `epochLabel`).
   */
  function crashedRun(bestFileEpoch: number, epochLabel: string | undefined): RunDir {
    const run = tempRun();
    run.writeJson('config', savedConfigOf(config));
    const logLines = readFileSync(uninterrupted.file('log'), 'utf8').split('\n').slice(0, 2);
    writeFileSync(run.file('log'), `${logLines.join('\n')}\n`);
    const checkpoint = loadSafetensors(checkpointAfter(1));
    const state = JSON.parse(checkpoint.metadata[STATE_KEY]!) as { bestEpoch: number; bestScore: number };
    expect(state.bestEpoch).toBe(1);
    saveSafetensors(run.file('checkpoint'), checkpoint.tensors, {
      ...checkpoint.metadata,
      [STATE_KEY]: JSON.stringify({ ...state, bestScore: 1 }),
    });
    for (const t of checkpoint.tensors.values()) t.dispose();

    const weights = loadSafetensors(checkpointAfter(bestFileEpoch)).tensors;
    const ema = new Map([...weights].filter(([k]) => k.startsWith('ema.')).map(([k, v]) => [k.slice('ema.'.length), v]));
    const metadata: Record<string, string> = { model: JSON.stringify(modelConfigOf(config)), objective: config.loss.kind };
    if (epochLabel !== undefined) metadata.epoch = epochLabel;
    saveSafetensors(run.file('best'), ema, metadata);
    for (const t of weights.values()) t.dispose();
    return run;
  }

  it('re-selects the epoch best.safetensors was written for when the checkpoint is one epoch behind', async () => {
    const run = crashedRun(2, '2');
    const resumed = await trainFor(run, config, true);
    const best = snapshot(run.file('best'));
    expect(Number(best.metadata.epoch)).toBe(resumed.bestEpoch);
    expect(resumed.bestEpoch).toBeGreaterThanOrEqual(2); // the checkpoint's epoch 1 was dropped with the file's weights
    // The file holds the weights of the epoch it names.
    expect(best.tensors).toEqual(part(snapshot(checkpointAfter(resumed.bestEpoch)), 'ema.'));
    expect(resumed.epochsRun).toBe(3);
    expect(logOf(run).map((e) => e.epoch)).toEqual([1, 2, 3]);
  });

  it.each([
    ['the checkpoint epoch', '1'],
    ['no epoch (a file from before best.safetensors recorded it)', undefined],
  ])("keeps the checkpoint's selection when best.safetensors names %s", async (_, label) => {
    const run = crashedRun(1, label);
    const resumed = await trainFor(run, config, true);
    expect(resumed.bestEpoch).toBe(1); // nothing beats the checkpoint's best score of 1
    const best = snapshot(run.file('best'));
    expect(best.tensors).toEqual(part(snapshot(checkpointAfter(1)), 'ema.'));
    expect(resumed.epochsRun).toBe(3);
  });
});

describe('trainModel early stopping', () => {
  it('stops after `patience` epochs without improvement, and a resume of the stopped run trains no more', async () => {
    // A learning rate of ~0: the weights stay put, so validation accuracy cannot improve for long.
    const config = configOf({ epochs: 6, patience: 1, selectOn: 'acc', optimizer: { lr: 1e-12 }, schedule: { name: 'constant' } });
    const run = tempRun();
    let epochs = 0;
    const first = await trainFor(run, config, false, () => epochs++);
    expect(first.epochsRun).toBeLessThan(config.epochs);
    expect(first.epochsRun - first.bestEpoch).toBe(config.patience);
    expect(epochs).toBe(first.epochsRun);
    expect(logOf(run)).toHaveLength(first.epochsRun);
    expect(loopState(snapshot(run.file('checkpoint')))).toMatchObject({
      stopped: true,
      epochsDone: first.epochsRun,
      bestEpoch: first.bestEpoch,
    });

    const files = (['best', 'checkpoint', 'log'] as const).map((name) => readFileSync(run.file(name)));
    let resumedEpochs = 0;
    const resumed = await trainFor(run, config, true, () => resumedEpochs++);
    expect(resumedEpochs).toBe(0);
    expect(resumed).toMatchObject({ epochsRun: first.epochsRun, bestEpoch: first.bestEpoch });
    expect((['best', 'checkpoint', 'log'] as const).map((name) => readFileSync(run.file(name)))).toEqual(files);
  });

  it('with patience 0 runs every epoch even when nothing improves', async () => {
    const config = configOf({ epochs: 4, patience: 0, selectOn: 'acc', optimizer: { lr: 1e-12 }, schedule: { name: 'constant' } });
    const run = tempRun();
    const result = await trainFor(run, config, false);
    expect(result.epochsRun).toBe(4);
    expect(logOf(run)).toHaveLength(4);
    expect(loopState(snapshot(run.file('checkpoint'))).stopped).toBe(false);
    expect(existsSync(run.file('best'))).toBe(true);
  });
});
