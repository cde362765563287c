// maxPool2d pools a batch of several images channels-last (native/src/binding.cc: libtorch 1.13's
// kernel is several times faster that way) and, under autograd, scatters the gradient through the
// argmax indices itself. Both must give exactly what libtorch's own kernel gives, which is what
// pooling one image at a time runs: the same values, the same winner among equal values (ReLU's
// zeros tie often), the same gradients.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const CASES = [
  { shape: [4, 8, 12, 12], kernel: 2, options: {} },
  { shape: [3, 5, 7, 9], kernel: 3, options: { stride: 2, padding: 1 } },
  { shape: [2, 3, 11, 10], kernel: 2, options: { stride: 2, dilation: 2, ceilMode: true } },
];

/** Values with many ties: ReLU of normals rounded to a tenth. */
function tiedInput(gen: torch.Generator, shape: number[]): torch.Tensor {
  return gen.normal(shape, 0, 1).relu().mul(10).round().div(10);
}

describe('maxPool2d on a batch', () => {
  for (const { shape, kernel, options } of CASES) {
    it(`equals pooling image by image, values and gradients (${shape.join('x')}, kernel ${kernel}, ${JSON.stringify(options)})`, () =>
      torch.tidy(() => {
        const gen = new torch.Generator(7);
        const x = tiedInput(gen, shape);
        const pool = (t: torch.Tensor): torch.Tensor => torch.maxPool2d(t, kernel, options);

        const batched = x.clone();
        batched.requiresGrad = true;
        const out = pool(batched);
        const projection = gen.normal(out.shape, 0, 1);
        out.mul(projection).sum().backward();

        const images = Array.from({ length: shape[0]! }, (_, i) => {
          const image = x.slice(0, i, i + 1).clone();
          image.requiresGrad = true;
          const pooled = pool(image);
          pooled
            .mul(projection.slice(0, i, i + 1))
            .sum()
            .backward();
          return { pooled, grad: image.grad! };
        });
        expect(out.toArray()).toEqual(
          torch
            .cat(
              images.map((image) => image.pooled.detach()),
              0,
            )
            .toArray(),
        );
        expect(batched.grad!.toArray()).toEqual(
          torch
            .cat(
              images.map((image) => image.grad),
              0,
            )
            .toArray(),
        );
        // Without autograd, the same values.
        expect(torch.noGrad(() => pool(x)).toArray()).toEqual(out.toArray());
      }));
  }
});
