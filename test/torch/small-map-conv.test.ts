// Convolutions trained under bf16 autocast with at most 4 output positions per image take their
// weight gradient as one matrix product accumulated and returned in float32
// (native/src/small_map_conv.cc); larger ones stay with libtorch's convolution, whose bf16 weight
// gradient is rounded to bf16. Either way the gradients must be those of the convolution on the
// bf16-rounded input, weights and upstream gradient, computed in float32: to float32's precision
// on the small-map path, to bf16's on libtorch's (which is how the tests tell the two apart).
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

const CASES = [
  // ResNet-18's last stage at 64 px: 2x2 maps, the 3x3 convolutions and the strided ones into it.
  { name: '3x3 on a 2x2 map', input: [6, 16, 2, 2], weight: [24, 16, 3, 3], options: { padding: 1 }, smallMap: true },
  { name: '3x3 stride 2, 4x4 -> 2x2', input: [5, 8, 4, 4], weight: [16, 8, 3, 3], options: { stride: 2, padding: 1 }, smallMap: true },
  { name: '1x1 stride 2 (downsample), 4x4 -> 2x2', input: [5, 8, 4, 4], weight: [16, 8, 1, 1], options: { stride: 2 }, smallMap: true },
  { name: 'dilated 3x3, 5x5 -> 1x1', input: [4, 6, 5, 5], weight: [7, 6, 3, 3], options: { dilation: 2 }, smallMap: true },
  { name: 'non-square 2x2 kernel, 3x2 -> 2x1', input: [3, 4, 3, 2], weight: [5, 4, 2, 2], options: {}, smallMap: true },
  // Above the threshold: libtorch's own bf16 convolution.
  { name: '3x3 on a 4x4 map', input: [4, 8, 4, 4], weight: [8, 8, 3, 3], options: { padding: 1 }, smallMap: false },
];

/** float32 values rounded to the nearest bf16 (ties to even), as the cast to bfloat16 rounds them. */
function roundedToBf16(t: Tensor): Tensor {
  const values = Float32Array.from(t.toArray());
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i]! + 0x7fff + ((bits[i]! >>> 16) & 1)) & 0xffff0000) >>> 0;
  return torch.tensor(values, t.shape);
}

/** Largest |a - b| over the tolerance bf16 rounding allows: 2^-8 of |b| plus 1e-3 of b's largest magnitude. */
function worstOverTolerance(a: Tensor, b: Tensor): number {
  const [x, y] = [a.toArray(), b.toArray()];
  const scale = Math.max(...y.map(Math.abs));
  return Math.max(...x.map((v, i) => Math.abs(v - y[i]!) / (2 ** -8 * Math.abs(y[i]!) + 1e-3 * scale)));
}

/** Largest |a - b| relative to b's largest magnitude. */
function relativeError(a: Tensor, b: Tensor): number {
  const [x, y] = [a.toArray(), b.toArray()];
  const scale = Math.max(...y.map(Math.abs));
  return Math.max(...x.map((v, i) => Math.abs(v - y[i]!))) / scale;
}

const isBf16 = (t: Tensor): boolean => roundedToBf16(t).sub(t).abs().max().item() === 0;

describe('bf16 training convolution gradients', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s: match float32 on bf16-rounded operands', (_name, c) =>
    torch.tidy(() => {
      const gen = new torch.Generator(3);
      const input = gen.normal(c.input);
      const weight = gen.normal(c.weight).mul(0.1);

      const [x, w] = [input.clone(), weight.clone()];
      x.requiresGrad = true;
      w.requiresGrad = true;
      const out = torch.atPrecision('bf16', () => torch.conv2d(x, w, undefined, c.options));
      const upstream = gen.normal(out.shape);
      out.mul(upstream).sum().backward();

      const [xr, wr] = [roundedToBf16(input), roundedToBf16(weight)];
      xr.requiresGrad = true;
      wr.requiresGrad = true;
      const reference = torch.conv2d(xr, wr, undefined, c.options);
      reference.mul(roundedToBf16(upstream)).sum().backward();

      expect(out.shape).toEqual(reference.shape);
      expect(worstOverTolerance(out, reference)).toBeLessThanOrEqual(1);
      expect(x.grad!.dtype).toBe('float32');
      expect(w.grad!.dtype).toBe('float32');
      expect(worstOverTolerance(w.grad!, wr.grad!)).toBeLessThanOrEqual(1);
      expect(worstOverTolerance(x.grad!, xr.grad!)).toBeLessThanOrEqual(1);
      if (c.smallMap) {
        expect(relativeError(w.grad!, wr.grad!)).toBeLessThan(1e-5); // float32 products and sums
      } else {
        expect(isBf16(w.grad!)).toBe(true); // libtorch's bf16 weight gradient
      }
    }),
  );

  it('a batch of no images gets zero weight gradients', () =>
    torch.tidy(() => {
      const w = torch.ones([8, 16, 3, 3]);
      w.requiresGrad = true;
      const out = torch.atPrecision('bf16', () => torch.conv2d(torch.zeros([0, 16, 2, 2]), w, undefined, { padding: 1 }));
      expect(out.shape).toEqual([0, 8, 2, 2]);
      out.sum().backward();
      expect(w.grad!.abs().max().item()).toBe(0);
    }));

  it('a stride of 0 is refused with libtorch’s message', () =>
    torch.tidy(() => {
      const w = torch.ones([8, 16, 3, 3]);
      w.requiresGrad = true;
      expect(() => torch.atPrecision('bf16', () => torch.conv2d(torch.zeros([2, 16, 2, 2]), w, undefined, { stride: 0 }))).toThrow(
        /stride/,
      );
    }));

  it('float64 tensors, which autocast leaves alone, are not rounded to bf16', () =>
    torch.tidy(() => {
      const gen = new torch.Generator(5);
      const x = gen.normal([3, 4, 2, 2]).to('float64');
      const w = gen.normal([5, 4, 3, 3]).to('float64');
      w.requiresGrad = true;
      const out = torch.atPrecision('bf16', () => torch.conv2d(x, w, undefined, { padding: 1 }));
      const exact = torch.noGrad(() => torch.conv2d(x, w, undefined, { padding: 1 }));
      expect(out.sub(exact.float()).abs().max().item()).toBeLessThan(1e-5);
    }));

  it('an input that needs no gradient gets none, and the weight gradient is still right', () =>
    torch.tidy(() => {
      const gen = new torch.Generator(4);
      const input = gen.normal([6, 16, 2, 2]);
      const w = gen.normal([8, 16, 3, 3]).mul(0.1);
      w.requiresGrad = true;
      torch
        .atPrecision('bf16', () => torch.conv2d(input, w, undefined, { padding: 1 }))
        .sum()
        .backward();
      expect(input.grad).toBeUndefined();
      const wr = roundedToBf16(w.detach());
      wr.requiresGrad = true;
      torch.conv2d(roundedToBf16(input), wr, undefined, { padding: 1 }).sum().backward();
      expect(worstOverTolerance(w.grad!, wr.grad!)).toBeLessThanOrEqual(1);
    }));
});
