// One writer per run directory. A second `train` into the same --out (or an --overwrite while a
// run is going) would interleave two runs' files: the lock file refuses it by name. The lock
// holds its owner's pid, so a lock left by a process that was killed (SIGKILL leaves no chance
// to clean up) is recognised as stale and taken over.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { UserError } from '../errors.js';

export const RUN_LOCK_FILE = '.retinagrade.lock';

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/**
 * Whether `pid` is a live process on this machine (EPERM: alive, owned by another user). A
 * zombie (killed, not yet reaped by its parent) still answers signal 0 but holds nothing: on
 * Linux its state in /proc says so.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): signal 0 is all there is
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    return Number.isInteger(owner.pid) && typeof owner.host === 'string' ? (owner as LockOwner) : undefined;
  } catch {
    return undefined; // gone, or half-written by a holder killed while creating it
  }
}

export class RunLock {
  #held = true;
  private constructor(readonly path: string) {}

  /**
   * Takes the lock of the run directory `dir` (which must exist) for this process until release()
   * or exit. Refused with a UserError naming the holder while another live process holds it.
   */
  static acquire(dir: string): RunLock {
    const path = join(dir, RUN_LOCK_FILE);
    const mine: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
    for (let attempt = 0; ; attempt++) {
      try {
        writeFileSync(path, JSON.stringify(mine), { flag: 'wx' });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error;
      }
      const owner = readOwner(path);
      // Another machine's pid says nothing here (a shared folder): only its owner can clear it.
      if (owner && (owner.host !== mine.host || alive(owner.pid))) {
        throw new UserError(
          `${dir} is being written by another retinagrade process (pid ${owner.pid} on ${owner.host}, since ${owner.since}): ` +
            `wait for it to finish, stop it, or choose another --out (if no such process runs, remove ${path})`,
        );
      }
      // Stale (its holder is dead) or unreadable: remove it, unless it changed meanwhile (another
      // process took it over first), and try again.
      const current = readOwner(path);
      if (JSON.stringify(current) === JSON.stringify(owner)) rmSync(path, { force: true });
    }
    const lock = new RunLock(path);
    process.once('exit', lock.#onExit);
    return lock;
  }

  readonly #onExit = (): void => this.release();

  /** Gives the lock up (only if it is still this process's). */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    process.off('exit', this.#onExit);
    if (readOwner(this.path)?.pid === process.pid) rmSync(this.path, { force: true });
  }
}
