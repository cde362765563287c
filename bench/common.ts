// Helpers shared by the benchmarks: argument parsing, statistics, peak RSS and running one
// measurement in a child process (ours: node, peer: Debian's python3 with torch).
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Debian's python with torch 1.13 and torchvision (not a pyenv python on PATH). */
export const PEER_PYTHON = process.env.PEER_PYTHON ?? '/usr/bin/python3';

/** Parses `--key value` and `--flag` arguments. */
export function parseArgs(argv: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}'`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) args.set(arg.slice(2), 'true');
    else {
      args.set(arg.slice(2), next);
      i++;
    }
  }
  return args;
}

export function intArg(args: Map<string, string>, name: string, fallback: number): number {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got '${raw}'`);
  return value;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Peak resident set size of this process in MiB (VmHWM), or NaN where /proc is absent. */
export function peakRssMiB(): number {
  try {
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export interface ChildResult {
  /** The last line of the child's stdout that parses as a JSON object. */
  json: Record<string, unknown>;
  seconds: number;
}

/**
 * Runs a command, streams its stderr through (progress lines), and returns the JSON object it
 * printed last on stdout. Rejects with the child's stderr tail when it fails.
 */
export function runChild(command: string, args: string[], env: Record<string, string> = {}): Promise<ChildResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (process.env.BENCH_VERBOSE) process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const line = stdout
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) {
        reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr.slice(-2000)}`));
        return;
      }
      resolve({ json: JSON.parse(line) as Record<string, unknown>, seconds });
    });
  });
}

/**
 * `count` batch sizes drawn uniformly from `low`..`high` by xorshift32 from `seed`: the same
 * sequence as `batch_sizes` in engine/peer.py, so both sides train on the same shapes.
 */
export function batchSizes(low: number, high: number, count: number, seed = 1): number[] {
  let state = seed >>> 0 || 1;
  return Array.from({ length: count }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return low + (state % (high - low + 1));
  });
}

/** `--batch-range 16-64` as [16, 64]; undefined when absent. */
export function rangeArg(args: Map<string, string>, name: string): [number, number] | undefined {
  const raw = args.get(name);
  if (raw === undefined) return undefined;
  const match = /^(\d+)-(\d+)$/.exec(raw);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
  if (!match || low < 2 || high < low) throw new Error(`--${name} must be LOW-HIGH with 2 <= LOW <= HIGH, got '${raw}'`);
  return [low, high];
}

/** How ours runs as a child: node with tsx's loader, so the TypeScript sources run as they are. */
export function oursCommand(script: string, args: string[]): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', join(repoRoot, script), ...args]];
}

export const fmt = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** Writes a benchmark's results file (machine, load, settings, summary, raw runs) and says where. */
export function writeResults(
  out: string,
  tag: string,
  startLoad: number,
  body: { settings: object; summary: unknown; runs: unknown },
): void {
  const machine = { cpu: cpus()[0]?.model, cores: cpus().length };
  const payload = { date: new Date().toISOString(), machine, loadAverage: { start: startLoad, end: loadavg()[0] }, ...body };
  writeFileSync(out, `${JSON.stringify(payload, null, 2)}\n`);
  process.stderr.write(`[${tag}] wrote ${out}\n`);
}

/** Runs a benchmark's main, turning a failure into a one-line message and exit code 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
