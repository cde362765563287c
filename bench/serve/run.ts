// Load test of `retinagrade serve` on loopback: the server (src/serve/server.ts) runs in this
// process on 127.0.0.1 with a free port, and `--concurrency` loops POST one photograph to
// /v1/predict back to back for `--seconds`; meanwhile GET /health is timed every 50 ms, to show
// the event loop stays free while the worker thread grades. Stops by itself.
//
//   npx tsx bench/serve/run.ts                          # default recipe's model (untrained), 4 clients, 10 s
//   npx tsx bench/serve/run.ts --model runs/a --cam --concurrency 8 --seconds 20
//
// Without --model it makes a run directory holding an untrained model of the default recipe's
// architecture (an ensemble of 5 compact CNNs at 28 px): grading time does not depend on the
// weights. The clients share this process with the server, so their cost is in the figures too.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createServer } from '../../src/serve/server.js';
import { RunConfigSchema, modelConfigOf } from '../../src/train/config.js';
import { untrainedRun } from '../../test/helpers/untrained-run.js';
import { fmt, repoRoot, runMain } from '../common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    image: { type: 'string', default: join(repoRoot, '../shared/samples/fundus_a.jpg') },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '4' },
    cam: { type: 'boolean', default: false },
  },
});

/** A run directory with an untrained model of the default recipe's architecture. */
const defaultRecipeRun = (): string => {
  const config = RunConfigSchema.parse({});
  return untrainedRun(config.ensemble, { modelConfig: modelConfigOf(config) });
};

/** /health is probed at this pace, not back to back: a tight loop would take a core from the worker. */
const HEALTH_INTERVAL_MS = 50;

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : Number.NaN;
}

/**
 * Runs `concurrency` loops of `request` until `until`, each pausing `pauseMs` between requests;
 * returns each completed request's milliseconds.
 */
async function load(request: () => Promise<void>, concurrency: number, until: number, pauseMs = 0): Promise<number[]> {
  const latencies: number[] = [];
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const started = performance.now();
      await request();
      latencies.push(performance.now() - started);
      if (pauseMs) await setTimeout(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return latencies;
}

async function main(): Promise<void> {
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const runDir = values.model ?? defaultRecipeRun();
  const photo = readFileSync(values.image);
  const app = await createServer(runDir);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const description = (await app.inject('/v1/model')).json() as { model: string; input_size: number; ensemble: number };
  const predictUrl = `${url}/v1/predict${values.cam ? '?cam=1' : ''}`;
  let failures = 0;
  const predict = async (): Promise<void> => {
    const response = await fetch(predictUrl, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
    await response.arrayBuffer();
    if (response.status !== 200) failures++;
  };
  const health = async (): Promise<void> => {
    await (await fetch(`${url}/health`)).arrayBuffer();
  };
  try {
    await load(predict, concurrency, performance.now() + 1000 * Number(values.warmup));
    failures = 0;
    const startLoad = loadavg()[0]!;
    const started = performance.now();
    const until = started + 1000 * seconds;
    const [latencies, healthLatencies] = await Promise.all([load(predict, concurrency, until), load(health, 1, until, HEALTH_INTERVAL_MS)]);
    const elapsed = (performance.now() - started) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    const healthSorted = healthLatencies.sort((a, b) => a - b);
    const summary = {
      model: `${description.model} x${description.ensemble} @${description.input_size}`,
      cam: values.cam,
      concurrency,
      seconds: elapsed,
      requests: sorted.length,
      failures,
      requestsPerSecond: sorted.length / elapsed,
      latencyMs: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.at(-1) },
      healthMs: { probes: healthSorted.length, p50: percentile(healthSorted, 0.5), p99: percentile(healthSorted, 0.99) },
      loadAverage: { start: startLoad, end: loadavg()[0] },
    };
    const l = summary.latencyMs;
    process.stderr.write(
      `${summary.model}${values.cam ? ' +cam' : ''}, ${concurrency} clients, ${fmt(elapsed)} s: ${sorted.length} requests ` +
        `(${failures} failed), ${fmt(summary.requestsPerSecond)} req/s; latency ms p50 ${fmt(l.p50)} p90 ${fmt(l.p90)} ` +
        `p99 ${fmt(l.p99)} max ${fmt(l.max ?? Number.NaN)}; GET /health meanwhile p50 ${fmt(summary.healthMs.p50)} ` +
        `p99 ${fmt(summary.healthMs.p99)} ms; load average ${fmt(startLoad)} -> ${fmt(loadavg()[0]!)}\n`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await app.close();
  }
}

runMain(main);
