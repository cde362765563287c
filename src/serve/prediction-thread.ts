// The worker thread behind PredictionWorker: loads the run once, then grades on request.
import { parentPort, workerData } from 'node:worker_threads';
import { openModel } from '../api.js';
import { ModelOutputError, UserError } from '../errors.js';
import type { CancelRequest, PredictReply, PredictRequest, WorkerReady } from './prediction-worker.js';

const port = parentPort!;
try {
  const { runDir, allowUnfinished } = workerData as { runDir: string; allowUnfinished?: boolean };
  const model = await openModel(runDir, { allowUnfinished });
  const grade = async ({ id, images, options }: PredictRequest): Promise<void> => {
    port.postMessage({ id, started: true } satisfies PredictReply); // the grading deadline runs from here
    try {
      const predictions = [];
      for (const image of images) {
        predictions.push(await (options.camPng ? model.gradcam(image, options) : model.grade(image, options)));
      }
      port.postMessage({ id, predictions } satisfies PredictReply);
    } catch (error) {
      port.postMessage({ id, error: (error as Error).message, modelError: error instanceof ModelOutputError } satisfies PredictReply);
    }
  };
  // One request at a time: decoding is asynchronous, and overlapping requests would each hold a
  // decoded photograph (up to 50 megapixels) at once. A cancel arrives while its request waits
  // in this queue (the main thread sends none for a request already started).
  let queue = Promise.resolve();
  const cancelled = new Set<number>();
  port.on('message', (message: PredictRequest | CancelRequest) => {
    if ('cancel' in message) {
      cancelled.add(message.cancel);
      return;
    }
    queue = queue.then(() => {
      if (cancelled.delete(message.id)) return undefined;
      for (const id of cancelled) if (id < message.id) cancelled.delete(id); // came after their request started
      return grade(message);
    });
  });
  const { modelConfig, ensemble, unfinished } = model.info;
  port.postMessage({ ready: true, model: { modelConfig, ensemble, unfinished } } satisfies WorkerReady);
} catch (error) {
  port.postMessage({ ready: false, error: (error as Error).message, userError: error instanceof UserError } satisfies WorkerReady);
}
