// The worker thread behind PredictionWorker: loads the run once, then grades on request.
import { parentPort, workerData } from 'node:worker_threads';
import { openRun } from '../train/saved-run.js';
import { predictImage } from '../train/predict-image.js';
import type { PredictReply, PredictRequest, WorkerReady } from './prediction-worker.js';

const port = parentPort!;
try {
  const saved = openRun((workerData as { runDir: string }).runDir);
  port.on('message', async ({ id, images, crop }: PredictRequest) => {
    try {
      const predictions = [];
      for (const image of images) predictions.push(await predictImage(saved, image, { crop }));
      port.postMessage({ id, predictions } satisfies PredictReply);
    } catch (error) {
      port.postMessage({ id, error: (error as Error).message } satisfies PredictReply);
    }
  });
  port.postMessage({ ready: true } satisfies WorkerReady);
} catch (error) {
  port.postMessage({ ready: false, error: (error as Error).message } satisfies WorkerReady);
}
