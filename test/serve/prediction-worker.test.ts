import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Prediction } from '../../src/model/grade-photo.js';
import { ModelConfigSchema } from '../../src/nn/index.js';
import { CancelledError, DEFAULT_BATCH, PredictionWorker } from '../../src/serve/prediction-worker.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { withinRounding } from '../helpers/within-rounding.js';

const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), '../samples');
let worker: PredictionWorker;

beforeAll(async () => {
  // A run directory with an untrained ResNet-18 at 64 px: slow enough per image to matter.
  const modelConfig = ModelConfigSchema.parse({ name: 'resnet18', inputSize: 64, numClasses: 5 });
  worker = await PredictionWorker.open(untrainedRun(1, { modelConfig }));
});
afterAll(() => worker?.close());

describe('PredictionWorker', () => {
  it('grades in a worker thread while the event loop keeps running', async () => {
    const image = { name: 'fundus_a.jpg', bytes: readFileSync(join(samples, 'fundus_a.jpg')) };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    const predictions = await worker.predict(Array.from({ length: 8 }, () => image));
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(predictions).toHaveLength(8);
    for (const p of predictions) {
      expect(p.grade).toBeGreaterThanOrEqual(0);
      expect(p.probabilities!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    // The main thread was free: timers fired throughout (at least a third of the 5 ms slots).
    expect(ticks).toBeGreaterThan(elapsed / 5 / 3);
  });

  it('reports a bad image in its record, not as a crash', async () => {
    const [record] = await worker.predict([{ name: 'junk.png', bytes: new Uint8Array([1, 2, 3]) }]);
    expect(record!.error).toMatch(/junk\.png/);
  });

  it('times each request from when grading starts, so a long queue is not a stuck worker', async () => {
    // One photograph at a time; as many queued at once as take five deadlines to grade (counted from
    // this machine's time per photograph in a queue, where photographs are decoded while others are
    // graded), so the queue outlasts the deadline but no photograph alone does.
    const deadlineMs = 1000;
    const patient = await PredictionWorker.open(untrainedRun(1), { deadlineMs, threads: 1, batch: { max: 1, waitMs: 0 } });
    try {
      const image = { name: 'fundus_a.jpg', bytes: readFileSync(join(samples, 'fundus_a.jpg')) };
      await patient.predict([image]); // the first forward pass is slow; it would make the queue too short
      const timed = performance.now();
      await Promise.all(Array.from({ length: 20 }, () => patient.predict([image])));
      const perPhotoMs = (performance.now() - timed) / 20;
      const count = Math.min(5000, Math.ceil((5 * deadlineMs) / perPhotoMs));
      const started = performance.now();
      const answers = await Promise.all(Array.from({ length: count }, () => patient.predict([image])));
      expect(performance.now() - started).toBeGreaterThan(deadlineMs);
      expect(answers.every(([record]) => record!.grade !== undefined)).toBe(true);
      expect(patient.alive).toBe(true);
    } finally {
      await patient.close();
    }
  });

  it('drops waiting requests whose asker has gone, and grades the rest', async () => {
    const image = { name: 'fundus_a.jpg', bytes: readFileSync(join(samples, 'fundus_a.jpg')) };
    const startedBefore = worker.started;
    const gone = new AbortController();
    const first = worker.predict([image]);
    const waiting = Array.from({ length: 40 }, () => worker.predict([image], { crop: 'disc' }, gone.signal));
    const last = worker.predict([image]);
    gone.abort(); // while the thread is still on the first
    const outcomes = await Promise.allSettled(waiting);
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof CancelledError)).toBe(true);
    expect((await first)[0]!.grade).toBeTypeOf('number');
    expect((await last)[0]!.grade).toBeTypeOf('number');
    // The thread starts at most two batches (16 each) of photographs ahead: it skipped the rest.
    expect(worker.started - startedBefore).toBeLessThanOrEqual(2 + 2 * DEFAULT_BATCH.max);
    expect(worker.pending).toBe(0);
    await expect(worker.predict([image], { crop: 'disc' }, gone.signal)).rejects.toBeInstanceOf(CancelledError);
  });

  it('refuses to open something that is not a run directory', async () => {
    await expect(PredictionWorker.open(tmpdir())).rejects.toThrow(/not a finished run directory/);
  });
});

describe('PredictionWorker batching', () => {
  it('grades photographs that arrive together in fewer forward passes, each with the record it gets alone', async () => {
    const run = untrainedRun(3, { modelConfig: ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 }) });
    const batching = await PredictionWorker.open(run, { threads: 1, batch: { max: 16, waitMs: 5 } });
    try {
      const photos = ['fundus_a.jpg', 'fundus_b.jpg', 'fundus_c.jpg'].map((name) => ({ name, bytes: readFileSync(join(samples, name)) }));
      const alone: Prediction[] = [];
      for (const photo of photos) alone.push(...(await batching.predict([photo])));
      const before = batching.batches;
      expect(before).toBe(3);
      const requests = Array.from({ length: 12 }, (_, i) => photos[i % 3]!);
      const together = await Promise.all(requests.map((photo) => batching.predict([photo])));
      expect(batching.batches - before).toBeLessThan(12);
      expect(together.flat()).toEqual(withinRounding(requests.map((_, i) => alone[i % 3]!)));
    } finally {
      await batching.close();
    }
  });

  it('stops taking photographs into one forward pass at the batch size', async () => {
    const photo = { name: 'fundus_a.jpg', bytes: readFileSync(join(samples, 'fundus_a.jpg')) };
    const single = await PredictionWorker.open(untrainedRun(1), { threads: 1, batch: { max: 1, waitMs: 5 } });
    try {
      await Promise.all(Array.from({ length: 6 }, () => single.predict([photo])));
      expect(single.batches).toBe(6);
    } finally {
      await single.close();
    }
  });
});
