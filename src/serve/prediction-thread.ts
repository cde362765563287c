// The worker thread behind PredictionWorker: loads the run once, then grades what it is sent.
// Photographs are decoded and cropped in a thread of their own (decode-thread.ts) while earlier
// ones go through the model, and the ones ready together go through it in one forward pass
// (gradeLoaded).
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { MAX_INPUT_PIXELS, readHeader, type ImageHeader } from '../data/fundus.js';
import { ModelOutputError, UserError } from '../errors.js';
import { gradeLoaded, isLoaded, loadedPhoto, unreadable, type LoadedPhoto, type Prediction } from '../model/grade-photo.js';
import { openRun } from '../model/open-run.js';
import * as torch from '../torch/index.js';
import type { DecodeReply, DecodeRequest } from './decode-thread.js';
import type { CancelRequest, PredictReply, PredictRequest, ThreadData, WorkerReady } from './prediction-worker.js';
import { startThread } from './start-thread.js';

/**
 * Pixels being decoded at once: as many as the largest accepted photograph has, so small ones
 * decode side by side and a 50-megapixel one alone (one full-size photograph in memory per worker).
 */
const DECODE_PIXEL_BUDGET = MAX_INPUT_PIXELS;
/** Requests being decoded at once at most, however small. */
const MAX_DECODING = 8;

/** An image's header, or the record of an image whose header is unusable. */
type Header = ImageHeader | Prediction;
const isReadable = (header: Header): header is ImageHeader => 'format' in header;

const port = parentPort!;
try {
  const { runDir, open, threads, batch } = workerData as ThreadData;
  torch.setNumThreads(threads);
  const opened = openRun(runDir, open);

  // The decoding thread; if it dies, so does this thread (PredictionWorker then fails its requests).
  const decoder = startThread('decode-thread');
  const awaitingDecode = new Map<number, (reply: DecodeReply) => void>();
  decoder.on('message', (reply: DecodeReply) => {
    awaitingDecode.get(reply.id)?.(reply);
    awaitingDecode.delete(reply.id);
  });
  decoder.on('error', (error) => {
    throw error;
  });
  decoder.on('exit', (code) => {
    throw new Error(`the decoding thread stopped (exit code ${code})`);
  });
  /**
   * The request's photographs decoded and cropped in the decoding thread, then loaded as the
   * model's input; `headers` has each image's header (sent along: the decoding thread does not
   * read it again) or the record of an image whose header is unusable (not sent).
   */
  const load = (request: PredictRequest, headers: readonly Header[]): Promise<(LoadedPhoto | Prediction)[]> =>
    new Promise((resolve, reject) => {
      const images = request.images.flatMap((image, i) => {
        const header = headers[i]!;
        return isReadable(header) ? [{ ...image, header }] : [];
      });
      if (images.length === 0) return resolve(headers as Prediction[]);
      awaitingDecode.set(request.id, (reply) => {
        if ('error' in reply) return reject(new Error(reply.error));
        const decoded = reply.photos.map((p) => ('pixels' in p ? loadedPhoto(opened, p.file, p.pixels) : unreadable(p.file, p.unreadable)));
        resolve(headers.map((header) => (isReadable(header) ? decoded.shift()! : header)));
      });
      decoder.postMessage({
        id: request.id,
        images,
        crop: request.options.crop,
        size: opened.modelConfig.inputSize,
      } satisfies DecodeRequest);
    });

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

  /**
   * Each image's header (its pixel count is what admission budgets), read before anything is
   * decoded, or the record of an image whose header is unusable: it is answered without being decoded.
   */
  const headersOf = ({ images }: PredictRequest): Promise<Header[]> =>
    Promise.all(
      images.map(async (image) => {
        try {
          return await readHeader(image);
        } catch (error) {
          if (error instanceof UserError) return unreadable(image.name, error.message);
          throw error;
        }
      }),
    );

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
        const headers = await headersOf(request);
        const pixels = headers.reduce((sum, header) => sum + (isReadable(header) ? header.width * header.height : 0), 0);
        while (!mayStart(pixels)) await progress;
        if (cancelled.delete(request.id)) continue; // its asker went while the budget was full
        for (const id of cancelled) if (id < request.id) cancelled.delete(id); // came after their request started
        void decode(request, headers, pixels);
      }
    } finally {
      admitting = false;
    }
  };

  const decode = async (request: PredictRequest, headers: readonly Header[], pixels: number): Promise<void> => {
    reply({ id: request.id, started: true }); // the grading deadline runs from here
    decoding++;
    decodingPixels += pixels;
    try {
      ready.push({ request, photos: await load(request, headers) });
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
