// From decoded pixels to model input: uint8 NHWC -> float32 NCHW in [-1, 1], resized to the
// model's input size.
import * as torch from '../torch/index.js';

/** Pixels 0-255 become x / PIXEL_SCALE - 1, in [-1, 1]: every model's input (exported graphs normalize the same way). */
export const PIXEL_SCALE = 127.5;

/** `n` square uint8 images laid out NHWC, as a uint8 tensor of that shape (the length checked). */
export function pixelTensor(images: Uint8Array, n: number, size: number, channels: number): torch.Tensor {
  const expected = n * size * size * channels;
  if (images.length !== expected) {
    throw new RangeError(`uint8 images: expected ${n}x${size}x${size}x${channels} = ${expected} bytes, got ${images.length}`);
  }
  return torch.tensor(images, [n, size, size, channels], 'uint8');
}

/** uint8 NHWC pixels -> float32 NCHW with x / PIXEL_SCALE - 1. */
export function toInput(pixels: torch.Tensor): torch.Tensor {
  const [n, size, width, channels] = pixels.shape as [number, number, number, number];
  // One pass reorders and converts (copy from the permuted uint8 view into float32 NCHW), and
  // the scaling runs in place: a single batch-sized float allocation, which matters more than
  // the arithmetic (fresh memory is page-faulted in).
  return torch
    .empty([n, channels, size, width])
    .copyInPlace(pixels.permute([0, 3, 1, 2]))
    .divInPlace(PIXEL_SCALE)
    .addInPlace(-1);
}

/** Converts `n` square uint8 images laid out NHWC into a float32 NCHW tensor with x / PIXEL_SCALE - 1. */
export function toTensor(images: Uint8Array, n: number, size: number, channels: number): torch.Tensor {
  return torch.tidy(() => toInput(pixelTensor(images, n, size, channels)));
}

/**
 * A batch of stored uint8 NHWC pixels as model input: float32 NCHW in [-1, 1], resized to
 * size x size when stored at another size. Datasets stay uint8 (a quarter of float32's bytes)
 * until a batch is formed; resizing is per image, so a batch's values equal those of the whole
 * split resized at once.
 */
export function toModelInput(pixels: torch.Tensor, size: number): torch.Tensor {
  return torch.tidy(() => {
    const x = toInput(pixels);
    return pixels.shape[1] === size && pixels.shape[2] === size ? x : resizeBatch(x, size);
  });
}

/**
 * Bilinear resize of an NCHW batch to size x size (align_corners false), antialiased when
 * shrinking as torchvision's Resize is. Used when the file's size differs from the model's,
 * e.g. 28 -> 64. Always returns a new tensor.
 */
export function resizeBatch(x: torch.Tensor, size: number): torch.Tensor {
  if (x.ndim !== 4) throw new RangeError(`resizeBatch: expected an NCHW batch, got shape [${x.shape.join(', ')}]`);
  const [, , height, width] = x.shape as [number, number, number, number];
  if (height === size && width === size) return x.clone();
  const antialias = size < height || size < width;
  return torch.interpolate(x, [size, size], { mode: 'bilinear', alignCorners: false, antialias });
}
