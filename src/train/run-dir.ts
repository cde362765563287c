// The run directory: one folder per run holding everything it produced. Files are replaced
// atomically (temp file, fsync, rename) so an interrupted run never leaves a half-written file.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, existsSync, appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const RUN_FILES = {
  config: 'config.json',
  log: 'log.jsonl',
  best: 'best.safetensors',
  checkpoint: 'checkpoint.safetensors',
  checkpointState: 'checkpoint.json',
  metrics: 'metrics.json',
  predictions: 'predictions.csv',
  report: 'report.html',
} as const;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export class RunDir {
  constructor(readonly path: string) {}

  file(name: keyof typeof RUN_FILES): string {
    return join(this.path, RUN_FILES[name]);
  }
  has(name: keyof typeof RUN_FILES): boolean {
    return existsSync(this.file(name));
  }
  writeJson(name: keyof typeof RUN_FILES, value: unknown): void {
    writeFileAtomic(this.file(name), `${JSON.stringify(value, null, 2)}\n`);
  }
  readJson<T>(name: keyof typeof RUN_FILES): T {
    const path = this.file(name);
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch (error) {
      throw new Error(`cannot read ${path}: ${error instanceof Error ? error.message : error}`);
    }
  }
  appendLog(entry: object): void {
    appendFileSync(this.file('log'), `${JSON.stringify(entry)}\n`);
  }
  /** Keeps the first `epochs` log lines: a resumed run rewrites the epochs it repeats. */
  truncateLog(epochs: number): void {
    if (!this.has('log')) return;
    const kept = readFileSync(this.file('log'), 'utf8').split('\n').filter(Boolean).slice(0, epochs);
    writeFileAtomic(this.file('log'), kept.map((l) => `${l}\n`).join(''));
  }
}
