import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { datasetCard, loadMedMNIST, md5Hex, type DatasetCard, type LoadedDataset } from '../../src/data/medmnist.js';
import { getDatasetFile } from '../../src/data/registry.js';
import { fakeMedMNIST, npy, npz, type FakeSplit } from './npz-writer.js';

// Written by numpy before the suite runs (test/global-setup.ts).
const FIXTURES = process.env.NPZ_FIXTURES_DIR!;
const tmp = mkdtempSync(join(tmpdir(), 'retinagrade-medmnist-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

/** n images whose bytes are a known function of their index, labels cycling through `classes`. */
function fakeSplit(n: number, size: number, channels: number, classes: number): FakeSplit {
  const images = new Uint8Array(n * size * size * channels);
  for (let i = 0; i < images.length; i++) images[i] = (i * 7) % 256;
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % classes) };
}

const RETINA_SPLITS = { train: 1080, val: 120, test: 400 };

function fakeRetina(size: number, counts = RETINA_SPLITS) {
  return {
    train: fakeSplit(counts.train, size, 3, 5),
    val: fakeSplit(counts.val, size, 3, 5),
    test: fakeSplit(counts.test, size, 3, 5),
  };
}

// shared/ sits beside the repository, on developer machines and in CI alike.
const realDir = process.env.MEDMNIST_DIR ?? join(import.meta.dirname, '../../../shared/data');
const realFile = join(realDir, 'retinamnist.npz');

// In CI the file must be there (MEDMNIST_DIR points at it); elsewhere the test is skipped without it.
describe.skipIf(!existsSync(realFile) && !process.env.CI)('the real RetinaMNIST 28x28 file', () => {
  let loaded: LoadedDataset;
  let card: DatasetCard;
  beforeAll(() => {
    loaded = loadMedMNIST(realFile, 'retinamnist', { expectedMd5: getDatasetFile('retinamnist', 28).md5 });
    card = datasetCard(loaded);
  });

  it('loads with the official split sizes and shapes', () => {
    expect(loaded.size).toBe(28);
    expect(loaded.channels).toBe(3);
    expect(loaded.md5).toBe('bd4c0672f1bba3e3a89f0e4e876791e4');
    for (const [split, count] of Object.entries(RETINA_SPLITS)) {
      const data = loaded[split as keyof typeof RETINA_SPLITS];
      expect(data.count).toBe(count);
      expect(data.images.length).toBe(count * 28 * 28 * 3);
      expect(data.labels.length).toBe(count);
    }
  });

  it('has the documented label histograms', () => {
    expect(card.splits.train.classCounts).toEqual([486, 128, 206, 194, 66]);
    expect(card.splits.val.classCounts).toEqual([54, 12, 28, 20, 6]);
    expect(card.splits.test.classCounts).toEqual([174, 46, 92, 68, 20]);
  });

  it('has the documented train channel mean and std', () => {
    [0.3984, 0.2447, 0.1558].forEach((mean, c) => expect(card.splits.train.channelMean[c]).toBeCloseTo(mean, 4));
    [0.2983, 0.2005, 0.1507].forEach((std, c) => expect(card.splits.train.channelStd[c]).toBeCloseTo(std, 4));
    expect(card.classNames).toEqual(['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR']);
    expect(card.licence).toBe('CC BY 4.0');
  });
});

describe('loadMedMNIST', () => {
  it('reads a 64x64 file (the MedMNIST+ layout) unchanged', () => {
    const splits = fakeRetina(64);
    const bytes = fakeMedMNIST(64, 3, splits);
    const loaded = loadMedMNIST(writeTmp('retinamnist_64.npz', bytes), 'retinamnist');
    expect(loaded.size).toBe(64);
    expect(loaded.test.count).toBe(400);
    // Buffer comparison: vitest's deep equality is far too slow for 13 million elements.
    expect(Buffer.compare(loaded.train.images, splits.train.images)).toBe(0);
    expect(Buffer.compare(loaded.val.labels, splits.val.labels)).toBe(0);
    expect(loaded.md5).toBe(md5Hex(bytes));
  });

  it('reads a grey dataset as (N, S, S) images', () => {
    const splits = {
      train: fakeSplit(4708, 28, 1, 2),
      val: fakeSplit(524, 28, 1, 2),
      test: fakeSplit(624, 28, 1, 2),
    };
    const loaded = loadMedMNIST(writeTmp('pneumoniamnist.npz', fakeMedMNIST(28, 1, splits)), 'pneumoniamnist');
    expect(loaded.channels).toBe(1);
    expect(loaded.val.images.length).toBe(524 * 28 * 28);
    expect(datasetCard(loaded).splits.test.classCounts).toEqual([312, 312]);
  });

  it('computes per-channel mean and std in 0..1', () => {
    const splits = fakeRetina(28);
    // Channel 0 alternates 0/255 (mean 0.5, std 0.5), channel 1 is 51 (0.2), channel 2 is 255.
    splits.train.images.forEach((_, i) => {
      const c = i % 3;
      splits.train.images[i] = c === 0 ? (i % 2 === 0 ? 0 : 255) : c === 1 ? 51 : 255;
    });
    const card = datasetCard(loadMedMNIST(writeTmp('stats.npz', fakeMedMNIST(28, 3, splits)), 'retinamnist'));
    expect(card.splits.train.channelMean.map((m) => +m.toFixed(6))).toEqual([0.5, 0.2, 1]);
    expect(card.splits.train.channelStd.map((s) => +s.toFixed(6))).toEqual([0.5, 0, 0]);
    expect(card.splits.train.classCounts).toEqual([216, 216, 216, 216, 216]);
  });

  it('refuses labels out of range', () => {
    const file = join(FIXTURES, 'fake_medmnist_bad_label.npz');
    expect(() => loadMedMNIST(file, 'retinamnist')).toThrow(
      `${file}, key 'val_labels': label 5 at index 1 is out of range (expected 0..4 for RetinaMNIST)`,
    );
  });

  it('refuses split sizes that differ from the registry', () => {
    const file = writeTmp('small.npz', fakeMedMNIST(28, 3, fakeRetina(28, { train: 10, val: 2, test: 2 })));
    expect(() => loadMedMNIST(file, 'retinamnist')).toThrow(`${file}: split 'train' has 10 images, expected 1080 for RetinaMNIST`);
  });

  it('refuses a missing key, listing what it found', () => {
    const file = writeTmp('missing.npz', npz({ train_images: npy('|u1', [1, 28, 28, 3], new Uint8Array(28 * 28 * 3)) }));
    expect(() => loadMedMNIST(file, 'retinamnist')).toThrow(
      `${file}: missing key 'train_labels' (expected train_images, train_labels, val_images, val_labels, ` +
        'test_images, test_labels; found train_images)',
    );
  });

  it('refuses images of the wrong dtype, shape or size', () => {
    const floats = writeTmp('floats.npz', npz({ train_images: npy('<f4', [1, 28, 28, 3], new Uint8Array(4 * 28 * 28 * 3)) }));
    expect(() => loadMedMNIST(floats, 'retinamnist')).toThrow(
      `${floats}, key 'train_images': expected (N, S, S, 3) uint8 images for RetinaMNIST, found (1, 28, 28, 3) float32`,
    );
    const rgb = writeTmp('rgb.npz', fakeMedMNIST(28, 3, fakeRetina(28, { train: 2, val: 1, test: 1 })));
    expect(() => loadMedMNIST(rgb, 'pneumoniamnist')).toThrow(
      `${rgb}, key 'train_images': expected (N, S, S) uint8 images for PneumoniaMNIST, found (2, 28, 28, 3) uint8`,
    );
    const odd = writeTmp('odd.npz', fakeMedMNIST(32, 3, fakeRetina(32, { train: 2, val: 1, test: 1 })));
    expect(() => loadMedMNIST(odd, 'retinamnist')).toThrow(`${odd}, key 'train_images': image size 32x32 is not a MedMNIST size`);
  });

  it('refuses labels that do not match the images', () => {
    const splits = fakeRetina(28, { train: 2, val: 1, test: 1 });
    const file = writeTmp(
      'labels.npz',
      npz({
        train_images: npy('|u1', [2, 28, 28, 3], splits.train.images),
        train_labels: npy('|u1', [3, 1], new Uint8Array(3)),
        val_images: npy('|u1', [1, 28, 28, 3], splits.val.images),
        val_labels: npy('|u1', [1, 1], splits.val.labels),
        test_images: npy('|u1', [1, 28, 28, 3], splits.test.images),
        test_labels: npy('|u1', [1, 1], splits.test.labels),
      }),
    );
    expect(() => loadMedMNIST(file, 'retinamnist')).toThrow(
      `${file}, key 'train_labels': expected (2, 1) integer labels (one per image), found (3, 1) uint8`,
    );
  });

  it('checks the md5 when one is expected', () => {
    const bytes = fakeMedMNIST(28, 3, fakeRetina(28, { train: 2, val: 1, test: 1 }));
    const file = writeTmp('md5.npz', bytes);
    expect(() => loadMedMNIST(file, 'retinamnist', { expectedMd5: 'bd4c0672f1bba3e3a89f0e4e876791e4' })).toThrow(
      `${file}: md5 mismatch: expected bd4c0672f1bba3e3a89f0e4e876791e4, got ${md5Hex(bytes)}`,
    );
  });

  it('refuses a missing file and an unknown dataset as user errors', () => {
    expect(() => loadMedMNIST(join(tmp, 'nope.npz'), 'retinamnist')).toThrow(UserError);
    expect(() => loadMedMNIST(join(tmp, 'nope.npz'), 'retinamnist')).toThrow(/nope\.npz: cannot read the dataset file/);
    expect(() => loadMedMNIST(join(FIXTURES, 'fake_medmnist_bad_label.npz'), 'cifar')).toThrow(
      "unknown dataset 'cifar' (expected one of: retinamnist, pneumoniamnist, dermamnist, pathmnist, " +
        'octmnist, breastmnist, bloodmnist, tissuemnist)',
    );
  });
});
