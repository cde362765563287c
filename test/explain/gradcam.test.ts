import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { Module, ModelConfigSchema, createModel, type FeatureClassifier } from '../../src/nn/index.js';
import { CrossEntropy } from '../../src/nn/index.js';
import { CAPTION_HEIGHT, gradCam, writeCamOverlay } from '../../src/explain/gradcam.js';

/** Feature map = the image's first channel; grade 1's logit = its mean brightness, grade 0's = minus that. */
class BrightnessModel extends Module implements FeatureClassifier {
  features(x: Tensor): Tensor {
    return x.slice(1, 0, 1);
  }
  classify(features: Tensor): Tensor {
    const m = features.mean([1, 2, 3], true).flatten(1);
    return torch.cat([m.neg(), m], 1);
  }
  forward(x: Tensor): Tensor {
    return this.classify(this.features(x));
  }
}

describe('Grad-CAM', () => {
  // An 8x8 image, dark (0) except a bright 2x2 patch at rows 1-2, columns 5-6.
  const pixels = new Float32Array(3 * 64);
  for (const [r, c] of [
    [1, 5],
    [1, 6],
    [2, 5],
    [2, 6],
  ])
    pixels[r * 8 + c] = 1;
  const x = torch.tensor(pixels, [1, 3, 8, 8]);
  const model = new BrightnessModel();

  it('puts the evidence for a grade where the pixels that raise it are', () => {
    const cam = gradCam(model, new CrossEntropy(2), x, 1);
    expect(cam.size).toBe(8);
    expect(cam.heat[1 * 8 + 5]).toBeCloseTo(1, 5);
    expect(cam.heat[6 * 8 + 1]).toBe(0);
    expect(Math.max(...cam.heat)).toBeCloseTo(1, 5);
  });

  it('finds no positive evidence for the grade the bright patch argues against', () => {
    const cam = gradCam(model, new CrossEntropy(2), x, 0);
    expect(Math.max(...cam.heat)).toBe(0);
  });

  const cnn28 = createModel(ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 }));
  const image28 = new torch.Generator(2).uniform([1, 3, 28, 28], -1, 1);

  it('leaves the weights without gradients, and trainable, however often it is asked', () => {
    const cnn = createModel(ModelConfigSchema.parse({ name: 'cnn', inputSize: 28, width: 8, numClasses: 5 }));
    const image = new torch.Generator(2).uniform([1, 3, 28, 28], -1, 1);
    for (let i = 0; i < 3; i++) gradCam(cnn, new CrossEntropy(5), image, 2);
    for (const p of cnn.parameters()) {
      expect(p.grad).toBeUndefined();
      expect(p.requiresGrad).toBe(true);
    }
  });

  it('writes the image and its overlay side by side as PNG, captioned with the grade over a colour scale', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gradcam-')), 'cam.png');
    await writeCamOverlay(path, new Uint8Array(28 * 28 * 3).fill(100), gradCam(cnn28, new CrossEntropy(5), image28, 3), 4);
    const width = 2 * 28 * 4;
    expect(await sharp(path).metadata()).toMatchObject({ format: 'png', width, height: 28 * 4 + CAPTION_HEIGHT });
    const { data } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    const pixel = (x: number, y: number) => Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
    // The colour scale runs along the bottom of the right half: dark blue (weak) to red (strong).
    const scaleRow = 28 * 4 + CAPTION_HEIGHT - 6;
    const [weak, strong] = [pixel(width / 2 + 3, scaleRow), pixel(width - 4, scaleRow)];
    expect(weak[2]).toBeGreaterThan(100);
    expect(weak[0]).toBe(0);
    expect(strong[0]).toBeGreaterThan(100);
    expect(strong[2]).toBe(0);
    // The caption's text: dark pixels in the left half of the band, which is otherwise white.
    let dark = 0;
    for (let y = 28 * 4; y < 28 * 4 + CAPTION_HEIGHT; y++) for (let x = 0; x < width / 2; x++) if (pixel(x, y)[0]! < 100) dark++;
    expect(dark).toBeGreaterThan(30);
  });

  it('fits the longest grade\'s caption in its half at 28 px ("grade 4 Proliferative DR" is not cut off)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gradcam-')), 'cam.png');
    const cam = { ...gradCam(cnn28, new CrossEntropy(5), image28, 4), grade: 4 };
    await writeCamOverlay(path, new Uint8Array(28 * 28 * 3).fill(100), cam, 4);
    const width = 2 * 28 * 4;
    const { data } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    // The last text column: the rightmost dark pixel of the caption band's left half.
    let lastColumn = -1;
    for (let y = 28 * 4; y < 28 * 4 + CAPTION_HEIGHT; y++) {
      for (let x = 0; x < width / 2; x++) if (data[(y * width + x) * 3]! < 100) lastColumn = Math.max(lastColumn, x);
    }
    expect(lastColumn).toBeGreaterThan(width / 4); // there is a caption, and it is not tiny
    expect(lastColumn).toBeLessThan(width / 2 - 6); // and it ends short of the half (cut-off text runs to its edge)
  });
});
