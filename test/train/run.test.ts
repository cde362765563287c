// train()'s hold on its --out folder: one writer at a time, and a fresh start clears what killed
// writes left behind.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUN_LOCK_FILE, RunLock } from '../../src/model/run-lock.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { train } from '../../src/train/run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const config = RunConfigSchema.parse({ model: { width: 4 }, epochs: 1, ensemble: 1, seed: 1, threads: 1 });

describe('train and its run directory', () => {
  it('is refused while another writer holds the folder, leaving it as it was', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'retinagrade-run-'));
    const lock = RunLock.acquire(outDir); // this process stands in for the other writer
    try {
      await expect(train({ config, outDir, dataDir })).rejects.toThrow(`${outDir} is being written by another retinagrade process`);
      expect(readdirSync(outDir)).toEqual([RUN_LOCK_FILE]);
    } finally {
      lock.release();
    }
  });

  it('removes the temporary files of killed writes when it starts, and releases the folder when done', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'retinagrade-run-'));
    mkdirSync(join(outDir, 'members', '0'), { recursive: true });
    const leftovers = [
      join(outDir, '.checkpoint.safetensors.999999.0a1b2c3d.tmp'),
      join(outDir, 'members', '0', '.best.safetensors.9.0a1b2c3d.tmp'),
    ];
    for (const file of leftovers) writeFileSync(file, Buffer.alloc(1024));
    await train({ config, outDir, dataDir, overwrite: true }); // as a killed ensemble's folder is started over
    for (const file of leftovers) expect(existsSync(file), file).toBe(false);
    expect(existsSync(join(outDir, 'best.safetensors'))).toBe(true);
    expect(existsSync(join(outDir, RUN_LOCK_FILE))).toBe(false);
  }, 60_000);
});
