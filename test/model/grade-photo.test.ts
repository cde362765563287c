// Grading a photograph the way `evaluate` grades the dataset: a RetinaMNIST test image exported
// to PNG is already a crop to the disc, and the default disc crop must leave it as it is.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMedMNIST } from '../../src/data/medmnist.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { takeRange } from '../../src/data/training-data.js';
import { gradeLoaded, isLoaded, loadPhoto, predictImage } from '../../src/model/grade-photo.js';
import { ModelConfigSchema } from '../../src/nn/index.js';
import { evaluateSplit } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import { untrainedRun } from '../helpers/untrained-run.js';
import { withinRounding } from '../helpers/within-rounding.js';
import * as torch from '../../src/torch/index.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');
const samplesDir = resolve(import.meta.dirname, '../../../shared/samples');
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

  it('frees every tensor it makes (none is left to the garbage collector)', async () => {
    // A server grades hundreds of photographs a second: a tensor left for the garbage collector
    // keeps its storage counted as V8's external memory, which forces a full collection (a pause
    // of every request the thread holds) every few hundred photographs.
    const opened = openRun(untrainedRun(3, { fitOn: { dataDir } }));
    expect(opened.gradability).toBeDefined();
    const samples = readdirSync(samplesDir).map((name) => ({ name, bytes: readFileSync(join(samplesDir, name)) }));
    const load = async () => (await Promise.all(samples.map((s) => loadPhoto(opened, s, 'disc')))).filter(isLoaded);
    await gradeLoaded(opened, await load(), { crop: 'disc' }); // what the first call makes to keep stays
    const photos = await load();
    const before = torch.liveStorages();
    await gradeLoaded(opened, photos, { crop: 'disc' });
    // The photographs' input tensors are freed too; a collection meanwhile can only lower the count.
    expect(torch.liveStorages()).toBeLessThanOrEqual(before - photos.length);
    opened.model.dispose();
  });
});

describe('gradeLoaded: several photographs in one forward pass', () => {
  it('gives each photograph the record it gets alone: graded, refused by the gate, unreadable', async () => {
    const config = ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 });
    const images = takeRange(loadRetinaTensors({ dataDir, size: 28 }).val, 0, 16);
    // Trained-like batch-norm statistics, and the gate and calibration `train` fits: records differ between photographs.
    const runDir = untrainedRun(2, { modelConfig: config, randomNorm: { seed: 3, images }, fitOn: { dataDir } });
    const opened = openRun(runDir);
    expect(opened.gradability).toBeDefined();
    const samples = readdirSync(samplesDir).map((name) => ({ name, bytes: readFileSync(join(samplesDir, name)) }));
    const grey = {
      name: 'grey.png',
      bytes: await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .png()
        .toBuffer(),
    };
    const inputs = [...samples, grey, { name: 'empty.jpg', bytes: new Uint8Array() }, samples[0]!];
    for (const force of [false, true]) {
      const alone = [];
      for (const input of inputs) alone.push(await predictImage(opened, input, { crop: 'disc', force }));
      const loaded = await Promise.all(inputs.map((input) => loadPhoto(opened, input, 'disc')));
      const graded = await gradeLoaded(opened, loaded.filter(isLoaded), { crop: 'disc', force });
      const together = loaded.map((photo) => (isLoaded(photo) ? graded.shift()! : photo));
      expect(together).toEqual(withinRounding(alone));
      // The batch mixes every kind of record: the grey square is refused by the gate unless forced.
      if (force) expect(alone.at(-3)!.grade).toBeTypeOf('number');
      else expect(alone.at(-3)!.status).toBe('refused');
      expect(alone.at(-2)!.error).toMatch(/empty file/);
    }
    opened.model.dispose();
  });
});
