// Scratch tensors that applyAugment reuses between calls. Fresh memory is expensive here (each new
// block is page-faulted in, and then is not in cache), and glibc does not reliably hand a freed
// tensor block back for the next same-sized tensor in this process, so a batch that allocates
// its intermediates runs several times slower than one that reuses them.
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

/**
 * One set of scratch tensors, for the latest image shape and the largest batch seen with it (a
 * smaller batch, such as an epoch's last, uses its first rows): at batch 128 and 64x64, 28 MiB.
 * The tensors are kept (outside every tidy scope) until a new shape or a larger batch replaces them.
 */
export class ScratchCache {
  #key = '';
  #capacity = 0;
  #tensors: Scratch | undefined;

  /**
   * Scratch for a batch of n images of channels x height x width, uninitialized and reused by the
   * next call. Below the capacity these are views of the first n samples (each still contiguous
   * per sample and plane), made in the caller's tidy scope.
   */
  take(n: number, channels: number, height: number, width: number): Scratch {
    const key = [channels, height, width].join('x');
    if (this.#tensors === undefined || this.#key !== key || this.#capacity < n) {
      const old = this.#tensors;
      if (old) for (const t of [old.sorted, old.image, old.planes, old.grid]) t.dispose();
      this.#key = key;
      this.#capacity = n;
      this.#tensors = {
        sorted: torch.keep(torch.empty([n, channels, height, width])),
        image: torch.keep(torch.empty([n, channels, height, width])),
        planes: torch.keep(torch.empty([PLANES, n, 1, height, width])),
        grid: torch.keep(torch.empty([n, 2, height, width])),
      };
    }
    const all = this.#tensors;
    if (this.#capacity === n) return all;
    return {
      sorted: all.sorted.slice(0, 0, n),
      image: all.image.slice(0, 0, n),
      planes: all.planes.slice(1, 0, n),
      grid: all.grid.slice(0, 0, n),
    };
  }
}
