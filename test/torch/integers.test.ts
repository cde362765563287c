// Integer tensors with JavaScript numbers follow PyTorch's promotion of Python ints and floats:
// torch.arange(3) + 1 stays int64, torch.arange(3) + 0.5 becomes float32.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

describe('integer tensors and JavaScript numbers', () => {
  it('integral numbers keep the integer dtype', () =>
    torch.tidy(() => {
      const x = torch.arange(0, 3);
      for (const [result, values] of [
        [x.add(1), [1, 2, 3]],
        [x.sub(1), [-1, 0, 1]],
        [x.mul(2), [0, 2, 4]],
        [x.add(x, 2), [0, 3, 6]],
        [x.sub(x), [0, 0, 0]],
      ] as const) {
        expect(result.dtype).toBe('int64');
        expect(result.toArray()).toEqual(values);
      }
    }));

  it('fractional numbers promote to float32, and division is true division', () =>
    torch.tidy(() => {
      const x = torch.arange(0, 3);
      expect(x.add(0.5).dtype).toBe('float32');
      expect(x.add(0.5).toArray()).toEqual([0.5, 1.5, 2.5]);
      expect(x.div(2).toArray()).toEqual([0, 0.5, 1]);
    }));

  it('shapes and sizes must be integers', () => {
    expect(() => torch.zeros([2.5])).toThrow(TypeError);
    expect(() => torch.ones([4]).reshape([1.5, 4])).toThrow(TypeError);
    expect(() => torch.zeros([Number.NaN])).toThrow(TypeError);
  });
});
