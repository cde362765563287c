// worker.terminate() while the thread is inside the binding (the server's grading deadline and
// close do this) must stop that thread only, even when a result cannot be wrapped or an error
// not thrown in the stopping thread. Run in a child process, so that an abort fails the test
// instead of killing it.
import { expect, it } from 'vitest';
import { runIsolated } from './isolated.js';

const RUNS = 200;

const child = `
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

const binding = createRequire(process.cwd() + '/')('node-gyp-build').path(process.cwd() + '/native');
// Results wrapped, errors translated and handles left to the finalizers, as the thread stops.
const thread = \`
  const { parentPort, workerData } = require('node:worker_threads');
  const t = require(workerData);
  const a = t.ones([64, 64], 'float32');
  const wrong = t.ones([3], 'float32');
  parentPort.postMessage('computing');
  for (let i = 0; ; i++) {
    const b = t.matmul(a, a);
    if (i % 2 === 0) t.dispose(b);
    try { t.matmul(a, wrong); } catch {}
  }
\`;
for (let run = 0; run < ${RUNS}; run++) {
  const worker = new Worker(thread, { eval: true, workerData: binding, execArgv: [] });
  await once(worker, 'message');
  await sleep(run % 5);
  await worker.terminate();
}
console.log('survived ${RUNS}');
`;

it(`terminating a worker thread mid-computation ${RUNS} times never takes the process down`, { timeout: 90_000 }, () => {
  const { status, signal, stdout, stderr } = runIsolated(child, 80_000);
  expect({ status, signal }, stderr).toEqual({ status: 0, signal: null });
  expect(stdout).toContain(`survived ${RUNS}`);
});
