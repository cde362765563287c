// Grading a photograph the way `evaluate` grades the dataset: a RetinaMNIST test image exported
// to PNG is already a crop to the disc, and the default disc crop must leave it as it is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMedMNIST } from '../../src/data/medmnist.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { predictImage } from '../../src/model/grade-photo.js';
import { evaluateSplit } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { untrainedRun } from '../helpers/untrained-run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const tmp = mkdtempSync(join(tmpdir(), 'retinagrade-grade-photo-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('predictImage with the default disc crop', () => {
  it('grades >= 99 of 100 RetinaMNIST test PNGs with the probabilities evaluate gives them', async () => {
    const count = 100;
    const opened = openRun(untrainedRun(1));
    const data = loadRetinaTensors({ dataDir, size: 28 });
    const expected = evaluateSplit(opened.model, opened.objective, data.test).probs;
    const images = loadMedMNIST(join(dataDir, 'retinamnist.npz'), 'retinamnist').test.images;
    let agreeing = 0;
    for (let i = 0; i < count; i++) {
      const file = join(tmp, `test-${i}.png`);
      await sharp(images.subarray(i * 28 * 28 * 3, (i + 1) * 28 * 28 * 3), { raw: { width: 28, height: 28, channels: 3 } })
        .png()
        .toFile(file);
      const { probabilities, error } = await predictImage(opened, file, { crop: 'disc' });
      expect(error).toBeUndefined();
      const own = expected.subarray(i * 5, (i + 1) * 5);
      if (probabilities!.every((p, k) => Math.abs(p - own[k]!) < 1e-5)) agreeing++;
    }
    expect(agreeing).toBeGreaterThanOrEqual(99);
    opened.model.dispose();
  });
});
