// The negative set: images that are not gradable colour fundus photographs, built from seeded
// randomness, the RetinaMNIST file and the sample photographs. Each is a PNG in memory with a name
// saying what it is. Families: solid colours, noise, gradients, text, natural-image-like scenes,
// greyscale and red-free copies of retinas, montages of retinas, and RetinaMNIST images
// transformed into non-retinas (inverted, channels swapped, tiles shuffled, hue turned).
import { readFileSync } from 'node:fs';
import sharp from 'sharp';

export interface NamedImage {
  name: string;
  bytes: Uint8Array;
}

/** Square RGB images as H x W x 3 bytes. */
type Rgb = Uint8Array;

function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

const png = async (name: string, rgb: Rgb, side: number): Promise<NamedImage> => ({
  name,
  bytes: new Uint8Array(
    await sharp(rgb, { raw: { width: side, height: side, channels: 3 } })
      .png()
      .toBuffer(),
  ),
});

const fill = (side: number, at: (x: number, y: number) => [number, number, number]): Rgb => {
  const out = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) out.set(at(x, y), (y * side + x) * 3);
  return out;
};

const SIDE = 224;

async function syntheticNegatives(random: () => number): Promise<NamedImage[]> {
  const colour = (): [number, number, number] => [0, 0, 0].map(() => Math.floor(256 * random())) as [number, number, number];
  const out: Promise<NamedImage>[] = [];
  const solids: [string, [number, number, number]][] = [
    ['black', [0, 0, 0]],
    ['white', [255, 255, 255]],
    ['blue', [0, 0, 255]],
    ['red', [255, 0, 0]],
    ['green', [0, 160, 0]],
    ['grey', [128, 128, 128]],
    ['orange', [200, 90, 40]],
  ];
  for (const [name, c] of solids)
    out.push(
      png(
        `solid-${name}`,
        fill(SIDE, () => c),
        SIDE,
      ),
    );
  for (let i = 0; i < 8; i++) out.push(png(`solid-random-${i}`, fill(SIDE, colour), SIDE));
  for (let i = 0; i < 6; i++) out.push(png(`noise-rgb-${i}`, fill(SIDE, colour), SIDE));
  for (let i = 0; i < 6; i++) {
    // Noise in a fundus's palette: reddish-orange, darker towards blue.
    out.push(
      png(
        `noise-fundus-palette-${i}`,
        fill(SIDE, () => [120 + 100 * random(), 40 + 60 * random(), 10 + 30 * random()]),
        SIDE,
      ),
    );
  }
  for (let i = 0; i < 8; i++) {
    const [a, b] = [colour(), colour()];
    const radial = i % 2 === 1;
    out.push(
      png(
        `gradient-${radial ? 'radial' : 'linear'}-${i}`,
        fill(SIDE, (x, y) => {
          const t = radial ? Math.min(1, Math.hypot(x - SIDE / 2, y - SIDE / 2) / (SIDE / 2)) : x / (SIDE - 1);
          return a.map((v, c) => v + t * (b[c]! - v)) as [number, number, number];
        }),
        SIDE,
      ),
    );
  }
  const words = ['Diabetic retinopathy', 'Invoice 2024', 'Hello world', 'Lorem ipsum dolor', 'Grade 3 Severe', 'Fundus'];
  for (const [i, text] of words.entries()) {
    const dark = i % 2 === 0;
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${SIDE}" height="${SIDE}">` +
      `<rect width="100%" height="100%" fill="${dark ? '#000' : '#fff'}"/>` +
      `<text x="8" y="${SIDE / 2}" font-family="DejaVu Sans" font-size="22" fill="${dark ? '#fff' : '#000'}">${text}</text></svg>`;
    out.push(
      sharp(Buffer.from(svg))
        .flatten()
        .png()
        .toBuffer()
        .then((bytes) => ({ name: `text-${i}`, bytes: new Uint8Array(bytes) })),
    );
  }
  for (let i = 0; i < 8; i++) {
    // A landscape: sky over ground with a sun, and random shapes; a checkerboard.
    const [sky, ground, sun] = [
      [60 + 80 * random(), 120 + 80 * random(), 200 + 55 * random()],
      [40 + 80 * random(), 90 + 100 * random(), 20 + 60 * random()],
      [255, 220 + 35 * random(), 80],
    ];
    const horizon = SIDE * (0.4 + 0.3 * random());
    const [sx, sy] = [SIDE * random(), horizon * random()];
    out.push(
      png(
        `scene-landscape-${i}`,
        fill(SIDE, (x, y) => (Math.hypot(x - sx, y - sy) < 20 ? sun : y < horizon ? sky : ground) as [number, number, number]),
        SIDE,
      ),
    );
    const shapes = Array.from({ length: 6 }, () => ({ x: SIDE * random(), y: SIDE * random(), r: 10 + 50 * random(), c: colour() }));
    const background = colour();
    out.push(
      png(
        `scene-shapes-${i}`,
        fill(SIDE, (x, y) => shapes.find((s) => Math.abs(x - s.x) + Math.abs(y - s.y) < s.r)?.c ?? background),
        SIDE,
      ),
    );
    const cell = 8 + Math.floor(40 * random());
    const [c1, c2] = [colour(), colour()];
    out.push(
      png(
        `scene-checkerboard-${i}`,
        fill(SIDE, (x, y) => ((Math.floor(x / cell) + Math.floor(y / cell)) % 2 ? c1 : c2)),
        SIDE,
      ),
    );
  }
  return Promise.all(out);
}

/** 28 x 28 RGB retinas from the RetinaMNIST file, as H x W x 3 bytes. */
export interface RetinaSource {
  images: Uint8Array;
  count: number;
  side: number;
}

function retinaAt(source: RetinaSource, i: number): Rgb {
  const n = source.side * source.side * 3;
  return source.images.subarray(i * n, (i + 1) * n);
}

async function retinaNegatives(source: RetinaSource, samples: string[], random: () => number): Promise<NamedImage[]> {
  const side = source.side;
  const out: Promise<NamedImage>[] = [];
  const pick = () => Math.floor(random() * source.count);
  for (let i = 0; i < 10; i++) {
    const rgb = retinaAt(source, pick());
    const grey = fill(side, (x, y) => {
      const p = (y * side + x) * 3;
      const v = Math.round(0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!);
      return [v, v, v];
    });
    out.push(png(`greyscale-retinamnist-${i}`, grey, side));
    // Red-free: the green channel alone, shown grey (as red-free photography shows it) or green.
    out.push(
      png(
        `red-free-retinamnist-${i}`,
        fill(side, (x, y) => [0, 1, 2].map(() => rgb[(y * side + x) * 3 + 1]!) as [number, number, number]),
        side,
      ),
    );
    out.push(
      png(
        `green-only-retinamnist-${i}`,
        fill(side, (x, y) => [0, rgb[(y * side + x) * 3 + 1]!, 0]),
        side,
      ),
    );
    out.push(
      png(
        `inverted-retinamnist-${i}`,
        fill(side, (x, y) => [0, 1, 2].map((c) => 255 - rgb[(y * side + x) * 3 + c]!) as [number, number, number]),
        side,
      ),
    );
    out.push(
      png(
        `channels-bgr-retinamnist-${i}`,
        fill(side, (x, y) => [2, 1, 0].map((c) => rgb[(y * side + x) * 3 + c]!) as [number, number, number]),
        side,
      ),
    );
    out.push(
      png(
        `channels-gbr-retinamnist-${i}`,
        fill(side, (x, y) => [1, 2, 0].map((c) => rgb[(y * side + x) * 3 + c]!) as [number, number, number]),
        side,
      ),
    );
    // Tiles of 7 x 7 pixels shuffled: the colours of a retina without its structure.
    const tiles = 4;
    const order = Array.from({ length: tiles * tiles }, (_, t) => t).sort(() => random() - 0.5);
    const t = side / tiles;
    out.push(
      png(
        `tiles-shuffled-retinamnist-${i}`,
        fill(side, (x, y) => {
          const from = order[Math.floor(y / t) * tiles + Math.floor(x / t)]!;
          const [fx, fy] = [(from % tiles) * t + (x % t), Math.floor(from / tiles) * t + (y % t)];
          const p = (fy * side + fx) * 3;
          return [rgb[p]!, rgb[p + 1]!, rgb[p + 2]!];
        }),
        side,
      ),
    );
  }
  // Montages: a grid of 8 x 5 = 40 retinas, as `retinagrade montage` draws them, and 4 x 4.
  for (const [cols, rows] of [
    [8, 5],
    [4, 4],
    [5, 8],
  ] as const) {
    const indices = Array.from({ length: cols * rows }, pick);
    const width = cols * side;
    const grid = new Uint8Array(width * rows * side * 3);
    indices.forEach((index, k) => {
      const rgb = retinaAt(source, index);
      const [cx, cy] = [(k % cols) * side, Math.floor(k / cols) * side];
      for (let y = 0; y < side; y++) grid.set(rgb.subarray(y * side * 3, (y + 1) * side * 3), ((cy + y) * width + cx) * 3);
    });
    out.push(
      sharp(grid, { raw: { width, height: rows * side, channels: 3 } })
        .png()
        .toBuffer()
        .then((bytes) => ({ name: `montage-${cols}x${rows}`, bytes: new Uint8Array(bytes) })),
    );
  }
  // Greyscale and red-free copies of the real photographs.
  for (const path of samples) {
    const name = path.split('/').at(-1);
    const bytes = readFileSync(path);
    out.push(
      sharp(bytes)
        .greyscale()
        .png()
        .toBuffer()
        .then((b) => ({ name: `greyscale-${name}`, bytes: new Uint8Array(b) })),
    );
    out.push(
      sharp(bytes)
        .extractChannel('green')
        .png()
        .toBuffer()
        .then((b) => ({ name: `red-free-${name}`, bytes: new Uint8Array(b) })),
    );
  }
  return Promise.all(out);
}

/** The whole negative set, deterministic for a seed. */
export async function negativeSet(source: RetinaSource, samples: string[], seed = 1): Promise<NamedImage[]> {
  const random = generator(seed);
  return [...(await syntheticNegatives(random)), ...(await retinaNegatives(source, samples, random))];
}
