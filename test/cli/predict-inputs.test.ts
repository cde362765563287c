import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { camFiles, expandInputs } from '../../src/cli/predict.js';

describe('expandInputs', () => {
  it("lists a folder's images, sorted, without Grad-CAM pictures of an earlier run", () => {
    const folder = mkdtempSync(join(tmpdir(), 'retinagrade-inputs-'));
    for (const name of ['b.png', 'a.JPG', 'a.jpg.gradcam.png', 'notes.txt']) writeFileSync(join(folder, name), '');
    expect(expandInputs([folder, 'missing.png'])).toEqual([
      { file: join(folder, 'a.JPG') },
      { file: join(folder, 'b.png') },
      { file: 'missing.png' },
    ]);
  });

  it('turns a folder without images into an input with an error', () => {
    const empty = mkdtempSync(join(tmpdir(), 'retinagrade-inputs-'));
    expect(expandInputs([empty])).toEqual([{ file: empty, error: `no PNG, JPEG, TIFF or WebP images in ${empty}` }]);
    writeFileSync(join(empty, 'a.png.gradcam.png'), '');
    expect(expandInputs([empty])[0]!.error).toMatch(/Grad-CAM pictures of earlier runs are skipped/);
  });
});

describe('camFiles', () => {
  it('keeps the extension, flattens folders, and numbers names that still collide', () => {
    expect(camFiles('cams', ['a.jpg', 'a.jpeg', 'photos/a.jpg', 'photos_a.jpg'])).toEqual([
      join('cams', 'a.jpg.gradcam.png'),
      join('cams', 'a.jpeg.gradcam.png'),
      join('cams', 'photos_a.jpg.gradcam.png'),
      join('cams', 'photos_a.jpg-2.gradcam.png'),
    ]);
  });

  it('gives one file to one input however it is named, and uses the absolute path outside the working directory', () => {
    const [first, second, third] = camFiles('cams', ['a.png', './a.png', resolve('a.png')]);
    expect(new Set([first, second, third]).size).toBe(1);
    expect(camFiles('cams', ['..x.png'])).toEqual([join('cams', '..x.png.gradcam.png')]);
    const outside = resolve('..', 'x', 'b.png');
    expect(camFiles('cams', [outside])).toEqual([join('cams', `${outside.slice(1).replaceAll('/', '_')}.gradcam.png`)]);
  });
});
