// Runs an ES module in a fresh Node process (with tsx, so that it can import src/torch), for
// behaviour that could take the whole process down: the test sees the exit code and signal
// instead of dying with it.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');

export interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runIsolated(source: string, timeoutMs = 60_000): Outcome {
  const { status, signal, stdout, stderr } = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status, signal, stdout, stderr };
}
