// Several PredictionWorkers behind one predict(): a forward pass at batch sizes a server sees
// uses one core well and two poorly, so a server runs one worker per core, each with one
// libtorch thread, and sends each request to the worker with the fewest waiting.
import type { Prediction } from '../model/grade-photo.js';
import type { ImageInput } from '../data/fundus.js';
import { defaultThreads, PredictionWorker, type LoadedModel, type WorkerOptions, type WorkerPredictOptions } from './prediction-worker.js';

export interface PoolOptions extends Omit<WorkerOptions, 'threads'> {
  /** Worker threads (default: one per libtorch thread the process would use, so one per core). */
  workers?: number;
}

export class WorkerPool {
  private constructor(readonly workers: readonly PredictionWorker[]) {}

  /** Opens `workers` workers on `runDir`, the process's libtorch threads shared out between them. */
  static async open(runDir: string, options: PoolOptions = {}): Promise<WorkerPool> {
    const { workers: count = defaultThreads(), ...workerOptions } = options;
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`workers must be a positive integer, got ${count}`);
    const threads = Math.max(1, Math.floor(defaultThreads() / count));
    const opened = await Promise.allSettled(
      Array.from({ length: count }, () => PredictionWorker.open(runDir, { ...workerOptions, threads })),
    );
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) {
      await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value.close() : undefined)));
      throw failed.reason;
    }
    return new WorkerPool(opened.map((o) => (o as PromiseFulfilledResult<PredictionWorker>).value));
  }

  get model(): LoadedModel {
    return this.workers[0]!.model;
  }

  /** False once any worker has died (was stopped as stuck): the server then says it is unavailable. */
  get alive(): boolean {
    return this.workers.every((w) => w.alive);
  }

  /** PredictionWorker.predict on the worker with the fewest requests waiting. */
  predict(images: Exclude<ImageInput, string>[], options?: WorkerPredictOptions, signal?: AbortSignal): Promise<Prediction[]> {
    const idlest = this.workers.reduce((best, w) => (w.pending < best.pending ? w : best));
    return idlest.predict(images, options, signal);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
