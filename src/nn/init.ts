// Weight initialization, PyTorch's defaults, drawn from one seeded generator so that the same
// seed builds the same model.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

let generator = new torch.Generator(0);

/** Reseeds the generator every layer constructor draws its initial weights from. */
export function seedInit(seed: number): void {
  generator = new torch.Generator(seed);
}

export function uniform(shape: number[], bound: number): Tensor {
  return torch.tidy(() => generator.uniform(shape, -bound, bound));
}

/** PyTorch's default for Conv2d and Linear: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function defaultWeight(shape: number[], fanIn: number): Tensor {
  return uniform(shape, 1 / Math.sqrt(fanIn));
}

/** kaiming_normal(mode='fan_out', nonlinearity='relu'), torchvision's ResNet convolution init. */
export function kaimingNormalFanOut(shape: number[], fanOut: number): Tensor {
  return torch.tidy(() => generator.normal(shape, 0, Math.sqrt(2 / fanOut)));
}
