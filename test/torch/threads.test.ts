// libtorch's thread count is one setting for the process: a worker thread that loads the engine
// (the server grades in one) must not reset what the process chose.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const initial = torch.getNumThreads();
afterEach(() => torch.setNumThreads(initial));

/** The thread count a new worker thread sees after importing src/torch. */
function threadsInWorker(): Promise<number> {
  const engine = new URL('../../src/torch/index.ts', import.meta.url).href;
  const source = `
    const { parentPort } = require('node:worker_threads');
    import('tsx/esm/api')
      .then(({ register }) => { register(); return import(${JSON.stringify(engine)}); })
      .then((torch) => parentPort.postMessage(torch.getNumThreads()));
  `;
  const worker = new Worker(source, { eval: true });
  return new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => worker.terminate());
}

describe('thread count', () => {
  it('a worker thread that imports the engine keeps the count the process chose', async () => {
    const chosen = availableParallelism() + 1; // not the default, whatever the machine
    torch.setNumThreads(chosen);
    expect(torch.getNumThreads()).toBe(chosen);
    expect(await threadsInWorker()).toBe(chosen);
  });

  it('refuses counts that are not a positive int, instead of truncating them', () => {
    for (const bad of [0, -1, 2 ** 31, 2 ** 32 + 1]) {
      expect(() => torch.setNumThreads(bad)).toThrow(new RangeError('thread count must be an integer from 1 to 2147483647'));
    }
    expect(torch.getNumThreads()).toBe(initial);
  });
});
