import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { datasheetAugment } from '../../src/data/augment/index.js';
import { LABEL_WIDTH, writeMontage } from '../../src/data/montage.js';

const dir = mkdtempSync(join(tmpdir(), 'retinagrade-montage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeMontage', () => {
  it('writes a PNG of count rows x (1 + variants) tiles with the originals in the first column, rows labelled', async () => {
    const images = new torch.Generator(0).uniform([5, 3, 12, 12], -1, 1);
    const path = join(dir, 'montage.png');
    const labels = ['0 No DR', '1 Mild', '2 Moderate', '3 Severe'];
    const size = await writeMontage(path, images, datasheetAugment, new torch.Generator(1), { count: 4, variants: 3, scale: 2, labels });
    const width = LABEL_WIDTH + 4 * 12 * 2;
    expect(size).toEqual({ width, height: 4 * 12 * 2 });

    const meta = await sharp(path).metadata();
    expect(meta.format).toBe('png');
    expect([meta.width, meta.height, meta.channels]).toEqual([width, 96, 3]);

    // Top-left pixel of the second row's first tile is image 1's pixel (0, 0), scaled x2 with nearest.
    const { data } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
    const expected = images.slice(0, 1, 2).slice(2, 0, 1).slice(3, 0, 1).add(1).mul(127.5).round().toArray();
    const offset = (12 * 2 * width + LABEL_WIDTH) * 3;
    expect(Array.from(data.subarray(offset, offset + 3))).toEqual(expected);
    // Each row's label: dark text pixels in the label column beside it, on white.
    for (let row = 0; row < 4; row++) {
      let dark = 0;
      for (let y = row * 24; y < (row + 1) * 24; y++) for (let x = 0; x < LABEL_WIDTH; x++) if (data[(y * width + x) * 3]! < 128) dark++;
      expect(dark, labels[row]).toBeGreaterThan(10);
    }
  });

  it('refuses more columns than images', async () => {
    const images = torch.zeros([2, 3, 8, 8]);
    await expect(writeMontage(join(dir, 'x.png'), images, datasheetAugment, new torch.Generator(0), { count: 3 })).rejects.toThrow(
      /count must be an integer in \[1, 2\]/,
    );
  });
});
