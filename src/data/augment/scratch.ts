// The intermediates of one applyAugment call, made together in its tidy scope and written in
// place by colour jitter and the warp. They are freed when the call returns, before the forward
// pass: large ones go back to the binding's block cache (native/src/cpu_allocator.cc), which hands
// them to the next step's augmentation or to the model's activations. Kept from one call to the
// next, they stayed live through every forward and backward pass (117 MiB at batch 128 and
// 128x128, beside activations that peak at about 1.1 GiB).
import * as torch from '../../torch/index.js';

/** Per-pixel temporaries of colour jitter: the six of shiftHue (a blend stage uses the first). */
const PLANES = 6;

/** The scratch tensors of one batch of n samples. */
export interface Scratch {
  /** [n, C, H, W]: the batch sorted into hue groups, during colour jitter. */
  readonly sorted: torch.Tensor;
  /** [n, C, H, W]: the jittered batch in the original order, the warp's input. */
  readonly image: torch.Tensor;
  /** [PLANES, n, 1, H, W]: per-pixel temporaries of colour jitter, one contiguous plane each. */
  readonly planes: torch.Tensor;
  /** [n, 2, H, W]: the sampling grid, planar (see samplingGrid in geometry.ts). */
  readonly grid: torch.Tensor;
}

/** Uninitialized scratch for a batch of n images of channels x height x width, in the caller's tidy scope. */
export function takeScratch(n: number, channels: number, height: number, width: number): Scratch {
  return {
    sorted: torch.empty([n, channels, height, width]),
    image: torch.empty([n, channels, height, width]),
    planes: torch.empty([PLANES, n, 1, height, width]),
    grid: torch.empty([n, 2, height, width]),
  };
}
