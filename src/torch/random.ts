// Seeded random numbers. Each Generator is an independent libtorch CPU generator (the same
// Philox/MT stream PyTorch uses), so a seed gives the same numbers here as torch.Generator does.
import { native, type GeneratorHandle } from './native.js';
import { Tensor, type DType } from './tensor.js';

export class Generator {
  readonly handle: GeneratorHandle;
  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.handle = native.generator(seed);
  }
  /** Uniform on [low, high). */
  uniform(shape: number[], low = 0, high = 1, dtype: DType = 'float32'): Tensor {
    const u = new Tensor(native.rand(shape, this.handle, dtype));
    if (low === 0 && high === 1) return u;
    const scaled = u.mul(high - low).add(low);
    u.dispose();
    return scaled;
  }
  normal(shape: number[], mean = 0, std = 1, dtype: DType = 'float32'): Tensor {
    const z = new Tensor(native.randn(shape, this.handle, dtype));
    if (mean === 0 && std === 1) return z;
    const scaled = z.mul(std).add(mean);
    z.dispose();
    return scaled;
  }
  /** Integers on [low, high), int64. */
  randint(low: number, high: number, shape: number[]): Tensor {
    return new Tensor(native.randint(low, high, shape, this.handle));
  }
  randperm(n: number): Tensor {
    return new Tensor(native.randperm(n, this.handle));
  }
  /** Draws `samples` indices per row of non-negative `weights` (int64). */
  multinomial(weights: Tensor, samples: number, replacement = true): Tensor {
    return new Tensor(native.multinomial(weights.handle, samples, replacement, this.handle));
  }
  /** 1 with probability p (elementwise), else 0, in p's dtype. */
  bernoulli(p: Tensor): Tensor {
    return new Tensor(native.bernoulli(p.handle, this.handle));
  }
}

/** Seeds libtorch's global generator (used by dropout and weight initialization). */
export const manualSeed = (seed: number): void => native.manualSeed(seed);
