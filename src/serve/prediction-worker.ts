// Grading off the event loop: a worker thread owns the model (the libtorch binding loads per
// thread) and answers requests by message, so a server keeps serving while a forward pass runs.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { ImageInput, PredictOptions, Prediction } from '../model/grade-photo.js';
import type { OpenRunOptions, OpenedModel } from '../model/open-run.js';
import { ModelOutputError, UserError } from '../errors.js';
import { startThread } from './start-thread.js';

/** What a worker may be asked for per request (no files: a server has no folder to write into). */
export type WorkerPredictOptions = Pick<PredictOptions, 'crop' | 'camPng' | 'force'>;
export interface PredictRequest {
  id: number;
  images: Exclude<ImageInput, string>[];
  options: WorkerPredictOptions;
}
/** Drop request `cancel` if the thread has not started on it (its asker has gone). */
export interface CancelRequest {
  cancel: number;
}
/**
 * `started`: the thread has begun grading the request (the ones before it are answered).
 * `batch`: the number (from 0) of the batch the thread graded the request's photographs in.
 * `modelError`: the error is the model's ModelOutputError (its outputs are not probabilities).
 */
export type PredictReply =
  | { id: number; started: true }
  | { id: number; predictions: Prediction[]; batch: number }
  | { id: number; error: string; modelError: boolean };
/** The model the worker loaded, as its weights describe it. */
export type LoadedModel = Pick<OpenedModel, 'modelConfig' | 'ensemble' | 'unfinished' | 'precision' | 'precisionFallback'>;
/** What the thread is started with. */
export interface ThreadData {
  runDir: string;
  open: OpenRunOptions;
  /** libtorch's intra-op threads for this thread's forward passes. */
  threads: number;
  batch: BatchOptions;
}
/** `userError`: the run directory is unusable (the user's to fix), not a bug. */
export type WorkerReady = { ready: true; model: LoadedModel } | { ready: false; error: string; userError: boolean };

/** The process's libtorch thread count as the binding sets it: RETINAGRADE_THREADS, else every core. */
export function defaultThreads(): number {
  const fromEnvironment = Number(process.env.RETINAGRADE_THREADS);
  return Number.isInteger(fromEnvironment) && fromEnvironment >= 1 ? fromEnvironment : availableParallelism();
}

/** A request not graded within this once the thread has started on it means the thread is stuck. */
export const DEFAULT_DEADLINE_MS = 120_000;

/** How photographs that arrive together are graded together. */
export interface BatchOptions {
  /** Photographs in one forward pass at most. */
  max: number;
  /** How long a forward pass may wait for photographs still being decoded to join it. */
  waitMs: number;
}
export const DEFAULT_BATCH: BatchOptions = { max: 16, waitMs: 2 };

export interface WorkerOptions {
  /** libtorch's intra-op threads in the worker (default: the process's count, RETINAGRADE_THREADS or every core). */
  threads?: number;
  batch?: BatchOptions;
  /** Milliseconds the thread may take over one request before it is stopped as stuck. */
  deadlineMs?: number;
  /** How the run is opened: an unfinished run's best epoch so far, another precision (openRun's options). */
  open?: OpenRunOptions;
}

/** The rejection of a request whose signal aborted before the thread started on it. */
export class CancelledError extends Error {
  constructor() {
    super('request cancelled before grading');
  }
}

export class PredictionWorker {
  readonly #worker: Worker;
  readonly #deadlineMs: number;
  readonly #pending = new Map<number, { resolve: (p: Prediction[]) => void; reject: (e: Error) => void }>();
  #nextId = 0;
  /**
   * The requests the thread is grading and their deadlines: kept apart from #pending, because a
   * request cancelled while its `started` was on the way is still graded.
   */
  readonly #grading = new Map<number, NodeJS.Timeout>();
  #started = 0;
  #batches = 0;
  /** Set once the thread has died or been closed: later requests fail at once. */
  #dead: Error | undefined;

  private constructor(
    worker: Worker,
    readonly model: LoadedModel,
    options: WorkerOptions,
  ) {
    this.#worker = worker;
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    worker.on('message', (reply: PredictReply) => {
      if ('started' in reply) {
        this.#started++;
        // A thread that does not finish in time is stuck: stop it, so that every waiting request
        // fails now (and /health says so) instead of hanging.
        const deadline = setTimeout(() => {
          this.#failAll(new Error(`grading one request took over ${this.#deadlineMs / 1000} s; the prediction worker was stopped`));
          void this.#worker.terminate();
        }, this.#deadlineMs);
        this.#grading.set(reply.id, deadline);
        return;
      }
      clearTimeout(this.#grading.get(reply.id));
      this.#grading.delete(reply.id);
      if ('batch' in reply) this.#batches = Math.max(this.#batches, reply.batch + 1);
      const pending = this.#pending.get(reply.id);
      if (!pending) return; // cancelled while its grading had already begun
      this.#pending.delete(reply.id);
      if ('error' in reply) pending.reject(reply.modelError ? new ModelOutputError(reply.error) : new Error(reply.error));
      else pending.resolve(reply.predictions);
    });
    worker.on('error', (error) => this.#failAll(error));
    worker.on('exit', (code) => this.#failAll(new Error(`prediction worker stopped (exit code ${code})`)));
  }

  /**
   * Starts a worker that loads the run directory `runDir`; resolves once the model is loaded.
   * An unusable run directory rejects with a UserError, as openRun would.
   */
  static open(runDir: string, options: WorkerOptions = {}): Promise<PredictionWorker> {
    const worker = startThread('prediction-thread', {
      runDir,
      open: options.open ?? {},
      threads: options.threads ?? defaultThreads(),
      batch: options.batch ?? DEFAULT_BATCH,
    });
    return new Promise((resolve, reject) => {
      worker.once('message', (status: WorkerReady) => {
        if (status.ready) resolve(new PredictionWorker(worker, status.model, options));
        else {
          void worker.terminate();
          reject(status.userError ? new UserError(status.error) : new Error(status.error));
        }
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`prediction worker stopped before it was ready (exit code ${code})`)));
    });
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Requests the thread has started grading so far (cancelled ones it skipped are not counted). */
  get started(): number {
    return this.#started;
  }

  /**
   * Grades `images` in the thread, after the requests before it. When `signal` aborts before the
   * thread has started on it, the request is dropped (the thread skips it) and the promise
   * rejects with a CancelledError; once started, it runs to the end.
   */
  predict(
    images: Exclude<ImageInput, string>[],
    options: WorkerPredictOptions = { crop: 'disc' },
    signal?: AbortSignal,
  ): Promise<Prediction[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    if (signal?.aborted) return Promise.reject(new CancelledError());
    const id = this.#nextId++;
    return new Promise<Prediction[]>((resolve, reject) => {
      const cancel = (): void => {
        if (!this.#pending.has(id) || this.#grading.has(id)) return; // answered, or being graded
        this.#pending.delete(id);
        this.#worker.postMessage({ cancel: id } satisfies CancelRequest);
        reject(new CancelledError());
      };
      signal?.addEventListener('abort', cancel, { once: true });
      const settled = (): void => signal?.removeEventListener('abort', cancel);
      this.#pending.set(id, {
        resolve: (predictions) => {
          settled();
          resolve(predictions);
        },
        reject: (error) => {
          settled();
          reject(error);
        },
      });
      this.#worker.postMessage({ id, images, options } satisfies PredictRequest);
    });
  }

  /** Batches the thread has graded so far (photographs that arrive together share one forward pass). */
  get batches(): number {
    return this.#batches;
  }

  /** False once the thread has died or been closed. */
  get alive(): boolean {
    return this.#dead === undefined;
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }

  #failAll(error: Error): void {
    this.#dead ??= error;
    for (const deadline of this.#grading.values()) clearTimeout(deadline);
    this.#grading.clear();
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }
}
