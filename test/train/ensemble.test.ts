import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData } from '../../src/data/training-data.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { RunDir } from '../../src/model/run-dir.js';
import * as torch from '../../src/torch/index.js';
import { RunConfigSchema, savedConfigOf } from '../../src/train/config.js';
import { memberSeed, trainEnsemble } from '../../src/train/ensemble.js';
import type { Progress } from '../../src/train/loop.js';
import { syntheticSplit } from '../helpers/synthetic-split.js';

describe('memberSeed', () => {
  it('gives the members of different ensemble seeds disjoint seeds', () => {
    const seeds = [0, 1, 2].flatMap((s) => [0, 1, 2, 3, 4].map((k) => memberSeed(s, k, 5)));
    expect(new Set(seeds).size).toBe(15);
    expect(memberSeed(0, 0, 1)).toBe(0);
    expect(memberSeed(7, 0, 1)).toBe(7);
  });
});

describe('trainEnsemble on synthetic data', () => {
  let data: RetinaTensors;
  beforeAll(() => {
    torch.setNumThreads(1);
    const generator = new torch.Generator(7);
    data = {
      train: syntheticSplit(generator, 24),
      val: syntheticSplit(generator, 8),
      test: syntheticSplit(generator, 8),
      source: { file: 'synthetic', md5: '', size: 28, upsampled_from: null },
    };
  });
  afterAll(() => {
    releaseTrainingData(data);
  });

  const config = RunConfigSchema.parse({
    model: { width: 4 },
    epochs: 2,
    ensemble: 2,
    seed: 4,
    batchSize: 8,
    threads: 1,
    augment: false,
    optimizer: { lr: 0.01 },
  });
  const tempRun = (): RunDir => new RunDir(mkdtempSync(join(tmpdir(), 'retinagrade-ensemble-')));
  /** Every tensor of a safetensors file as bytes, and its metadata (the tensors are freed). */
  function contents(file: string): { metadata: Record<string, string>; tensors: Record<string, Buffer> } {
    const { tensors, metadata } = loadSafetensors(file);
    const out: Record<string, Buffer> = {};
    for (const [name, t] of tensors) {
      const d = t.data();
      out[`${name}:${t.dtype}:${t.shape.join('x')}`] = Buffer.from(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      t.dispose();
    }
    return { metadata, tensors: out };
  }
  const untimedLog = (run: RunDir): object[] =>
    readFileSync(run.file('log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => ({ ...(JSON.parse(line) as object), seconds: 0 }));

  it('trains members with their seeds and configs; resuming after a crash in member 1 matches an uninterrupted run', async () => {
    const whole = tempRun();
    const reference = await trainEnsemble(whole, config, data, { resume: false });
    reference.model.dispose();
    expect(reference.members.map((m) => m.seed)).toEqual([memberSeed(4, 0, 2), memberSeed(4, 1, 2)]);
    expect(reference.epochsRun).toEqual([2, 2]);
    expect(whole.member(1).readJson('config')).toEqual(JSON.parse(JSON.stringify(savedConfigOf({ ...config, ensemble: 1, seed: 9 }))));
    const log = untimedLog(whole) as { member: number; epoch: number }[];
    expect(log.map((e) => [e.member, e.epoch])).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
    ]);
    const best = contents(whole.file('best'));
    expect(best.metadata.ensemble).toBe('2');
    expect(Object.keys(best.tensors).some((k) => k.startsWith('member1.'))).toBe(true);

    // Interrupted as member 1 starts its second epoch: member 0 is finished, member 1 checkpointed after epoch 1.
    const run = tempRun();
    let starts = 0;
    const crashing: Progress = {
      start: () => {
        if (++starts === 4) throw new Error('interrupted');
      },
      tick: () => {},
      stop: () => {},
    };
    await expect(trainEnsemble(run, config, data, { resume: false, progress: crashing })).rejects.toThrow('interrupted');
    expect(run.has('best')).toBe(false);
    expect(run.member(0).has('best') && run.member(1).has('checkpoint')).toBe(true);

    const lines: string[] = [];
    const resumed = await trainEnsemble(run, config, data, { resume: true, say: (line) => lines.push(line) });
    resumed.model.dispose();
    expect(lines.filter((l) => l.startsWith('resuming after epoch'))).toEqual(['resuming after epoch 2', 'resuming after epoch 1']);
    expect(resumed.bestEpoch).toEqual(reference.bestEpoch);
    expect(resumed.epochsRun).toEqual([2, 2]);
    expect(contents(run.file('best'))).toEqual(best);
    expect(untimedLog(run)).toEqual(log);
  });

  it("calls the caller's onEpoch after every member epoch", async () => {
    let calls = 0;
    const trained = await trainEnsemble(tempRun(), config, data, { resume: false, onEpoch: () => calls++ });
    trained.model.dispose();
    expect(calls).toBe(config.ensemble * config.epochs);
  });
});
