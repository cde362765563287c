// Reading a prepared dataset: .npy headers, rows through the reused buffer equal to the in-memory
// RetinaMNIST path, clear errors on damaged folders, and memory that does not grow with the file.
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NPY_HEADER_BYTES, NpyRowReader, npyHeader, parseNpyHeader } from '../../src/data/npy.js';
import { prepareDataset } from '../../src/data/prepare/prepare.js';
import { openSplit, readDatasetJson } from '../../src/data/prepared-dataset.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { concatSplits, loadPreparedData, releaseTrainingData, takeBatch, takeRange } from '../../src/data/training-data.js';
import * as torch from '../../src/torch/index.js';
import { dataDir } from './prepare/make-sources.js';

const work = mkdtempSync(join(tmpdir(), 'retinagrade-prepared-'));

describe('npy', () => {
  it('writes a 128-byte version 1.0 header numpy reads, and reads it back', () => {
    const header = npyHeader([20000, 224, 224, 3]);
    expect(header.length).toBe(NPY_HEADER_BYTES);
    expect(header.toString('latin1', 10)).toBe(
      `{'descr': '|u1', 'fortran_order': False, 'shape': (20000, 224, 224, 3), }${' '.repeat(44)}\n`,
    );
    expect(parseNpyHeader(header, 'x.npy')).toEqual({ shape: [20000, 224, 224, 3], offset: 128 });
    expect(parseNpyHeader(npyHeader([7]), 'y.npy').shape).toEqual([7]);
  });

  it('refuses other dtypes, Fortran order and truncated files, naming the file', () => {
    const other = Buffer.from(npyHeader([2, 2]).toString('latin1').replace("'|u1'", "'<f4'"), 'latin1');
    expect(() => parseNpyHeader(other, 'f.npy')).toThrow(/f.npy: expected a C-ordered uint8 array/);
    const file = join(work, 'short.npy');
    writeFileSync(file, Buffer.concat([npyHeader([3, 4]), Buffer.alloc(11)]));
    expect(() => new NpyRowReader(file)).toThrow(/short.npy: 139 bytes, expected 140 for shape \(3, 4\)/);
  });
});

describe('a prepared RetinaMNIST npz', () => {
  const out = join(work, 'npz');
  it('gives the same batches as the in-memory tensors, at the stored size and resized', async () => {
    await prepareDataset({ source: join(dataDir, 'retinamnist.npz'), out });
    for (const size of [28, 64]) {
      const memory = loadRetinaTensors({ dataDir, size });
      const prepared = loadPreparedData(out, size);
      const indices = Int32Array.from([5, 0, 1079, 17]);
      torch.tidy(() => {
        const [a, b] = [takeBatch(memory.train, indices), takeBatch(prepared.train, indices)];
        expect(b.x.sub(a.x).abs().max().item()).toBe(0);
        expect(Array.from(b.y.data() as BigInt64Array, Number)).toEqual(Array.from(a.y.data() as BigInt64Array, Number));
        expect(
          takeRange(prepared.test, 390, 400)
            .sub(takeRange(memory.test, 390, 400))
            .abs()
            .max()
            .item(),
        ).toBe(0);
        const all = concatSplits([prepared.train, prepared.val, prepared.test]);
        expect(all.count).toBe(1600);
        const across = all.read([1079, 1080, 1199, 1200]);
        const expected = torch.cat([
          takeRange(memory.train, 1079, 1080),
          takeRange(memory.val, 0, 1),
          takeRange(memory.val, 119, 120),
          takeRange(memory.test, 0, 1),
        ]);
        expect(across.sub(expected).abs().max().item()).toBe(0);
      });
      expect(prepared.source.upsampled_from).toBe(size > 28 ? 28 : null);
      releaseTrainingData(memory);
      releaseTrainingData(prepared);
    }
  });

  it('a damaged folder is an error naming the file', () => {
    const card = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    const damaged = join(work, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'dataset.json'), JSON.stringify({ ...card, size: 'big' }));
    expect(() => readDatasetJson(damaged)).toThrow(/damaged\/dataset.json: not a prepared dataset card:[\s\S]*size/);
    writeFileSync(join(damaged, 'dataset.json'), JSON.stringify(card));
    expect(() => loadPreparedData(damaged, 28)).toThrow(/train_images.npy/);
  });
});

describe('memory', () => {
  /** A split of `rows` 64x64 images, the image file sparse (zeros) so that it costs no disk. */
  function syntheticSplit(rows: number) {
    const dir = join(work, `rows-${rows}`);
    mkdirSync(dir);
    const fd = openSync(join(dir, 'images.npy'), 'w');
    writeSync(fd, npyHeader([rows, 64, 64, 3]));
    ftruncateSync(fd, NPY_HEADER_BYTES + rows * 64 * 64 * 3);
    closeSync(fd);
    const grades = Buffer.from(Array.from({ length: rows }, (_, i) => i % 5));
    writeFileSync(join(dir, 'labels.npy'), Buffer.concat([npyHeader([rows]), grades]));
    const card = { count: rows, per_grade: [], images: 'images.npy', labels: 'labels.npy', images_md5: '', labels_md5: '', sources: [] };
    return openSplit(dir, card, 64, 64);
  }

  /** Peak RSS growth while every row of the split is read once, in shuffled batches of 128. */
  function peakGrowth(rows: number): number {
    const split = syntheticSplit(rows);
    const before = process.memoryUsage().rss;
    let peak = before;
    const order = Array.from({ length: rows }, (_, i) => (i * 7919) % rows);
    for (let start = 0; start < rows; start += 128) {
      torch.tidy(() =>
        takeBatch(split, order.slice(start, start + 128))
          .x.sum()
          .item(),
      );
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    split.close();
    return peak - before;
  }

  it('reading a split batch by batch does not grow with its size (a 25 MB and a 245 MB file)', () => {
    peakGrowth(256); // warm-up: the allocator's first arenas
    const small = peakGrowth(2_000);
    const large = peakGrowth(20_000);
    expect(large).toBeLessThan(small + 32 * 2 ** 20);
    expect(large).toBeLessThan(64 * 2 ** 20);
  });
});
