import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bombPng } from '../helpers/bomb-png.js';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { NOT_FUNDUS_WARNING, decodeImage, findDisc, preprocessFundus } from '../../src/data/fundus.js';

// Three real 224x224 fundus JPEGs in shared/, which sits beside the repository (in CI too).
const SAMPLES = join(import.meta.dirname, '../../../shared/samples');
const tmp = mkdtempSync(join(tmpdir(), 'retinagrade-fundus-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeTmp(name: string, bytes: Uint8Array | string): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

/** A synthetic fundus: an orange disc on black, optionally with bright specks of noise. */
function discImage(width: number, height: number, cx: number, cy: number, radius: number, speckle = 0): Buffer {
  const rgb = Buffer.alloc(width * height * 3);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      seed = (seed * 1103515245 + 12345) >>> 0;
      if ((x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2) rgb.set([200, 90, 40], i);
      else if (seed / 2 ** 32 < speckle) rgb.set([255, 255, 255], i);
    }
  }
  return rgb;
}

/** A seeded uniform draw in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

const raw = (rgb: Buffer, width: number, height: number) => sharp(rgb, { raw: { width, height, channels: 3 } });

/** Mean of all channels of the output pixel at (x, y). */
const brightnessAt = (pixels: Uint8Array, size: number, x: number, y: number) => {
  const i = (y * size + x) * 3;
  return (pixels[i]! + pixels[i + 1]! + pixels[i + 2]!) / 3;
};

describe('finding the retina disc', () => {
  for (const name of ['fundus_a.jpg', 'fundus_b.jpg', 'fundus_c.jpg']) {
    it(`finds the disc in the real photograph ${name}`, async () => {
      const result = await preprocessFundus(join(SAMPLES, name), 64);
      expect(result.warnings).toEqual([]);
      // The 224x224 samples show a centred disc nearly filling the frame.
      expect(result.disc!.cx).toBeGreaterThan(104);
      expect(result.disc!.cx).toBeLessThan(120);
      expect(result.disc!.cy).toBeGreaterThan(104);
      expect(result.disc!.cy).toBeLessThan(120);
      expect(result.disc!.radius).toBeGreaterThan(95);
      expect(result.disc!.radius).toBeLessThan(115);
      expect(result.pixels.length).toBe(64 * 64 * 3);
      // Cropped to the disc: dark corners, bright middle.
      expect(brightnessAt(result.pixels, 64, 0, 0)).toBeLessThan(20);
      expect(brightnessAt(result.pixels, 64, 32, 32)).toBeGreaterThan(60);
    });
  }

  it('locates an off-centre disc within a few pixels, despite noise', async () => {
    const png = await raw(discImage(400, 300, 240, 130, 90, 0.02), 400, 300)
      .png()
      .toBuffer();
    const disc = await findDisc(await decodeImage({ name: 'synthetic.png', bytes: png }));
    expect(Math.abs(disc!.cx - 240)).toBeLessThan(3);
    expect(Math.abs(disc!.cy - 130)).toBeLessThan(3);
    expect(Math.abs(disc!.radius - 90)).toBeLessThan(3);
  });

  it('handles a disc clipped at the top and bottom, padding the crop with black', async () => {
    const jpeg = await raw(discImage(400, 240, 200, 120, 140), 400, 240)
      .jpeg()
      .toBuffer();
    const result = await preprocessFundus({ name: 'clipped.jpg', bytes: jpeg }, 56);
    expect(Math.abs(result.disc!.cx - 200)).toBeLessThan(3);
    expect(Math.abs(result.disc!.cy - 120)).toBeLessThan(3);
    expect(Math.abs(result.disc!.radius - 140)).toBeLessThan(3);
    // 280 px square from a 240 px high image: 20 px (4 output rows) of black at top and bottom.
    expect(brightnessAt(result.pixels, 56, 28, 1)).toBe(0);
    expect(brightnessAt(result.pixels, 56, 28, 54)).toBe(0);
    expect(brightnessAt(result.pixels, 56, 28, 8)).toBeGreaterThan(80);
  });

  it('puts the centre a radius in from the far side when one edge clips the disc', async () => {
    const png = await raw(discImage(400, 300, 60, 150, 100), 400, 300)
      .png()
      .toBuffer();
    const disc = await findDisc(await decodeImage({ name: 'left.png', bytes: png }));
    expect(Math.abs(disc!.cx - 60)).toBeLessThan(3);
    expect(Math.abs(disc!.cy - 150)).toBeLessThan(3);
    expect(Math.abs(disc!.radius - 100)).toBeLessThan(3);
  });

  it('leaves a square image that is already cropped to its disc unchanged, and still crops one that is not', async () => {
    // The disc found in a 28 px disc crop is off by a pixel; cropping to it would shift the image.
    const filling = writeTmp(
      'filling.png',
      await raw(discImage(28, 28, 14.5, 13.5, 13.6), 28, 28)
        .png()
        .toBuffer(),
    );
    const same = await preprocessFundus(filling, 28);
    expect(same.disc).not.toBeNull();
    expect(Buffer.from(same.pixels).equals(discImage(28, 28, 14.5, 13.5, 13.6))).toBe(true);
    const small = writeTmp(
      'small-disc.png',
      await raw(discImage(64, 64, 32, 32, 20), 64, 64)
        .png()
        .toBuffer(),
    );
    const cropped = await preprocessFundus(small, 64);
    expect(brightnessAt(cropped.pixels, 64, 32, 2)).toBeGreaterThan(60); // the disc now reaches the edge
  });

  it('warns and centre-crops when the image is not a fundus photograph', async () => {
    const width = 300;
    const height = 200;
    const gradient = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) gradient.fill(Math.round(((i % width) / (width - 1)) * 255), 3 * i, 3 * i + 3);
    const result = await preprocessFundus({ name: 'gradient.png', bytes: await raw(gradient, width, height).png().toBuffer() }, 32);
    expect(result.disc).toBeNull();
    expect(result.warnings).toEqual([NOT_FUNDUS_WARNING]);
    expect(NOT_FUNDUS_WARNING).toMatch(/^does not look like a fundus photograph \(no dark border around a bright disc found\)/);
    // The centre 200x200 square of a left-to-right ramp: dark on the left, bright on the right.
    expect(brightnessAt(result.pixels, 32, 0, 16)).toBeLessThan(brightnessAt(result.pixels, 32, 31, 16));
    expect(result.pixels.length).toBe(32 * 32 * 3);

    const grey = await sharp({ create: { width: 50, height: 50, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    expect((await preprocessFundus({ name: 'grey.png', bytes: grey }, 16)).warnings).toEqual([NOT_FUNDUS_WARNING]);
    const square = Buffer.alloc(100 * 100 * 3);
    for (let y = 20; y < 80; y++) square.fill(200, (y * 100 + 20) * 3, (y * 100 + 80) * 3);
    expect(await findDisc(await decodeImage({ name: 'square.png', bytes: await raw(square, 100, 100).png().toBuffer() }))).toBeNull();
  });
});

describe('decoding photographs safely', () => {
  it('honours EXIF orientation', async () => {
    // 60x40, left half red, right half blue, tagged "rotate 90 degrees clockwise to display".
    const rgb = Buffer.alloc(60 * 40 * 3);
    for (let i = 0; i < 60 * 40; i++) rgb.set(i % 60 < 30 ? [255, 0, 0] : [0, 0, 255], 3 * i);
    const jpeg = await raw(rgb, 60, 40).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const image = await decodeImage({ name: 'rotated.jpg', bytes: jpeg });
    expect([image.width, image.height]).toEqual([40, 60]);
    const at = (x: number, y: number) => [...image.rgb.subarray((y * 40 + x) * 3, (y * 40 + x) * 3 + 3)];
    expect(at(20, 5)[0]).toBeGreaterThan(200); // the left (red) half is now on top
    expect(at(20, 55)[2]).toBeGreaterThan(200); // and the blue half at the bottom
  });

  it('decodes grey and transparent PNGs to RGB', async () => {
    const rgba = await sharp({ create: { width: 8, height: 4, channels: 4, background: { r: 200, g: 0, b: 0, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const flattened = await decodeImage({ name: 'rgba.png', bytes: rgba });
    expect([...flattened.rgb.subarray(0, 3)]).toEqual([100, 0, 0]);
    const grey = await sharp(Buffer.alloc(32, 90), { raw: { width: 8, height: 4, channels: 1 } })
      .png()
      .toBuffer();
    const decoded = await decodeImage({ name: 'grey.png', bytes: grey });
    expect(decoded.rgb.length).toBe(8 * 4 * 3);
    expect([...decoded.rgb.subarray(0, 3)]).toEqual([90, 90, 90]);
  });

  it('refuses non-images, empty files and unsupported formats, naming the file', async () => {
    const text = writeTmp('notes.jpg', 'this is not an image');
    await expect(preprocessFundus(text, 28)).rejects.toThrow(
      `${text}: not a readable image (Input buffer contains unsupported image format); expected a PNG, JPEG, TIFF or WebP image`,
    );
    const empty = writeTmp('empty.png', '');
    await expect(preprocessFundus(empty, 28)).rejects.toThrow(`${empty}: empty file (expected a PNG, JPEG, TIFF or WebP image)`);
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#fff' } })
      .gif()
      .toBuffer();
    await expect(decodeImage({ name: 'anim.gif', bytes: gif })).rejects.toThrow("anim.gif: unsupported image format 'gif'");
    await expect(decodeImage(join(tmp, 'missing.jpg'))).rejects.toThrow(/missing\.jpg: cannot read the image/);
  });

  it('refuses a truncated JPEG', async () => {
    const jpeg = readFileSync(join(SAMPLES, 'fundus_a.jpg'));
    const half = writeTmp('half.jpg', jpeg.subarray(0, jpeg.length >> 1));
    await expect(preprocessFundus(half, 28)).rejects.toThrow(
      `${half}: truncated or corrupt image data (VipsJpeg: premature end of JPEG image`,
    );
  });

  it('refuses JPEGs with damaged scan data or a patched size, which libjpeg decodes with a warning', async () => {
    const jpeg = readFileSync(join(SAMPLES, 'fundus_a.jpg'));
    const scanStart = jpeg.indexOf(Buffer.from([0xff, 0xda])) + 20;
    const random = seeded(10);
    // 64 damaged bytes in the scan: sharp's old failOn 'truncated' decoded all of 200 such files,
    // 'warning' refuses all of them. Less damage can go unnoticed (JPEG has no checksum: with 16
    // bytes, 7 in 200 still decode without a warning, to other pixels).
    for (let k = 0; k < 8; k++) {
      const damaged = Buffer.from(jpeg);
      for (let f = 0; f < 64; f++)
        damaged[scanStart + Math.floor(random() * (jpeg.length - scanStart - 2))]! ^= 1 + Math.floor(random() * 255);
      await expect(decodeImage({ name: `flipped-${k}.jpg`, bytes: damaged })).rejects.toThrow(
        new RegExp(`^flipped-${k}\\.jpg: truncated or corrupt image data`),
      );
    }
    const patched = Buffer.from(jpeg);
    const frame = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    patched.writeUInt16BE(7000, frame + 5);
    patched.writeUInt16BE(7000, frame + 7);
    await expect(decodeImage({ name: 'patched.jpg', bytes: patched })).rejects.toThrow(/^patched\.jpg: truncated or corrupt image data/);
  });

  it('accepts every legitimate encoding: 16-bit, grey, CMYK, WebP, TIFF, all eight EXIF orientations', async () => {
    const base = raw(discImage(48, 32, 24, 16, 14), 48, 32);
    const encoded: Record<string, Buffer> = {
      '16-bit.png': await base.clone().toColourspace('rgb16').png().toBuffer(),
      'grey.jpg': await base.clone().greyscale().jpeg().toBuffer(),
      'cmyk.jpg': await base.clone().toColourspace('cmyk').jpeg().toBuffer(),
      'progressive.jpg': await base.clone().jpeg({ progressive: true }).toBuffer(),
      'lossless.webp': await base.clone().webp({ lossless: true }).toBuffer(),
      'lossy.webp': await base.clone().webp().toBuffer(),
      'deflate.tiff': await base.clone().tiff({ compression: 'deflate' }).toBuffer(),
      'jpeg.tiff': await base.clone().tiff({ compression: 'jpeg' }).toBuffer(),
      '16-bit.tiff': await base.clone().toColourspace('rgb16').tiff().toBuffer(),
    };
    for (let orientation = 1; orientation <= 8; orientation++) {
      encoded[`orientation-${orientation}.jpg`] = await base.clone().jpeg().withMetadata({ orientation }).toBuffer();
    }
    expect((await sharp(encoded['16-bit.png']).metadata()).depth).toBe('ushort');
    expect((await sharp(encoded['cmyk.jpg']).metadata()).space).toBe('cmyk');
    for (const [name, bytes] of Object.entries(encoded)) {
      const image = await decodeImage({ name, bytes });
      const turned = /orientation-[5-8]/.test(name);
      expect([image.width, image.height], name).toEqual(turned ? [32, 48] : [48, 32]);
      // The disc's centre is orange whatever the encoding (grey: all channels alike).
      const centre = (16 * image.width + 24) * 3;
      const [r, g, b] = turned
        ? [...image.rgb.subarray((24 * 32 + 16) * 3, (24 * 32 + 16) * 3 + 3)]
        : [...image.rgb.subarray(centre, centre + 3)];
      if (name.startsWith('grey')) expect(Math.abs(r! - b!), name).toBeLessThan(3);
      else expect(r! - b!, name).toBeGreaterThan(100);
      expect(g, name).toBeGreaterThan(40);
    }
  });

  it('refuses a decompression bomb from its header alone', async () => {
    const bomb = writeTmp('bomb.png', bombPng());
    await expect(preprocessFundus(bomb, 28)).rejects.toThrow(
      `${bomb}: 20000x20000 is 400 megapixels, over the 50 megapixel limit (refused as a possible decompression bomb`,
    );
  });
});
