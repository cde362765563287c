// Starting one of the server's worker threads from its module in this folder: the compiled .js,
// or from the TypeScript sources (tests, tsx) through a bootstrap that registers tsx first.
import { Worker } from 'node:worker_threads';

const fromSource = import.meta.url.endsWith('.ts');

/** Starts `./<module>.js` (or `.ts`) of this folder as a worker thread. */
export function startThread(module: 'prediction-thread' | 'decode-thread', workerData?: unknown): Worker {
  const threadFile = new URL(`./${module}.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  if (!fromSource) return new Worker(threadFile, { workerData });
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(threadFile.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}
