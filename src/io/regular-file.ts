// Reading a file the user named, safely: only a regular file (a FIFO would block forever, a device
// such as /dev/zero never ends), and only up to a size checked before a byte is read. The file is
// opened once and checked through that descriptor, so it cannot be swapped between check and read.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { UserError } from '../errors.js';

/** The largest JSON file read (a run's config and metrics, a --config file). */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** Non-blocking, so that opening a FIFO with no writer returns at once (and is then refused). */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

const sizeText = (bytes: number): string =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${bytes} bytes`;

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The problem with reading `stats`' file at `path` for `what`, or undefined when it may be read. */
function refusal(path: string, stats: Stats, maxBytes: number, what: string): UserError | undefined {
  if (!stats.isFile()) return new UserError(`${path}: ${kindOf(stats)}, not a regular file (expected ${what})`);
  if (stats.size > maxBytes) {
    return new UserError(`${path}: ${sizeText(stats.size)}, over the ${sizeText(maxBytes)} limit for ${what}`);
  }
  return undefined;
}

/** Why a file could not be opened, as a UserError naming it (ENOENT, EACCES, ELOOP...). */
function openError(path: string, error: unknown, what: string): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (error as Error).message);
  return new UserError(`${path}: cannot read ${what} (${reason})`);
}

/** Reads `path` whole; refuses anything but a regular file of at most `maxBytes`. `what` names the expected content in errors. */
export function readRegularFileSync(path: string, maxBytes: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (error) {
    throw openError(path, error, what);
  }
  try {
    const stats = fstatSync(fd);
    const refused = refusal(path, stats, maxBytes, what);
    if (refused) throw refused;
    const bytes = Buffer.allocUnsafe(stats.size);
    let read = 0;
    for (let n = -1; read < bytes.length && n !== 0; read += n) n = readSync(fd, bytes, read, bytes.length - read, read);
    // A file that shrank while being read is not the file that was checked.
    if (read !== bytes.length) throw new UserError(`${path}: changed while being read (expected ${what})`);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** readRegularFileSync without blocking the event loop. */
export async function readRegularFile(path: string, maxBytes: number, what: string): Promise<Buffer> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (error) {
    throw openError(path, error, what);
  }
  try {
    const stats = await handle.stat();
    const refused = refusal(path, stats, maxBytes, what);
    if (refused) throw refused;
    const bytes = Buffer.allocUnsafe(stats.size);
    let read = 0;
    for (let n = -1; read < bytes.length && n !== 0; read += n) n = (await handle.read(bytes, read, bytes.length - read, read)).bytesRead;
    if (read !== bytes.length) throw new UserError(`${path}: changed while being read (expected ${what})`);
    return bytes;
  } finally {
    await handle.close();
  }
}
