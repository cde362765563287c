import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../src/cli/main.js';
import { camFiles, expandInputs, printable } from '../../src/cli/predict.js';
import { untrainedRun } from '../helpers/untrained-run.js';

const dataDir = process.env.MEDMNIST_DIR ?? resolve(import.meta.dirname, '../../../shared/data');

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
  it('names pictures by base name, keeps the extension, and numbers names from different folders', () => {
    expect(camFiles('cams', ['a.jpg', 'a.jpeg', 'photos/a.jpg', 'tmp/x/photos/a.jpg', 'photos_a.jpg'])).toEqual([
      join('cams', 'a.jpg.gradcam.png'),
      join('cams', 'a.jpeg.gradcam.png'),
      join('cams', 'a.jpg-2.gradcam.png'),
      join('cams', 'a.jpg-3.gradcam.png'),
      join('cams', 'photos_a.jpg.gradcam.png'),
    ]);
  });

  it('gives one file to one input however it is named, and never embeds its folders', () => {
    const [first, second, third] = camFiles('cams', ['a.png', './a.png', resolve('a.png')]);
    expect(new Set([first, second, third]).size).toBe(1);
    expect(camFiles('cams', ['..x.png'])).toEqual([join('cams', '..x.png.gradcam.png')]);
    expect(camFiles('cams', [resolve('..', 'x', 'b.png')])).toEqual([join('cams', 'b.png.gradcam.png')]);
  });
});

describe('text output', () => {
  it('escapes control characters so that a file name cannot forge a line', () => {
    expect(printable('photos/eye.jpg')).toBe('photos/eye.jpg');
    expect(printable('a\nb.jpg: grade 0 (No DR)')).toBe('a\\nb.jpg: grade 0 (No DR)');
    expect(printable('x\x1b[2Jy\\z\t')).toBe('x\\x1b[2Jy\\\\z\\t');
  });

  it('predict prints a name holding a newline on one line', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'retinagrade-names-'));
    const forged = join(folder, 'eye.jpg\nfake.jpg: grade 0 (No DR), p=1.000 0.000 0.000 0.000 0.000.jpg');
    writeFileSync(forged, readFileSync(resolve(dataDir, '../samples/fundus_a.jpg')));
    const written: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await buildProgram().parseAsync(['node', 'retinagrade', 'predict', '--model', untrainedRun(1), forged]);
    } finally {
      write.mockRestore();
    }
    const lines = written.join('').split('\n');
    expect(lines[0]).toMatch(/eye\.jpg\\nfake\.jpg: grade 0 \(No DR\), p=1\.000 0\.000 0\.000 0\.000 0\.000\.jpg: grade \d/);
    expect(lines[1]).toMatch(/^ {2}P\(referable\) \d\.\d{3}, P\(vision-threatening\)/); // the record's second line
    expect(lines[2]).toMatch(/not for clinical use/i);
  });
});

describe('a model whose outputs are not probabilities', () => {
  it('predict exits 1 with one line saying so, and prints no grade', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const capture = (into: string[]) => (chunk: unknown) => {
      into.push(String(chunk));
      return true;
    };
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(capture(out));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(capture(err));
    try {
      const photo = resolve(dataDir, '../samples/fundus_a.jpg');
      await main(['node', 'retinagrade', 'predict', '--model', untrainedRun(1, { weightScale: 1e30 }), photo]);
      expect(process.exitCode).toBe(1);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
      process.exitCode = undefined;
    }
    expect(out.join('')).toBe('');
    expect(err.join('')).toMatch(/^retinagrade: error: the model gave NaN as the probability of grade 0 for image 1: .*\n$/);
  });
});
