import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import {
  applyAugment,
  augment,
  AugmentSchema,
  datasheetAugment,
  identityParams,
  sampleParams,
  type SampleParams,
} from '../../src/data/augment/index.js';

// Configs written here are parsed, as every caller's are: augment and sampleParams do not validate.
const allOff = AugmentSchema.parse({
  ...datasheetAugment,
  horizontalFlip: { ...datasheetAugment.horizontalFlip, enabled: false },
  rotation: { ...datasheetAugment.rotation, enabled: false },
  resizedCrop: { ...datasheetAugment.resizedCrop, enabled: false },
  colorJitter: { ...datasheetAugment.colorJitter, enabled: false },
  affine: { ...datasheetAugment.affine, enabled: false },
});

/** A random batch in [-1, 1]. */
const randomBatch = (n: number, size: number, seed = 1): torch.Tensor => new torch.Generator(seed).uniform([n, 3, size, size], -1, 1);

/** Applies the same hand-written parameters to every image of `x`. */
function applyToAll(x: torch.Tensor, overrides: Partial<SampleParams>): torch.Tensor {
  const [n, , height, width] = x.shape as [number, number, number, number];
  const params = Array.from({ length: n }, () => ({ ...identityParams(height, width), ...overrides }));
  return applyAugment(x, params);
}

const maxAbsDiff = (a: torch.Tensor, b: torch.Tensor): number => a.sub(b).abs().max().item();

// gridSample locates pixels in float32 normalized coordinates, so even libtorch's own identity
// grid reads a few 1e-7 of a pixel off centre; on a random image that is ~1e-6 per pixel.
const WARP_TOLERANCE = 1e-5;

describe('identity', () => {
  it('returns the input exactly when every transform is off', () => {
    const x = randomBatch(4, 16);
    const y = augment(x, allOff, new torch.Generator(0));
    expect(y).not.toBe(x);
    expect(y.toArray()).toEqual(x.toArray());
  });

  it('returns the input exactly for identity parameter values with every transform on', () => {
    const identityValued = AugmentSchema.parse({
      ...datasheetAugment,
      horizontalFlip: { enabled: true, p: 0 },
      rotation: { enabled: true, degrees: 0 },
      resizedCrop: { enabled: true, scale: [1, 1], ratio: [1, 1] },
      colorJitter: { enabled: true, brightness: 0, contrast: 0, saturation: 0, hue: 0 },
      affine: { enabled: true, translate: [0, 0], scale: [1, 1] },
    });
    const x = randomBatch(4, 16);
    expect(augment(x, identityValued, new torch.Generator(0)).toArray()).toEqual(x.toArray());
  });

  it('passes a full turn through the warp and gets the input back to float32 precision', () => {
    const x = randomBatch(3, 16);
    expect(maxAbsDiff(applyToAll(x, { angle: 360 }), x)).toBeLessThan(WARP_TOLERANCE);
  });
});

describe('geometry', () => {
  it('flips horizontally, and flipping twice is the identity', () => {
    const x = randomBatch(2, 12);
    const flipped = applyToAll(x, { flip: true });
    expect(maxAbsDiff(flipped, x.flip([3]))).toBeLessThan(WARP_TOLERANCE);
    expect(maxAbsDiff(applyToAll(flipped, { flip: true }), x)).toBeLessThan(WARP_TOLERANCE);
  });

  it('rotates 90 degrees counter-clockwise', () => {
    // One bright pixel at row 1, column 6 (top right) of a black 8x8 image.
    const pixels = new Float32Array(3 * 8 * 8).fill(-1);
    for (let c = 0; c < 3; c++) pixels[c * 64 + 1 * 8 + 6] = 1;
    const x = torch.tensor(pixels, [1, 3, 8, 8]);
    const rotated = applyToAll(x, { angle: 90 });
    // Counter-clockwise, the top-right pixel goes to the top left: (row 1, col 6) -> (row 1, col 1).
    const values = rotated.toArray();
    expect(values[1 * 8 + 1]).toBeCloseTo(1, 5);
    expect(values[1 * 8 + 6]).toBeCloseTo(-1, 5);
    // And the whole image equals the exact rot90 (transpose, then flip rows) of a random one.
    const random = randomBatch(1, 8);
    expect(maxAbsDiff(applyToAll(random, { angle: 90 }), random.transpose(2, 3).flip([2]))).toBeLessThan(WARP_TOLERANCE);
  });

  it('translates by whole pixels and fills the uncovered border with black', () => {
    const x = randomBatch(1, 10);
    const shifted = applyToAll(x, { translate: [2, 1] }); // 2 right, 1 down
    const inside = shifted.slice(2, 1, 10).slice(3, 2, 10);
    expect(maxAbsDiff(inside, x.slice(2, 0, 9).slice(3, 0, 8))).toBeLessThan(WARP_TOLERANCE);
    expect(shifted.slice(3, 0, 2).eq(-1).logicalNot().sum().item()).toBe(0);
    expect(shifted.slice(2, 0, 1).eq(-1).logicalNot().sum().item()).toBe(0);
  });

  it('crops a box and stretches it to the full frame', () => {
    // Nearest sampling at exact 2x: output pixel (r, c) reads the box at (r / 2, c / 2).
    const x = randomBatch(1, 8);
    const params = [{ ...identityParams(8, 8), crop: { top: 2, left: 4, height: 4, width: 4 } }];
    const cropped = applyAugment(x, params, 'nearest');
    const box = x.slice(2, 2, 6).slice(3, 4, 8);
    const expected = box.unsqueeze(3).unsqueeze(5).expand([1, 3, 4, 2, 4, 2]).reshape([1, 3, 8, 8]);
    expect(maxAbsDiff(cropped, expected)).toBe(0);
  });

  it('keeps what a zoom-out brings in from outside the cropped frame black, as torchvision does', () => {
    // A white image, cropped to its centre half, then zoomed out by 2: only the central quarter
    // of the output shows the crop; the composed map would otherwise read white from around the box.
    const x = torch.ones([1, 3, 16, 16]);
    const zoomed = applyToAll(x, { crop: { top: 4, left: 4, height: 8, width: 8 }, scale: 0.5 });
    const centre = zoomed.slice(2, 4, 12).slice(3, 4, 12);
    expect(centre.min().item()).toBeCloseTo(1, 5);
    expect(zoomed.sum().item()).toBeCloseTo(3 * (64 - (256 - 64)), 3); // 64 white (+1), 192 black (-1) per channel
  });
});

describe('colour', () => {
  it('scales [0, 1] intensities by the brightness factor and clamps at white', () => {
    const x = randomBatch(2, 8);
    const unit = x.add(1).mul(0.5); // the [0, 1] image that colour jitter works on
    const fromUnit = (t: torch.Tensor): torch.Tensor => t.mul(2).sub(1);
    expect(maxAbsDiff(applyToAll(x, { brightness: 0.5 }), fromUnit(unit.mul(0.5)))).toBeLessThan(1e-6);
    expect(maxAbsDiff(applyToAll(x, { brightness: 2 }), fromUnit(unit.mul(2).clamp(0, 1)))).toBeLessThan(1e-6);
  });

  it('turns red into green with a hue shift of a third of a turn', () => {
    const red = torch.tensor([1, 1, -1, -1, -1, -1], [1, 3, 1, 2]); // two pure red pixels
    const shifted = applyToAll(red, { hue: 1 / 3 });
    const values = shifted.toArray();
    [-1, -1, 1, 1, -1, -1].forEach((v, i) => expect(values[i]).toBeCloseTo(v, 5));
  });

  it("shifts hue as torchvision's HSV round trip does, including ties, grays and wrap-around", () => {
    // torchvision's _rgb2hsv / _hsv2rgb for one [0, 1] pixel, in float64.
    const reference = (rgb: [number, number, number], shift: number): [number, number, number] => {
      const [r, g, b] = rgb;
      const max = Math.max(r, g, b);
      const min = Math.min(r, g, b);
      const flat = max === min;
      const chroma = max - min;
      const s = chroma / (flat ? 1 : max);
      const divisor = flat ? 1 : chroma;
      const [rc, gc, bc] = [(max - r) / divisor, (max - g) / divisor, (max - b) / divisor];
      const h6 = max === r ? bc - gc : max === g ? 2 + rc - bc : 4 + gc - rc;
      const mod1 = (v: number): number => v - Math.floor(v);
      const h = mod1(mod1(h6 / 6 + 1) + shift);
      const i = Math.floor(h * 6) % 6;
      const f = h * 6 - Math.floor(h * 6);
      const clamp = (v: number): number => Math.min(1, Math.max(0, v));
      const [v, p, q, t] = [max, clamp(max * (1 - s)), clamp(max * (1 - s * f)), clamp(max * (1 - s * (1 - f)))];
      return (
        [
          [v, t, p],
          [q, v, p],
          [p, v, t],
          [p, q, v],
          [t, p, v],
          [v, p, q],
        ] as const
      )[i]!.slice() as [number, number, number];
    };
    const pixels: [number, number, number][] = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [0.5, 0.5, 0.5],
      [0, 0, 0],
      [1, 1, 1], // primaries, grays
      [0.8, 0.8, 0.2],
      [0.2, 0.8, 0.8],
      [0.8, 0.2, 0.8],
      [0.9, 0.9, 0.9],
      [0.6, 0.6, 0.1], // ties for the max
      [0.9, 0.1, 0.1],
      [0.9, 0.1, 0.2],
      [0.9, 0.2, 0.1],
      [0.3, 0.2, 0.25], // near red: wrap-around
    ];
    const gen = new torch.Generator(11);
    const random = gen.uniform([40, 3], 0, 1).toArray();
    for (let i = 0; i < 40; i++) pixels.push([random[3 * i]!, random[3 * i + 1]!, random[3 * i + 2]!]);
    const width = pixels.length;
    for (const shift of [0.1, -0.1, 0.03, -0.37, 0.5, -0.5]) {
      // One image of `width` pixels: channel planes, in [-1, 1].
      const data = new Float32Array(3 * width);
      pixels.forEach((p, k) => p.forEach((v, c) => (data[c * width + k] = 2 * v - 1)));
      const out = applyToAll(torch.tensor(data, [1, 3, 1, width]), { hue: shift }).toArray();
      pixels.forEach((p, k) => {
        const expected = reference(p, shift);
        // Inputs are float32: allow for their rounding and float32 arithmetic.
        expected.forEach((v, c) => expect(Math.abs((out[c * width + k]! + 1) / 2 - v)).toBeLessThan(2e-6));
      });
    }
  });

  it('makes a grayscale image at saturation 0 and a flat image at contrast 0', () => {
    const x = randomBatch(1, 8);
    const gray = applyToAll(x, { saturation: 0 });
    expect(maxAbsDiff(gray.slice(1, 0, 1), gray.slice(1, 1, 2))).toBeLessThan(1e-6);
    expect(maxAbsDiff(gray.slice(1, 0, 1), gray.slice(1, 2, 3))).toBeLessThan(1e-6);
    const flat = applyToAll(x, { contrast: 0 });
    expect(flat.max().sub(flat.min()).item()).toBeLessThan(1e-6);
  });

  it("applies the operations in each sample's own order", () => {
    // Brightness 2 then contrast 0 differs from contrast 0 then brightness 2 (the clamp sees different values).
    const x = randomBatch(1, 8).expand([2, 3, 8, 8]).contiguous();
    const base = { ...identityParams(8, 8), brightness: 2, contrast: 0 };
    const params: SampleParams[] = [
      { ...base, jitterOrder: ['brightness', 'contrast', 'saturation', 'hue'] },
      { ...base, jitterOrder: ['contrast', 'brightness', 'saturation', 'hue'] },
    ];
    const out = applyAugment(x, params);
    const single = (i: number): torch.Tensor => applyAugment(x.slice(0, i, i + 1), [params[i]!]);
    expect(maxAbsDiff(out.slice(0, 0, 1), single(0))).toBe(0);
    expect(maxAbsDiff(out.slice(0, 1, 2), single(1))).toBe(0);
    expect(maxAbsDiff(out.slice(0, 0, 1), out.slice(0, 1, 2))).toBeGreaterThan(0.01);
  });
});

describe('sampleParams', () => {
  const size = 64;
  const params = sampleParams(4000, size, size, datasheetAugment, new torch.Generator(7));
  const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)];

  it('draws every parameter inside its range and covers the range', () => {
    const flips = params.filter((p) => p.flip).length / params.length;
    expect(flips).toBeGreaterThan(0.46);
    expect(flips).toBeLessThan(0.54);

    const [angleMin, angleMax] = range(params.map((p) => p.angle));
    expect(angleMin).toBeGreaterThanOrEqual(-45);
    expect(angleMax).toBeLessThanOrEqual(45);
    expect(angleMin).toBeLessThan(-44);
    expect(angleMax).toBeGreaterThan(44);

    for (const { crop } of params) {
      expect(crop.top).toBeGreaterThanOrEqual(0);
      expect(crop.left).toBeGreaterThanOrEqual(0);
      expect(crop.top + crop.height).toBeLessThanOrEqual(size);
      expect(crop.left + crop.width).toBeLessThanOrEqual(size);
      // Sizes are rounded to whole pixels, so allow one pixel of slack on the area and the ratio.
      const area = (crop.height * crop.width) / (size * size);
      expect(area).toBeGreaterThan(0.6 * (1 - 2 / 40));
      expect(crop.width / crop.height).toBeGreaterThanOrEqual(3 / 4 - 0.04);
      expect(crop.width / crop.height).toBeLessThanOrEqual(4 / 3 + 0.04);
    }
    const [areaMin, areaMax] = range(params.map((p) => (p.crop.height * p.crop.width) / (size * size)));
    expect(areaMin).toBeLessThan(0.62);
    expect(areaMax).toBeGreaterThan(0.97);

    for (const axis of [0, 1]) {
      const shifts = params.map((p) => p.translate[axis]!);
      expect(shifts.every(Number.isInteger)).toBe(true);
      expect(range(shifts)).toEqual([-6, 6]); // round(uniform(-6.4, 6.4))
    }
    const [scaleMin, scaleMax] = range(params.map((p) => p.scale));
    expect(scaleMin).toBeGreaterThanOrEqual(0.8);
    expect(scaleMax).toBeLessThanOrEqual(1.2);
    expect(scaleMax - scaleMin).toBeGreaterThan(0.39);

    for (const key of ['brightness', 'contrast', 'saturation'] as const) {
      const [low, high] = range(params.map((p) => p[key]));
      expect(low).toBeGreaterThanOrEqual(0.5);
      expect(high).toBeLessThanOrEqual(1.5);
      expect(high - low).toBeGreaterThan(0.99);
    }
    const [hueMin, hueMax] = range(params.map((p) => p.hue));
    expect(hueMin).toBeGreaterThanOrEqual(-0.1);
    expect(hueMax).toBeLessThanOrEqual(0.1);
    expect(hueMax - hueMin).toBeGreaterThan(0.199);
  });

  it('draws every one of the 24 colour-jitter orders', () => {
    const orders = new Set(params.map((p) => p.jitterOrder.join(',')));
    expect(orders.size).toBe(24);
    for (const order of orders) expect(new Set(order.split(',')).size).toBe(4);
  });

  it('gives the enabled transforms the same parameters when another is switched off', () => {
    const noRotation = AugmentSchema.parse({ ...datasheetAugment, rotation: { enabled: false, degrees: 45 } });
    const a = sampleParams(50, size, size, datasheetAugment, new torch.Generator(3));
    const b = sampleParams(50, size, size, noRotation, new torch.Generator(3));
    expect(b.every((p) => p.angle === 0)).toBe(true);
    expect(b.map((p) => ({ ...p, angle: 0 }))).toEqual(a.map((p) => ({ ...p, angle: 0 })));
  });
});

describe('augment', () => {
  it('keeps the shape and dtype and stays in [-1, 1]', () => {
    const x = randomBatch(8, 32);
    const y = augment(x, datasheetAugment, new torch.Generator(0));
    expect(y.shape).toEqual([8, 3, 32, 32]);
    expect(y.dtype).toBe('float32');
    expect(y.min().item()).toBeGreaterThanOrEqual(-1);
    expect(y.max().item()).toBeLessThanOrEqual(1);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const x = randomBatch(4, 16);
    const run = (seed: number): number[] => augment(x, datasheetAugment, new torch.Generator(seed)).toArray();
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  // The datasheet's jitter sorts samples into hue groups; brightness and contrast alone (as in
  // the default recipe) make one group, jittered in place without the sort, and blend stages
  // without a grayscale term.
  const brightnessContrastOnly = AugmentSchema.parse({
    ...datasheetAugment,
    colorJitter: { enabled: true, brightness: 0.2, contrast: 0.2, saturation: 0, hue: 0 },
  });
  const configs = [
    ['the datasheet augmentation', datasheetAugment],
    ['brightness and contrast jitter only', brightnessContrastOnly],
  ] as const;

  it.each(configs)('gives the same result whatever ran before: %s', (_, config) => {
    const x = randomBatch(6, 16, 3);
    const first = augment(x, config, new torch.Generator(9)).toArray();
    augment(randomBatch(5, 12, 4), config, new torch.Generator(1)); // another shape
    augment(randomBatch(6, 16, 5), config, new torch.Generator(2)); // same shape, other data
    expect(augment(x, config, new torch.Generator(9)).toArray()).toEqual(first);
    augment(randomBatch(9, 16, 7), config, new torch.Generator(3)); // a larger batch: x uses its first rows
    expect(augment(x, config, new torch.Generator(9)).toArray()).toEqual(first);
    // The input is never changed.
    expect(x.toArray()).toEqual(randomBatch(6, 16, 3).toArray());
  });

  it.each(configs)('gives each sample the result it gets alone in a batch: %s', (_, config) => {
    const x = randomBatch(12, 16, 6);
    const params = sampleParams(12, 16, 16, config, new torch.Generator(4));
    const batch = applyAugment(x, params);
    for (const i of [0, 5, 11]) {
      const alone = applyAugment(x.slice(0, i, i + 1), [params[i]!]);
      expect(maxAbsDiff(batch.slice(0, i, i + 1), alone)).toBeLessThan(1e-6);
    }
  });

  it('rejects a parameter list of the wrong length', () => {
    expect(() => applyAugment(randomBatch(2, 8), [identityParams(8, 8)])).toThrow(/1 parameter sets for a batch of 2/);
  });
});

describe('AugmentSchema', () => {
  it("defaults to the default recipe's strengths", () => {
    expect(AugmentSchema.parse({})).toEqual({
      horizontalFlip: { enabled: true, p: 0.5 },
      rotation: { enabled: true, degrees: 45 },
      resizedCrop: { enabled: true, scale: [0.85, 1], ratio: [0.9, 1 / 0.9] },
      colorJitter: { enabled: true, brightness: 0.2, contrast: 0.2, saturation: 0, hue: 0 },
      affine: { enabled: true, translate: [0.05, 0.05], scale: [0.95, 1.05] },
      interpolation: 'bilinear',
    });
  });

  it("accepts the datasheet's values, and its parsed configs cannot be changed", () => {
    expect(AugmentSchema.parse(datasheetAugment)).toEqual(datasheetAugment);
    expect(Object.isFrozen(datasheetAugment) && Object.isFrozen(datasheetAugment.resizedCrop)).toBe(true);
    expect(Object.isFrozen(datasheetAugment.resizedCrop.scale)).toBe(true);
  });

  it.each([
    ['horizontalFlip.p', { horizontalFlip: { p: 1.5 } }],
    ['rotation.degrees', { rotation: { degrees: -1 } }],
    ['resizedCrop.scale', { resizedCrop: { scale: [0.9, 0.6] } }],
    ['resizedCrop.scale.1', { resizedCrop: { scale: [0.6, 1.1] } }],
    ['resizedCrop.ratio.0', { resizedCrop: { ratio: [0, 1] } }],
    ['resizedCrop.ratio', { resizedCrop: { ratio: [4 / 3, 3 / 4] } }],
    ['colorJitter.saturation', { colorJitter: { saturation: -0.1 } }],
    ['colorJitter.hue', { colorJitter: { hue: 0.7 } }],
    ['affine.translate.1', { affine: { translate: [0.1, 1.5] } }],
    ['affine.scale.0', { affine: { scale: [0, 1] } }],
    ['affine.scale', { affine: { scale: [1.2, 0.8] } }],
    ['interpolation', { interpolation: 'bicubic' }],
  ])('rejects an out-of-range %s, naming the field', (field, config) => {
    const result = AugmentSchema.safeParse(config);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual([field]);
  });
});
