// Bad calls become JavaScript exceptions carrying libtorch's message, never a crash: the process
// keeps working after each of them.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { native } from '../../src/torch/native.js';

const long = (...values: number[]): torch.Tensor => torch.tensor(BigInt64Array.from(values, BigInt));

describe('libtorch errors surface as Error with its message', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'matmul shape mismatch',
      () => torch.ones([2, 3]).matmul(torch.ones([4, 5])),
      /mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)/,
    ],
    [
      'conv2d channel mismatch',
      () => torch.conv2d(torch.ones([1, 4, 5, 5]), torch.ones([2, 3, 3, 3])),
      /expected input\[1, 4, 5, 5\] to have 3 channels, but got 4 channels instead/,
    ],
    [
      'conv2d kernel larger than input',
      () => torch.conv2d(torch.ones([1, 3, 2, 2]), torch.ones([2, 3, 3, 3])),
      /Kernel size can't be greater than actual input size/,
    ],
    [
      'cat size mismatch',
      () => torch.cat([torch.ones([2, 3]), torch.ones([2, 4])], 0),
      /Sizes of tensors must match except in dimension 0/,
    ],
    [
      'matmul float32 with float64',
      () => torch.ones([2, 2]).matmul(torch.ones([2, 2], 'float64')),
      /expected scalar type Float but found Double/,
    ],
    ['float index', () => torch.ones([3]).indexSelect(0, torch.ones([1])), /Expected dtype int32 or int64 for index/],
    [
      'non-bool condition',
      () => torch.where(torch.ones([2]), torch.ones([2]), torch.zeros([2])),
      /where expected condition to be a boolean tensor/,
    ],
    ['dim out of range', () => torch.ones([2, 3]).softmax(2), /Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)/],
    ['reduction dim out of range', () => torch.ones([2, 3]).sum([5]), /Dimension out of range/],
    ['index out of range', () => torch.ones([3]).indexSelect(0, long(5)), /index out of range in self/],
    [
      'gather index out of bounds',
      () => torch.ones([2, 3]).gather(1, long(0, 3).reshape([2, 1])),
      /index 3 is out of bounds for dimension 1 with size 3/,
    ],
    ['item of many elements', () => torch.ones([2]).item(), /a Tensor with 2 elements cannot be converted to Scalar/],
    [
      'grad of an integer tensor',
      () => (torch.arange(0, 2).requiresGrad = true),
      /Only Tensors of floating point and complex dtype can require gradients/,
    ],
    [
      'backward of a non-scalar',
      () => {
        const x = torch.ones([2]);
        x.requiresGrad = true;
        x.mul(2).backward();
      },
      /grad can be implicitly created only for scalar outputs/,
    ],
    [
      'in-place update of a leaf that requires grad, outside noGrad',
      () => {
        const x = torch.ones([2]);
        x.requiresGrad = true;
        x.addInPlace(1);
      },
      /a leaf Variable that requires grad is being used in an in-place operation/,
    ],
  ];
  it.each(cases)('%s', (_name, call, message) =>
    torch.tidy(() => {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
      expect(
        torch
          .ones([2])
          .add(torch.ones([2]))
          .toArray(),
      ).toEqual([2, 2]); // still alive
    }),
  );
});

describe('wrong JavaScript arguments throw TypeError naming the argument', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['a string for a tensor', () => torch.ones([2]).add('a' as never), /argument 1: expected a Tensor/],
    ['a string for a shape', () => torch.ones([2]).reshape('a' as never), /argument 1: expected an array of integers/],
    ['an unknown dtype', () => torch.zeros([2], 'float16' as never), /unknown dtype 'float16'/],
    ['a string for a dim', () => torch.ones([2]).softmax('1' as never), /argument 1: expected a number/],
    ['a fractional dim', () => torch.ones([2]).softmax(0.5), /argument 1: expected an integer/],
    ['an object for data', () => torch.tensor({} as never, [1]), /argument 0: expected a TypedArray/],
    [
      'a bad interpolate mode',
      () => torch.interpolate(torch.ones([1, 1, 2, 2]), [3, 3], { mode: 'bicubic' as never }),
      /mode must be bilinear or nearest/,
    ],
    ['a list with a non-tensor', () => torch.cat([torch.ones([1]), 3 as never]), /expected an array of Tensors/],
  ];
  it.each(cases)('%s', (_name, call, message) =>
    torch.tidy(() => {
      expect(call).toThrow(TypeError);
      expect(call).toThrow(message);
    }),
  );

  it('data that does not fit the shape is a RangeError', () => {
    expect(() => torch.tensor([1, 2, 3], [2, 2])).toThrow(new RangeError('data has 3 elements but shape needs 4'));
    // 2^62 * 4 wraps to 0 in int64, which an empty array would have matched.
    expect(() => torch.tensor(new Float32Array(0), [2 ** 62, 4])).toThrow(
      new RangeError('shape [4611686018427387904, 4] has more than 2^63 - 1 elements'),
    );
  });
});

describe('disposed tensors', () => {
  it('throw when used, as receiver or as argument, in the TypeScript layer and in the binding', () => {
    const t = torch.ones([2]);
    const handle = t.handle;
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.add(1)).toThrow('tensor was already disposed');
    expect(() => t.shape).toThrow('tensor was already disposed');
    torch.tidy(() => {
      expect(() => torch.ones([2]).add(t)).toThrow('tensor was already disposed');
    });
    // A stale handle that reaches the binding directly is rejected there too.
    expect(() => native.add(handle, 1)).toThrow('argument 0: tensor was already disposed');
    expect(() => native.cat([handle], 0)).toThrow('a tensor in the list was already disposed');
    t.dispose(); // disposing twice is harmless
  });
});
