// Replacing a file so that a crash at any moment leaves either the old file or the new one.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';

/** File system refusals a user can fix, in words: the bare code names neither cause nor file. */
const WRITE_FAILURES: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'its folder does not exist',
};

/** A failed write of `path` as a UserError naming the file and the cause, when it is one a user can fix. */
export function writeFailure(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  const cause = code === undefined ? undefined : WRITE_FAILURES[code];
  return cause ? new UserError(`cannot write ${path}: ${cause} (${code})`) : (error as Error);
}

/**
 * Writes `data` to a temporary file in the same directory, fsyncs it, renames it over `path`,
 * then fsyncs the directory so the rename itself survives a crash. An existing file is replaced
 * only on success; a failed write leaves no temporary file behind (a killed one does:
 * removeLeftoverTemporaries) and is a writeFailure naming `path`.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const dir = dirname(path);
  const temporary = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(temporary, 'wx');
    try {
      for (let written = 0; written < bytes.byteLength; ) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    fsyncDirectory(dir);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw writeFailure(path, error);
  }
}

/** The temporary files writeFileAtomic makes: `.<name>.<pid>.<8 hex>.tmp`. */
const TEMPORARY = /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temporary files of writes that never finished (their process was killed between
 * creating and renaming them) from `dir` and the folders below it, `depth` levels down. Call it
 * only while no other process writes there (e.g. holding the run's lock). Returns what it removed.
 */
export function removeLeftoverTemporaries(dir: string, depth = 3): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && depth > 0) removed.push(...removeLeftoverTemporaries(path, depth - 1));
    else if (entry.isFile() && TEMPORARY.test(entry.name)) {
      rmSync(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}

function fsyncDirectory(dir: string): void {
  // Windows cannot open a directory for fsync; there the rename is as durable as it gets.
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
