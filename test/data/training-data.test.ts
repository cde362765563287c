// In-memory splits hold the file's uint8 pixels; a batch becomes float32 model input when it is
// taken. The values must be exactly those of the whole split converted (and resized) at once, as
// they were when the splits were held as float32: same-weights.test.ts relies on it.
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMedMNIST } from '../../src/data/medmnist.js';
import { resizeBatch, toTensor } from '../../src/data/preprocess.js';
import { loadRetinaTensors, type RetinaTensors } from '../../src/data/retinamnist.js';
import { locateDatasetFile } from '../../src/data/locate.js';
import { releaseTrainingData, takeBatch, takeRange } from '../../src/data/training-data.js';
import * as torch from '../../src/torch/index.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const loaded = loadMedMNIST(locateDatasetFile('retinamnist', 28, { dataDir }), 'retinamnist');
const { count, images } = loaded.val;
const rows = Int32Array.from([7, 0, 119, 3, 3, 64, 12, 100]);

const opened: RetinaTensors[] = [];
afterAll(() => {
  for (const data of opened) releaseTrainingData(data);
});

/** The largest absolute difference between two tensors of one shape. */
const largestDifference = (a: torch.Tensor, b: torch.Tensor): number => torch.tidy(() => a.sub(b).abs().max().item());

describe.each([28, 64, 128])('RetinaMNIST validation split at %i px from the 28 px file', (size) => {
  const data = loadRetinaTensors({ dataDir, size });
  opened.push(data);

  it('is held as the file stores it: uint8 pixels at 28 px, a quarter of float32 at that size', () => {
    expect(data.val.pixels.dtype).toBe('uint8');
    expect(data.val.pixels.shape).toEqual([count, 28, 28, 3]);
    expect(data.source.upsampled_from).toBe(size === 28 ? null : 28);
  });

  it('gives batches (by index and by range) bit-identical to the whole split converted and resized at once', () => {
    torch.tidy(() => {
      const whole = toTensor(images, count, 28, 3);
      const reference = size === 28 ? whole : resizeBatch(whole, size);
      const batch = takeBatch(data.val, rows);
      expect(batch.x.shape).toEqual([rows.length, 3, size, size]);
      expect(batch.x.dtype).toBe('float32');
      expect(largestDifference(batch.x, reference.indexSelect(0, torch.tensor(rows, [rows.length], 'int64')))).toBe(0);
      expect(Array.from(batch.y.data() as BigInt64Array, Number)).toEqual(Array.from(rows, (r) => loaded.val.labels[r]));
      expect(largestDifference(takeRange(data.val, 30, 95), reference.slice(0, 30, 95))).toBe(0);
    });
  });
});
