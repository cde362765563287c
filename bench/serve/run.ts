// Load test of `retinagrade serve` on loopback: the server runs as its own process (the command
// a user starts) on 127.0.0.1 with a free port, and `--concurrency` clients in this process POST
// the photographs of `--images` in turn to /v1/predict, back to back, for `--seconds` or until
// `--requests` have been answered; meanwhile GET /health is timed every 50 ms (the event loop
// stays free while the workers grade) and the server's RSS and CPU time are sampled from /proc.
// Stops by itself, and stops the server.
//
//   npx tsx bench/serve/run.ts                                   # 16 clients, 10 s, the run below
//   npx tsx bench/serve/run.ts --concurrency 1 --seconds 10      # one client: per-request cost
//   npx tsx bench/serve/run.ts --requests 20000                  # RSS over 20,000 requests
//   npx tsx bench/serve/run.ts --model runs/a --cam --workers 1 --batch 1 --precision bf16
//
// Without --model it serves a run trained by `retinagrade train --epochs 1` (the default recipe:
// an ensemble of 5 compact CNNs at 28 px; grading time does not depend on the epochs) with its
// calibration.json and gradability gate, as users serve it. The run is trained once into the
// system's temp folder and reused (a minute or two on 2 cores; needs RetinaMNIST in --data-dir,
// $MEDMNIST_DIR or ../shared/data).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { fmt, oursCommand, repoRoot, runMain } from '../common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    'data-dir': { type: 'string', default: process.env.MEDMNIST_DIR ?? join(repoRoot, '../shared/data') },
    images: { type: 'string', default: join(repoRoot, '../shared/samples') },
    seconds: { type: 'string', default: '10' },
    requests: { type: 'string' },
    warmup: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    cam: { type: 'boolean', default: false },
    workers: { type: 'string' },
    batch: { type: 'string' },
    'batch-wait': { type: 'string' },
    precision: { type: 'string' },
  },
});

/** /health is probed at this pace, not back to back: a tight loop would take a core from the workers. */
const HEALTH_INTERVAL_MS = 50;
/** The server's RSS and CPU time are read at this pace. */
const SAMPLE_INTERVAL_MS = 100;
const CLOCK_TICKS_PER_SECOND = 100;

/** Runs the retinagrade command from the sources; resolves with the child once `ready` matches its stdout. */
function startCommand(args: string[], ready?: RegExp): Promise<{ child: ChildProcess; match: RegExpMatchArray | null }> {
  const [command, commandArgs] = oursCommand('bench/serve/retinagrade.ts', args);
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const match = ready && stdout.match(ready);
      if (match) resolve({ child, match });
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.once('exit', (code) => {
      if (code === 0 && !ready) resolve({ child, match: null });
      else reject(new Error(`retinagrade ${args.join(' ')} exited with ${code}:\n${stderr.slice(-2000)}`));
    });
  });
}

/** The default recipe trained for one epoch, once, in the temp folder (reused while it is there). */
async function benchmarkRun(): Promise<string> {
  const runDir = join(tmpdir(), 'retinagrade-bench-serve-run');
  if (existsSync(join(runDir, 'metrics.json'))) return runDir;
  process.stderr.write(`training the run to serve into ${runDir} (retinagrade train --epochs 1)\n`);
  await startCommand(['train', '--epochs', '1', '--out', runDir, '--overwrite', '--data-dir', values['data-dir']!]);
  return runDir;
}

/** The server process's resident set (MiB) and CPU time (s), from /proc. */
function processUsage(pid: number): { rssMiB: number; cpuSeconds: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))!;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are the stat file's fields 14 and 15 (11 and 12 after the command name).
  return { rssMiB: Number(rss[1]) / 1024, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : Number.NaN;
}

/**
 * Runs `concurrency` loops of `request` until `done()` or until `budget` requests have started,
 * each pausing `pauseMs` between requests; returns each completed request's milliseconds.
 */
async function load(
  request: () => Promise<void>,
  concurrency: number,
  done: () => boolean,
  budget = Infinity,
  pauseMs = 0,
): Promise<number[]> {
  const latencies: number[] = [];
  let started = 0;
  const loop = async (): Promise<void> => {
    while (!done() && started < budget) {
      started++;
      const begun = performance.now();
      await request();
      latencies.push(performance.now() - begun);
      if (pauseMs) await setTimeout(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return latencies;
}

async function main(): Promise<void> {
  const concurrency = Number(values.concurrency);
  const requests = values.requests === undefined ? Infinity : Number(values.requests);
  const seconds = values.requests === undefined ? Number(values.seconds) : Infinity;
  const runDir = values.model ?? (await benchmarkRun());
  const photos = readdirSync(values.images!)
    .filter((name) => /\.(jpe?g|png|tiff?|webp)$/i.test(name))
    .sort()
    .map((name) => readFileSync(join(values.images!, name)));
  if (photos.length === 0) throw new Error(`no photographs in ${values.images}`);
  const serverFlags = [
    ...(values.workers ? ['--workers', values.workers] : []),
    ...(values.batch ? ['--batch', values.batch] : []),
    ...(values['batch-wait'] ? ['--batch-wait', values['batch-wait']] : []),
    ...(values.precision ? ['--precision', values.precision] : []),
  ];
  const { child, match } = await startCommand(['serve', '--model', runDir, '--port', '0', ...serverFlags], /on (http:\/\/\S+) /);
  const url = match![1]!;
  try {
    const description = (await (await fetch(`${url}/v1/model`)).json()) as { model: string; input_size: number; ensemble: number };
    const predictUrl = `${url}/v1/predict${values.cam ? '?cam=1' : ''}`;
    const statuses = new Map<number, number>();
    let next = 0;
    const predict = async (): Promise<void> => {
      const body = photos[next++ % photos.length]!;
      const response = await fetch(predictUrl, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body });
      await response.arrayBuffer();
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    };
    const health = async (): Promise<void> => {
      await (await fetch(`${url}/health`)).arrayBuffer();
    };
    const warmedUp = performance.now() + 1000 * Number(values.warmup);
    await load(predict, concurrency, () => performance.now() >= warmedUp);
    statuses.clear();
    const startLoad = loadavg()[0]!;
    const before = processUsage(child.pid!);
    const rss = [before.rssMiB];
    const sampler = setInterval(() => rss.push(processUsage(child.pid!).rssMiB), SAMPLE_INTERVAL_MS);
    const started = performance.now();
    const until = started + 1000 * seconds;
    let latencies: number[] = [];
    let finished = false;
    const healthLatencies = load(health, 1, () => finished, Infinity, HEALTH_INTERVAL_MS);
    try {
      latencies = await load(predict, concurrency, () => performance.now() >= until, requests);
    } finally {
      finished = true;
      clearInterval(sampler);
    }
    const elapsed = (performance.now() - started) / 1000;
    const after = processUsage(child.pid!);
    rss.push(after.rssMiB);
    const healthSorted = (await healthLatencies).sort((a, b) => a - b);
    const sorted = latencies.sort((a, b) => a - b);
    const failures = sorted.length - (statuses.get(200) ?? 0);
    const summary = {
      model: `${description.model} x${description.ensemble} @${description.input_size}`,
      cam: values.cam,
      concurrency,
      server: serverFlags.join(' '),
      photos: photos.length,
      seconds: elapsed,
      requests: sorted.length,
      statuses: Object.fromEntries(statuses),
      requestsPerSecond: sorted.length / elapsed,
      latencyMs: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.at(-1) },
      healthMs: { probes: healthSorted.length, p50: percentile(healthSorted, 0.5), p99: percentile(healthSorted, 0.99) },
      serverCpuMsPerRequest: (1000 * (after.cpuSeconds - before.cpuSeconds)) / sorted.length,
      serverRssMiB: { start: rss[0], end: rss.at(-1), peak: Math.max(...rss) },
      loadAverage: { start: startLoad, end: loadavg()[0] },
    };
    const l = summary.latencyMs;
    const r = summary.serverRssMiB;
    process.stderr.write(
      `${summary.model}${values.cam ? ' +cam' : ''} ${summary.server}, ${concurrency} clients, ${fmt(elapsed)} s: ` +
        `${sorted.length} requests ` +
        `(${failures} not 200), ${fmt(summary.requestsPerSecond)} req/s; latency ms p50 ${fmt(l.p50)} p90 ${fmt(l.p90)} ` +
        `p99 ${fmt(l.p99)} max ${fmt(l.max ?? Number.NaN)}; GET /health meanwhile p50 ${fmt(summary.healthMs.p50)} ` +
        `p99 ${fmt(summary.healthMs.p99)} ms; server CPU ${fmt(summary.serverCpuMsPerRequest, 2)} ms/request, ` +
        `RSS MiB start ${fmt(r.start!)} end ${fmt(r.end!)} peak ${fmt(r.peak)}; load average ${fmt(startLoad)} -> ${fmt(loadavg()[0]!)}\n`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    child.kill('SIGTERM');
  }
}

runMain(main);
