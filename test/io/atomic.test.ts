import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { removeLeftoverTemporaries, writeFailure, writeFileAtomic } from '../../src/io/atomic.js';

describe('removeLeftoverTemporaries', () => {
  it('removes the temporary files of killed writes, in the folder and below, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'retinagrade-atomic-'));
    mkdirSync(join(dir, 'members', '0'), { recursive: true });
    const leftovers = [
      join(dir, '.best.safetensors.4242.0badc0de.tmp'),
      join(dir, 'members', '0', '.checkpoint.safetensors.7.00ff00ff.tmp'),
    ];
    const kept = [join(dir, 'best.safetensors'), join(dir, '.hidden.tmp'), join(dir, '.best.safetensors.x.0badc0de.tmp')];
    for (const file of [...leftovers, ...kept]) writeFileSync(file, 'x');
    expect(removeLeftoverTemporaries(dir).sort()).toEqual([...leftovers].sort());
    for (const file of leftovers) expect(existsSync(file)).toBe(false);
    for (const file of kept) expect(existsSync(file)).toBe(true);
  });
});

describe('write failures name the file and the cause', () => {
  it('maps ENOSPC, EROFS and EACCES to UserErrors; other errors stay as they are', () => {
    const error = (code: string) => Object.assign(new Error(`${code}: raw`), { code });
    expect(writeFailure('/runs/a/best.safetensors', error('ENOSPC'))).toEqual(
      new UserError('cannot write /runs/a/best.safetensors: no space left on the device (ENOSPC)'),
    );
    expect(writeFailure('x.json', error('EROFS')).message).toBe('cannot write x.json: the file system is read-only (EROFS)');
    expect(writeFailure('x.json', error('EACCES')).message).toBe('cannot write x.json: permission denied (EACCES)');
    const other = error('EIO');
    expect(writeFailure('x.json', other)).toBe(other);
  });

  // A real full disk and a real read-only mount need a tmpfs, which only root can mount.
  const mountable = (() => {
    if (process.getuid?.() !== 0) return false;
    try {
      const probe = mkdtempSync(join(tmpdir(), 'retinagrade-mount-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
      execFileSync('umount', [probe]);
      return true;
    } catch {
      return false;
    }
  })();
  describe.skipIf(!mountable)('on a 64 KiB tmpfs', () => {
    const mount = mkdtempSync(join(tmpdir(), 'retinagrade-full-'));
    beforeAll(() => execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]));
    afterAll(() => execFileSync('umount', [mount]));

    it('a full disk: the file is named, the old one kept, no temporary file left', () => {
      const file = join(mount, 'best.safetensors');
      writeFileAtomic(file, 'old');
      expect(() => writeFileAtomic(file, new Uint8Array(256 * 1024))).toThrow(
        new UserError(`cannot write ${file}: no space left on the device (ENOSPC)`),
      );
      expect(readdirSync(mount)).toEqual(['best.safetensors']);
    });

    it('a read-only file system: the file is named', () => {
      execFileSync('mount', ['-o', 'remount,ro', mount]);
      try {
        const file = join(mount, 'metrics.json');
        expect(() => writeFileAtomic(file, '{}')).toThrow(new UserError(`cannot write ${file}: the file system is read-only (EROFS)`));
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mount]);
      }
    });
  });
});
