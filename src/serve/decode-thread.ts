// The decoding thread beside each prediction thread: photographs are decoded, their disc found and
// cropped here (sharp and JavaScript, no libtorch). The prediction thread's time then goes to
// forward passes, and the photographs that arrive during one are ready together for the next (one
// batch) instead of each waiting for that thread between its decoding steps.
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { squarePixels, type CropMode, type ImageHeader, type SquarePixels } from '../data/fundus.js';
import { UserError } from '../errors.js';

export interface DecodeRequest {
  id: number;
  /** With the header the prediction thread read (the size check passed). */
  images: { name: string; bytes: Uint8Array; header: ImageHeader }[];
  crop: CropMode;
  /** The model's input size. */
  size: number;
}
/** Per image its pixels, or why it cannot be read (a UserError's message); `error`: anything else went wrong. */
export type DecodeReply =
  | { id: number; photos: ({ file: string; pixels: SquarePixels } | { file: string; unreadable: string })[] }
  | { id: number; error: string };

// libvips' operation cache keeps recent pipelines and their results for reuse: a server never sees
// the same photograph's pixels twice, so it would only cost memory and lookups.
sharp.cache(false);

const port = parentPort!;
port.on('message', async ({ id, images, crop, size }: DecodeRequest) => {
  try {
    const photos: Extract<DecodeReply, { photos: unknown }>['photos'] = [];
    for (const image of images) {
      try {
        photos.push({ file: image.name, pixels: await squarePixels(image, size, crop, image.header) });
      } catch (error) {
        if (!(error instanceof UserError)) throw error;
        photos.push({ file: image.name, unreadable: error.message });
      }
    }
    port.postMessage({ id, photos } satisfies DecodeReply);
  } catch (error) {
    port.postMessage({ id, error: (error as Error).message } satisfies DecodeReply);
  }
});
