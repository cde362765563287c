// Flood test of `retinagrade serve`'s memory: `--uploads` clients POST a body of `--max-bytes`
// bytes each, all at once, to a server on 127.0.0.1 (an untrained model; the bodies are random
// bytes, refused as images by the worker), `--rounds` times. Prints JSON: the responses by
// status, and the process's RSS before (after one warm-up upload and a GC: the worker's decoder
// starts once), at its peak during the floods (sampled every 5 ms) and after each round (GC,
// then a pause). Server and clients share this process; the clients send one shared buffer.
//
//   node --expose-gc --import tsx scripts/reliability/flood.ts                      # 200 x 20 MiB, the defaults
//   node --expose-gc --import tsx scripts/reliability/flood.ts --uploads 60 --max-bytes 1048576
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createServer, DEFAULT_MAX_BYTES } from '../../src/serve/server.js';
import { untrainedRun } from '../../test/helpers/untrained-run.js';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '2' },
    'max-bytes': { type: 'string', default: String(DEFAULT_MAX_BYTES) },
  },
});
const uploads = Number(values.uploads);
const maxBytes = Number(values['max-bytes']);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);

/** RSS after garbage collection has had its chance (finalizers run from the event loop). */
async function settledRss(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await setTimeout(100);
  }
  return process.memoryUsage.rss();
}

/** One upload; resolves with the status, or 'reset' when the server closed before answering. */
function upload(port: number, body: Buffer): Promise<number | 'reset'> {
  return new Promise((resolve) => {
    let status: number | 'reset' = 'reset';
    const req = request({ host: '127.0.0.1', port, path: '/v1/predict', method: 'POST', headers: { 'content-type': 'image/jpeg' } });
    req.on('response', (response) => {
      status = response.statusCode!;
      response.resume();
      response.on('end', () => resolve(status));
    });
    req.on('error', () => resolve(status));
    req.end(body);
  });
}

const app = await createServer(untrainedRun(1), { maxBytes });
await app.listen({ host: '127.0.0.1', port: 0 });
const { port } = app.server.address() as { port: number };
const body = randomBytes(maxBytes);
await upload(port, body);
const before = await settledRss();
let peak = before;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 5);
const byStatus: Record<string, number> = {};
const after: number[] = [];
const started = performance.now();
for (let round = 0; round < Number(values.rounds); round++) {
  const statuses = await Promise.all(Array.from({ length: uploads }, () => upload(port, body)));
  for (const status of statuses) byStatus[status] = (byStatus[status] ?? 0) + 1;
  after.push(mib(await settledRss()));
}
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
await app.close();

console.log(
  JSON.stringify({
    uploads,
    rounds: after.length,
    max_bytes: maxBytes,
    sent_mib: mib(after.length * uploads * maxBytes),
    seconds: Number(seconds.toFixed(2)),
    responses: byStatus,
    rss_mib: { before: mib(before), peak: mib(peak), after_each_round: after },
  }),
);
