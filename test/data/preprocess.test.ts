import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { resizeBatch, toTensor } from '../../src/data/preprocess.js';

describe('toTensor', () => {
  it('maps uint8 NHWC to float32 NCHW in [-1, 1]', () => {
    // Two 2x2 RGB images, black except three chosen bytes.
    const bytes = new Uint8Array(2 * 2 * 2 * 3);
    bytes[0] = 255; // image 0, row 0, col 0, red
    bytes[3 * 3 + 2] = 51; // image 0, row 1, col 1, blue
    bytes[12 + 1 * 3 + 1] = 204; // image 1, row 0, col 1, green
    const x = toTensor(bytes, 2, 2, 3);
    expect(x.shape).toEqual([2, 3, 2, 2]);
    expect(x.dtype).toBe('float32');
    const values = x.toArray();
    const at = (n: number, c: number, y: number, xx: number): number => values[((n * 3 + c) * 2 + y) * 2 + xx]!;
    expect(at(0, 0, 0, 0)).toBe(1);
    expect(at(0, 2, 1, 1)).toBeCloseTo(51 / 127.5 - 1, 6);
    expect(at(1, 1, 0, 1)).toBeCloseTo(204 / 127.5 - 1, 6);
    expect(at(1, 0, 1, 0)).toBe(-1);
  });

  it('names the expected size when the byte count is wrong', () => {
    expect(() => toTensor(new Uint8Array(10), 1, 2, 3)).toThrow(/1x2x2x3 = 12 bytes, got 10/);
  });
});

describe('resizeBatch', () => {
  it('upsamples 28 -> 64 and keeps a constant image constant', () => {
    const y = resizeBatch(torch.full([2, 3, 28, 28], 0.25), 64);
    expect(y.shape).toEqual([2, 3, 64, 64]);
    expect(y.sub(0.25).abs().max().item()).toBeLessThan(1e-6);
  });

  it('antialiases when shrinking', () => {
    // Columns repeat 1, -1, -1, -1. Plain bilinear at 4x reduction reads columns 4i+1 and 4i+2
    // (both -1); an antialiased resize averages the pattern towards its mean, -0.5.
    const row = Array.from({ length: 64 }, (_, i) => (i % 4 === 0 ? 1 : -1));
    const x = torch.tensor(row, [1, 1, 1, 64]).expand([1, 1, 64, 64]).contiguous();
    const y = resizeBatch(x, 16).slice(3, 2, 14); // away from the border
    expect(y.mean().item()).toBeCloseTo(-0.5, 1);
  });

  it('returns a new tensor when the size already matches', () => {
    const x = torch.zeros([1, 3, 8, 8]);
    const y = resizeBatch(x, 8);
    expect(y).not.toBe(x);
    expect(y.shape).toEqual([1, 3, 8, 8]);
  });
});
