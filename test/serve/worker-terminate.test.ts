// The server stops its grading thread with worker.terminate() when a photograph passes the
// deadline, and on close. Stopped mid-grading, the thread must go alone, never the process. In a
// child process, so that an abort fails the test instead of ending it;
// test/torch/worker-terminate.test.ts does the same 200 times with a bare thread.
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { runIsolated } from '../torch/isolated.js';

const RUNS = 25;
const samples = resolve(process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data'), '../samples');

const child = `
import { readFileSync } from 'node:fs';
import { ModelConfigSchema } from './src/nn/index.ts';
import { PredictionWorker } from './src/serve/prediction-worker.ts';
import { untrainedRun } from './test/helpers/untrained-run.ts';

// An untrained ResNet-18 at 64 px: 32 photographs (two batches) take longer than any deadline here.
const runDir = untrainedRun(1, { modelConfig: ModelConfigSchema.parse({ name: 'resnet18', inputSize: 64, numClasses: 5 }) });
const image = { name: 'fundus_a.jpg', bytes: readFileSync(${JSON.stringify(samples)} + '/fundus_a.jpg') };
let stopped = 0;
for (let run = 0; run < ${RUNS}; run++) {
  const worker = await PredictionWorker.open(runDir, { deadlineMs: 20 + (run % 5) * 10 });
  await worker.predict(Array.from({ length: 32 }, () => image)).catch(() => stopped++);
  await worker.close();
}
console.log(JSON.stringify({ stopped }));
`;

it(`a prediction worker stopped mid-grading ${RUNS} times never takes the process down`, { timeout: 90_000 }, () => {
  const { status, signal, stdout, stderr } = runIsolated(child, 80_000);
  expect({ status, signal }, stderr).toEqual({ status: 0, signal: null });
  expect(JSON.parse(stdout)).toEqual({ stopped: RUNS }); // every deadline passed mid-grading
});
