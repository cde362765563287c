// Guards behaviour across refactors: a short training run from a fixed seed must give exactly the
// weights recorded here. A change that alters them changes what `train` computes.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors } from '../../src/io/safetensors.js';
import { datasheetAugment } from '../../src/data/augment/index.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { train } from '../../src/train/run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');

/** sha256 over every tensor's name, dtype, shape and bytes, in name order. */
function weightsDigest(file: string): string {
  const { tensors } = loadSafetensors(file);
  const hash = createHash('sha256');
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    hash.update(`${name}:${t.dtype}:${t.shape.join('x')};`);
    const data = t.data();
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    t.dispose();
  }
  return hash.digest('hex');
}

describe('a fixed seed trains the same weights', () => {
  it('an ensemble of 2 with augmentation and EMA, 2 epochs', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'retinagrade-same-')), 'run');
    const config = RunConfigSchema.parse({ model: { width: 8 }, epochs: 2, ensemble: 2, ema: 0.9, seed: 11, threads: 1 });
    await train({ config, outDir, dataDir });
    expect(weightsDigest(join(outDir, 'best.safetensors'))).toBe('5590c357e38c24d4f0a1f18b06d717da13e788d83d281a95116d6f3b625eb1d6');
  }, 120_000);

  it('a single weighted-sampling focal model at 64 px, 2 epochs', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'retinagrade-same-')), 'run');
    const config = RunConfigSchema.parse({
      size: 64,
      model: { width: 8 },
      epochs: 2,
      ensemble: 1,
      sampler: 'weighted',
      loss: { kind: 'focal', gamma: 4, alpha: [0.2, 1, 1, 4, 4] },
      seed: 5,
      threads: 1,
    });
    await train({ config, outDir, dataDir });
    expect(weightsDigest(join(outDir, 'best.safetensors'))).toBe('36afc4549ea05d7b9376e2496895b78f81952dad9155785e9368d5df81fbe494');
  }, 120_000);

  it('the datasheet augmentation (hue groups), an ordinal head and SGD with a multistep schedule, 2 epochs', async () => {
    const outDir = join(mkdtempSync(join(tmpdir(), 'retinagrade-same-')), 'run');
    const config = RunConfigSchema.parse({
      model: { width: 8 },
      epochs: 2,
      ensemble: 1,
      augment: datasheetAugment,
      loss: { kind: 'ordinal' },
      optimizer: { name: 'sgd', lr: 0.01 },
      schedule: { name: 'multistep' },
      seed: 7,
      threads: 1,
    });
    await train({ config, outDir, dataDir });
    expect(weightsDigest(join(outDir, 'best.safetensors'))).toBe('cde530b8388b9fb0545ca6a7f34af6786d375dd994b6e08c567530e3c87e8203');
  }, 120_000);
});
