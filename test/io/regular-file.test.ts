import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/fundus.js';
import { readNpz } from '../../src/data/npz.js';
import { UserError } from '../../src/errors.js';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { readRegularFile, readRegularFileSync } from '../../src/io/regular-file.js';

const tmp = mkdtempSync(join(tmpdir(), 'retinagrade-regular-'));
const zero = join(tmp, 'x.jpg');
symlinkSync('/dev/zero', zero);
const fifo = join(tmp, 'fifo.npz');
execFileSync('mkfifo', [fifo]);
const folder = join(tmp, 'folder.jpg');
mkdirSync(folder);
const small = join(tmp, 'small.bin');
writeFileSync(small, Buffer.alloc(100, 7));

describe('readRegularFile', () => {
  it('reads a regular file whole, synchronously or not', async () => {
    expect(readRegularFileSync(small, 100, 'bytes')).toEqual(Buffer.alloc(100, 7));
    expect(await readRegularFile(small, 100, 'bytes')).toEqual(Buffer.alloc(100, 7));
  });

  it('refuses a file over the limit before reading it', async () => {
    expect(() => readRegularFileSync(small, 99, 'bytes')).toThrow(`${small}: 100 bytes, over the 99 bytes limit for bytes`);
    await expect(readRegularFile(small, 99, 'bytes')).rejects.toThrow(UserError);
  });

  it('refuses a symlink to /dev/zero, a FIFO without a writer and a directory at once, by kind', async () => {
    const started = performance.now();
    expect(() => readRegularFileSync(zero, 2 ** 30, 'an image')).toThrow(
      `${zero}: a character device, not a regular file (expected an image)`,
    );
    await expect(readRegularFile(fifo, 2 ** 30, 'an image')).rejects.toThrow(`${fifo}: a FIFO (named pipe), not a regular file`);
    expect(() => readRegularFileSync(fifo, 2 ** 30, 'an image')).toThrow(/a FIFO \(named pipe\), not a regular file/);
    await expect(readRegularFile(folder, 2 ** 30, 'an image')).rejects.toThrow(`${folder}: a directory, not a regular file`);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('names a missing file', () => {
    expect(() => readRegularFileSync(join(tmp, 'none'), 10, 'bytes')).toThrow(`${join(tmp, 'none')}: cannot read bytes (no such file)`);
  });
});

describe('what reads user files goes through it', () => {
  it('predict, the npz reader and the weights loader refuse /dev/zero and FIFOs with a UserError', async () => {
    await expect(decodeImage(zero)).rejects.toThrow(/x\.jpg: a character device, not a regular file/);
    await expect(decodeImage(fifo)).rejects.toThrow(/a FIFO \(named pipe\), not a regular file/);
    expect(() => readNpz(fifo)).toThrow(UserError);
    expect(() => readNpz(zero)).toThrow(/character device/);
    expect(() => loadSafetensors(zero)).toThrow(/character device/);
  });
});
