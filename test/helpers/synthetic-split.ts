// A split of random images, as loadRetinaTensors holds a real one: uint8 pixels, int64 grades.
import { NUM_GRADES } from '../../src/data/grades.js';
import type { SplitTensors } from '../../src/data/retinamnist.js';
import * as torch from '../../src/torch/index.js';

/** n random 28x28 RGB images from `generator`, with `labels` or grades cycling through 0-4. */
export function syntheticSplit(
  generator: torch.Generator,
  n: number,
  labels = Uint8Array.from({ length: n }, (_, i) => i % NUM_GRADES),
): SplitTensors {
  return {
    pixels: torch.tidy(() => generator.randint(0, 256, [n, 28, 28, 3]).to('uint8')),
    size: 28,
    y: torch.tensor(labels, [n], 'int64'),
    labels,
    count: n,
  };
}
