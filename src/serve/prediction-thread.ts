// The worker thread behind PredictionWorker: loads the run once, then grades what it is sent.
// Photographs are decoded and cropped (by sharp, off this thread) while earlier ones go through
// the model, and the ones ready together go through it in one forward pass (gradeLoaded).
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { MAX_INPUT_PIXELS } from '../data/fundus.js';
import { ModelOutputError, UserError } from '../errors.js';
import { gradeLoaded, isLoaded, loadPhoto, type LoadedPhoto, type Prediction } from '../model/grade-photo.js';
import { openRun } from '../model/open-run.js';
import * as torch from '../torch/index.js';
import type { CancelRequest, PredictReply, PredictRequest, ThreadData, WorkerReady } from './prediction-worker.js';

/**
 * Pixels being decoded at once: as many as the largest accepted photograph has, so small ones
 * decode side by side and a 50-megapixel one alone (one full-size photograph in memory per worker).
 */
const DECODE_PIXEL_BUDGET = MAX_INPUT_PIXELS;
/** Requests being decoded at once at most, however small. */
const MAX_DECODING = 8;

const port = parentPort!;
try {
  const { runDir, open, threads, batch } = workerData as ThreadData;
  torch.setNumThreads(threads);
  const opened = openRun(runDir, open);

  const waiting: PredictRequest[] = [];
  /** Cancels of requests not started yet; a request starts in id order, so older ids are stale. */
  const cancelled = new Set<number>();
  const ready: { request: PredictRequest; photos: (LoadedPhoto | Prediction)[] }[] = [];
  let decoding = 0;
  let decodingPixels = 0;
  /** Resolved (and replaced) whenever a decode finishes or a batch is taken: what admission and batching wait for. */
  let progressed = (): void => {};
  let progress = new Promise<void>((resolve) => {
    progressed = resolve;
  });
  const signalProgress = (): void => {
    const resolve = progressed;
    progress = new Promise<void>((next) => {
      progressed = next;
    });
    resolve();
  };
  let admitting = false;
  let grading = false;
  let batches = 0;

  const reply = (message: PredictReply): void => port.postMessage(message);
  const fail = (id: number, error: unknown): void =>
    reply({ id, error: (error as Error).message, modelError: error instanceof ModelOutputError });

  // The header's pixel count, read before anything is decoded; an unreadable header counts as
  // nothing (the decode then fails at once with its reason).
  const pixelsOf = async ({ images }: PredictRequest): Promise<number> => {
    let pixels = 0;
    for (const { bytes } of images) {
      const { width = 0, height = 0 } = await sharp(bytes, { limitInputPixels: false })
        .metadata()
        .catch(() => ({ width: 0, height: 0 }));
      pixels += width * height;
    }
    return pixels;
  };

  /**
   * Whether a request of `pixels` may start decoding now: within the pixel budget and MAX_DECODING,
   * and with at most one batch of photographs started and not yet in the model, so that a
   * started photograph is answered within its decoding and two forward passes (its deadline runs
   * from its start).
   */
  const mayStart = (pixels: number): boolean => {
    if (decoding === 0 && ready.length === 0) return true;
    const startedPhotos = decoding + ready.reduce((sum, { photos }) => sum + photos.length, 0);
    return decoding < MAX_DECODING && startedPhotos < batch.max && decodingPixels + pixels <= DECODE_PIXEL_BUDGET;
  };

  /** Starts decoding waiting requests in order while mayStart allows. */
  const admit = async (): Promise<void> => {
    if (admitting) return;
    admitting = true;
    try {
      while (waiting.length > 0) {
        const request = waiting.shift()!;
        if (cancelled.delete(request.id)) continue;
        const pixels = await pixelsOf(request);
        while (!mayStart(pixels)) await progress;
        if (cancelled.delete(request.id)) continue; // its asker went while the budget was full
        for (const id of cancelled) if (id < request.id) cancelled.delete(id); // came after their request started
        void decode(request, pixels);
      }
    } finally {
      admitting = false;
    }
  };

  const decode = async (request: PredictRequest, pixels: number): Promise<void> => {
    reply({ id: request.id, started: true }); // the grading deadline runs from here
    decoding++;
    decodingPixels += pixels;
    try {
      const photos = [];
      for (const image of request.images) photos.push(await loadPhoto(opened, image, request.options.crop));
      ready.push({ request, photos });
    } catch (error) {
      fail(request.id, error);
    } finally {
      decoding--;
      decodingPixels -= pixels;
      signalProgress();
    }
    void grade();
  };

  /** Requests that can go through the model together: the first ready one and those asking the same. */
  const takeBatch = (): typeof ready => {
    const first = ready[0]!;
    const same = (r: PredictRequest): boolean =>
      r.options.force === first.request.options.force && r.options.camPng === first.request.options.camPng;
    const taken: typeof ready = [];
    let photos = 0;
    for (let i = 0; i < ready.length; ) {
      const entry = ready[i]!;
      if (taken.length > 0 && (!same(entry.request) || photos + entry.photos.length > batch.max)) {
        i++;
        continue;
      }
      taken.push(...ready.splice(i, 1));
      photos += entry.photos.length;
    }
    return taken;
  };

  /** Grades ready photographs, as many at a time as are ready (up to batch.max), until none is. */
  const grade = async (): Promise<void> => {
    if (grading) return;
    grading = true;
    try {
      while (ready.length > 0) {
        // Photographs still decoding may join this batch if they finish within batch.waitMs.
        if (decoding > 0 && ready.length < batch.max && batch.waitMs > 0) await Promise.race([progress, sleep(batch.waitMs)]);
        const taken = takeBatch();
        signalProgress();
        try {
          const loaded = taken.flatMap(({ photos }) => photos.filter(isLoaded));
          const graded = await gradeLoaded(opened, loaded, taken[0]!.request.options);
          const batchNumber = batches++;
          for (const { request, photos } of taken) {
            reply({ id: request.id, batch: batchNumber, predictions: photos.map((photo) => (isLoaded(photo) ? graded.shift()! : photo)) });
          }
        } catch (error) {
          for (const { request } of taken) fail(request.id, error);
        }
        await turn(); // decodes that finished meanwhile join the queue; tensor handles are finalized
      }
    } finally {
      grading = false;
    }
  };

  port.on('message', (message: PredictRequest | CancelRequest) => {
    if ('cancel' in message) cancelled.add(message.cancel);
    else {
      waiting.push(message);
      void admit();
    }
  });
  const { modelConfig, ensemble, unfinished, precision, precisionFallback } = opened;
  port.postMessage({ ready: true, model: { modelConfig, ensemble, unfinished, precision, precisionFallback } } satisfies WorkerReady);
} catch (error) {
  port.postMessage({ ready: false, error: (error as Error).message, userError: error instanceof UserError } satisfies WorkerReady);
}
