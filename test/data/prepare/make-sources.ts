// Builds source folders for the prepare tests: PNG/JPEG exports of RetinaMNIST training images at
// a few sizes, the real sample photographs, and the faults prepare must skip.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { loadMedMNIST } from '../../../src/data/medmnist.js';

const root = resolve(import.meta.dirname, '../../..');
export const dataDir = process.env.MEDMNIST_DIR ?? resolve(root, '../shared/data');
export const samplesDir = resolve(root, '../shared/samples');

let retina: ReturnType<typeof loadMedMNIST> | undefined;
/** RetinaMNIST (28x28) training image `i` and its grade. */
export function retinaImage(i: number): { pixels: Buffer; grade: number } {
  retina ??= loadMedMNIST(join(dataDir, 'retinamnist.npz'), 'retinamnist');
  const bytes = 28 * 28 * 3;
  return { pixels: Buffer.from(retina.train.images.subarray(i * bytes, (i + 1) * bytes)), grade: retina.train.labels[i]! };
}

export interface Exported {
  /** Path relative to the folder. */
  name: string;
  grade: number;
  /** The 28x28 RetinaMNIST original. */
  original: Buffer;
}

/**
 * Writes RetinaMNIST training image `i` as a photograph would show it: upscaled, inside a round
 * field of view on a black frame, `side` pixels square, as PNG or JPEG at `path`.
 */
export async function exportImage(
  path: string,
  i: number,
  side: number,
  format: 'png' | 'jpeg',
): Promise<{ grade: number; original: Buffer }> {
  const { pixels, grade } = retinaImage(i);
  mkdirSync(dirname(path), { recursive: true });
  const inner = Math.round(side * 0.8);
  const margin = Math.floor((side - inner) / 2);
  const circle = Buffer.from(
    `<svg width="${inner}" height="${inner}"><circle cx="${inner / 2}" cy="${inner / 2}" r="${inner / 2}"/></svg>`,
  );
  const disc = await sharp(pixels, { raw: { width: 28, height: 28, channels: 3 } })
    .resize(inner, inner, { kernel: 'cubic' })
    .ensureAlpha()
    .composite([{ input: circle, blend: 'dest-in' }])
    .png()
    .toBuffer();
  const image = sharp(disc)
    .extend({ top: margin, left: margin, bottom: side - inner - margin, right: side - inner - margin, background: '#000000' })
    .flatten({ background: '#000000' });
  await (format === 'png' ? image.png() : image.jpeg({ quality: 95 })).toFile(path);
  return { grade, original: pixels };
}

/** Indices of RetinaMNIST training images from `first` on, taking grades 0, 1, 2, 3, 4, 0, ... in turn. */
export function gradesInTurn(count: number, first: number): number[] {
  const out: number[] = [];
  for (let i = first; out.length < count; i++) if (retinaImage(i).grade === out.length % 5) out.push(i);
  return out;
}

/**
 * `count` exports into `dir` named by `nameOf(k)`, alternating PNG 96 px, JPEG 160 px and PNG
 * 240 px, of training images from `first` on (or of `indices`).
 */
export async function exportMany(
  dir: string,
  count: number,
  nameOf: (i: number, ext: string) => string,
  first = 0,
  indices?: number[],
): Promise<Exported[]> {
  const kinds = [
    { side: 96, format: 'png', ext: 'png' },
    { side: 160, format: 'jpeg', ext: 'jpg' },
    { side: 240, format: 'png', ext: 'png' },
  ] as const;
  const out: Exported[] = [];
  for (let k = 0; k < count; k++) {
    const kind = kinds[k % kinds.length]!;
    const name = nameOf(k, kind.ext);
    const { grade, original } = await exportImage(join(dir, name), indices?.[k] ?? first + k, kind.side, kind.format);
    out.push({ name, grade, original });
  }
  return out;
}

/** The sample photographs (real fundus photographs at their full size), copied into `dir`. */
export function copySamples(dir: string, nameOf: (file: string) => string): string[] {
  return readdirSync(samplesDir)
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort()
    .map((file) => {
      const name = nameOf(file);
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      copyFileSync(join(samplesDir, file), join(dir, name));
      return name;
    });
}

/** The faulty files: truncated JPEG, 64-megapixel PNG (over the decompression-bomb limit), noise that is no fundus. */
export async function writeFaultyImages(dir: string, names: { truncated: string; bomb: string; notFundus: string }): Promise<void> {
  await exportImage(join(dir, names.truncated), 0, 400, 'jpeg');
  const full = readFileSync(join(dir, names.truncated));
  writeFileSync(join(dir, names.truncated), full.subarray(0, Math.floor(full.length / 3)));
  await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#000000' } })
    .png()
    .toFile(join(dir, names.bomb));
  const noise = Buffer.alloc(120 * 90 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  await sharp(noise, { raw: { width: 120, height: 90, channels: 3 } })
    .png()
    .toFile(join(dir, names.notFundus));
}

export function writeCsv(path: string, header: string[], rows: (string | number)[][]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${[header, ...rows].map((r) => r.join(',')).join('\n')}\n`);
}
