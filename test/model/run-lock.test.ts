// The lock of a run directory, held by a child process: a second writer is refused by name while
// the holder lives, and the lock is taken over once the holder is killed with SIGKILL.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { RUN_LOCK_FILE, RunLock } from '../../src/model/run-lock.js';
import { repoRoot } from '../torch/isolated.js';

/** A child process that takes the lock of `dir`, says so, and waits to be killed. */
async function holder(dir: string) {
  const source = `import { RunLock } from './src/model/run-lock.ts';
RunLock.acquire(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], { cwd: repoRoot, stdio: 'pipe' });
  await new Promise<void>((done, fail) => {
    child.stdout.once('data', () => done());
    child.once('exit', (code) => fail(new Error(`holder exited (${code})`)));
  });
  return child;
}

describe('RunLock', () => {
  it('refuses a second writer by name while the holder lives, and takes over after it is killed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-lock-'));
    const child = await holder(dir);
    try {
      let refusal: unknown;
      try {
        RunLock.acquire(dir);
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(UserError);
      expect((refusal as Error).message).toMatch(
        new RegExp(`^${dir} is being written by another retinagrade process \\(pid ${child.pid} on .*\\): wait for it to finish`),
      );
    } finally {
      child.kill('SIGKILL');
      await new Promise((done) => child.once('exit', done));
    }
    // The killed holder's lock is still there, and stale.
    expect(JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')).pid).toBe(child.pid);
    const lock = RunLock.acquire(dir);
    expect(JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);
  }, 30_000);

  it('takes over the lock of a holder killed and not yet reaped (a zombie)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-lock-'));
    const child = await holder(dir);
    // Reaping happens when this process's event loop turns: acquire before it can.
    child.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (!readFileSync(`/proc/${child.pid}/stat`, 'utf8').includes(') Z') && Date.now() < deadline);
    RunLock.acquire(dir).release();
    await new Promise((done) => child.once('exit', done));
  }, 30_000);

  it('takes over an unreadable lock (its holder killed while writing it) and is taken again after release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-lock-'));
    writeFileSync(join(dir, RUN_LOCK_FILE), '{"pid": 12');
    const first = RunLock.acquire(dir);
    expect(() => RunLock.acquire(dir)).toThrow(/is being written by another retinagrade process/);
    first.release();
    RunLock.acquire(dir).release();
  });
});
