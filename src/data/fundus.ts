// Real fundus photographs -> the square RGB input the models see: decode safely, find the retina
// disc (a bright disc on a dark background), crop a square around it, resize.
// MedMNIST's own images were centre-cropped and resized; cropping to the disc first makes photos
// from other cameras and framings look more like them.
import sharp, { type Metadata } from 'sharp';
import { UserError } from '../errors.js';
import { readRegularFile } from '../io/regular-file.js';
import { locateDisc } from './disc.js';

/** A path, or bytes with a name for messages (e.g. an uploaded file). */
export type ImageInput = string | { name: string; bytes: Uint8Array };

/** Refuse anything larger: a decompression bomb, or far more pixels than grading needs. */
export const MAX_INPUT_PIXELS = 50_000_000;
/** The largest image file read or uploaded: a MAX_INPUT_PIXELS photograph as an uncompressed 8-bit RGB TIFF fits. */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;

const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'tiff', 'webp']);

export interface DecodedImage {
  /** Height x width x 3 RGB, EXIF orientation applied, alpha flattened onto black. */
  rgb: Uint8Array;
  width: number;
  height: number;
  format: string;
}

export interface Disc {
  /** Centre and radius in pixels of the decoded (oriented) image. */
  cx: number;
  cy: number;
  radius: number;
}

export interface FundusImage {
  /** size x size x 3 RGB. */
  pixels: Uint8Array;
  size: number;
  warnings: string[];
  disc: Disc | null;
}

export const NOT_FUNDUS_WARNING = 'does not look like a fundus photograph (no dark border around a bright disc found); used a centre crop';

/** An image's format and size, from its header (readHeader). */
export interface ImageHeader {
  format: string;
  width: number;
  height: number;
}

/** Decodes an image; `header`, when given, is its readHeader result (read already, the size check passed). */
export async function decodeImage(input: ImageInput, header?: ImageHeader): Promise<DecodedImage> {
  const { name, bytes } = await readInput(input);
  const { format } = header ?? (await readHeader({ name, bytes }));
  try {
    const decoder = sharp(bytes, { failOn: 'warning', limitInputPixels: MAX_INPUT_PIXELS, autoOrient: true });
    const { data, info } = await decoder
      .flatten({ background: '#000000' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rgb = new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { rgb, width: info.width, height: info.height, format };
  } catch (error) {
    throw new UserError(`${name}: truncated or corrupt image data (${(error as Error).message})`);
  }
}

/**
 * An image's format and size from its header alone (safe before the size check): a UserError names
 * what is wrong with an empty, unreadable, unsupported or oversized image.
 */
export async function readHeader({ name, bytes }: Exclude<ImageInput, string>): Promise<ImageHeader> {
  const expected = 'expected a PNG, JPEG, TIFF or WebP image';
  if (bytes.length === 0) throw new UserError(`${name}: empty file (${expected})`);
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new UserError(`${name}: not a readable image (${(error as Error).message}); ${expected}`);
  }
  if (!SUPPORTED_FORMATS.has(metadata.format)) {
    throw new UserError(`${name}: unsupported image format '${metadata.format}' (${expected})`);
  }
  const { width, height } = metadata;
  if (width * height > MAX_INPUT_PIXELS) {
    throw new UserError(
      `${name}: ${width}x${height} is ${((width * height) / 1e6).toFixed(0)} megapixels, over the ` +
        `${MAX_INPUT_PIXELS / 1e6} megapixel limit (refused as a possible decompression bomb; downscale it first)`,
    );
  }
  return { format: metadata.format, width, height };
}

async function readInput(input: ImageInput): Promise<{ name: string; bytes: Uint8Array }> {
  if (typeof input !== 'string') return input;
  return { name: input, bytes: await readRegularFile(input, MAX_IMAGE_FILE_BYTES, 'the image') };
}

/** Longest side of the downscaled copy the disc is searched on (the page's in-browser grading uses the same). */
export const ANALYSIS_SIZE = 256;

/**
 * How a photograph becomes the model's square input: `disc` crops a square around the retina disc
 * (real photographs); `none` takes a square image as it is (e.g. a MedMNIST image exported to PNG).
 */
export type CropMode = 'disc' | 'none';

/**
 * A photograph as side x side x 3 RGB, ready to become the model's input: cropped to the disc and
 * resized to the model's size with `disc`; as decoded with `none` (the model's resize comes after,
 * the way training resizes the dataset's images).
 */
export interface SquarePixels {
  rgb: Uint8Array;
  side: number;
  /** Every warning says the disc was not found (a reason to refuse). */
  warnings: string[];
}

/**
 * Decodes and crops a photograph for a model of input `size` (no libtorch: runs in any thread);
 * `header` as decodeImage takes it.
 */
export async function squarePixels(input: ImageInput, size: number, crop: CropMode, header?: ImageHeader): Promise<SquarePixels> {
  if (crop === 'disc') {
    const fundus = await preprocessFundus(input, size, header);
    return { rgb: fundus.pixels, side: size, warnings: fundus.warnings };
  }
  const image = await decodeImage(input, header);
  if (image.width !== image.height) {
    const name = typeof input === 'string' ? input : input.name;
    throw new UserError(`${name}: crop 'none' needs a square image, got ${image.width}x${image.height}`);
  }
  return { rgb: image.rgb, side: image.width, warnings: [] };
}

/** The retina disc (`locateDisc`) on a copy downscaled to at most ANALYSIS_SIZE, in the image's own pixels. */
export async function findDisc(image: DecodedImage): Promise<Disc | null> {
  const scale = Math.min(1, ANALYSIS_SIZE / Math.max(image.width, image.height));
  const w = Math.max(1, Math.round(image.width * scale));
  const h = Math.max(1, Math.round(image.height * scale));
  // An image already small enough is searched as it is (resizing to its own size changes no pixel).
  const small =
    scale === 1
      ? image.rgb
      : await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
          .resize(w, h, { fit: 'fill', kernel: 'linear' })
          .raw()
          .toBuffer();
  const found = locateDisc(small, w, h, 3);
  if (!found) return null;
  const sx = image.width / w;
  const sy = image.height / h;
  return { cx: found.cx * sx, cy: found.cy * sy, radius: found.radius * Math.max(sx, sy) };
}

/**
 * Decodes a fundus photograph and returns it as size x size RGB: a square around the retina
 * disc (padded with black where the disc runs past the image edge), or a centre crop with a
 * warning when no disc is found.
 */
export async function preprocessFundus(input: ImageInput, size: number, header?: ImageHeader): Promise<FundusImage> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`preprocessFundus: size must be a positive integer, got ${size}`);
  }
  const image = await decodeImage(input, header);
  const disc = await findDisc(image);
  const warnings: string[] = [];
  let square: { left: number; top: number; side: number };
  if (disc) {
    const side = Math.max(1, Math.round(2 * disc.radius));
    square = { left: Math.round(disc.cx - side / 2), top: Math.round(disc.cy - side / 2), side };
    if (isDiscCrop(image, square)) square = { left: 0, top: 0, side: image.width };
  } else {
    warnings.push(NOT_FUNDUS_WARNING);
    const side = Math.min(image.width, image.height);
    square = { left: Math.floor((image.width - side) / 2), top: Math.floor((image.height - side) / 2), side };
  }
  const cropped = cropSquare(image, square.left, square.top, square.side);
  const pixels = await sharp(cropped, { raw: { width: square.side, height: square.side, channels: 3 } })
    .resize(size, size, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return { pixels: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length), size, warnings, disc };
}

/**
 * A square image whose disc square covers it this much (intersection over union) is already a
 * crop to the disc (e.g. a MedMNIST image): it is used whole, so that cropping it again changes
 * nothing, rather than shifted or rescaled by a pixel of disc-finding error.
 */
const DISC_CROP_OVERLAP = 0.8;

function isDiscCrop(image: DecodedImage, square: { left: number; top: number; side: number }): boolean {
  if (image.width !== image.height) return false;
  const overlap = (start: number) => Math.max(0, Math.min(image.width, start + square.side) - Math.max(0, start));
  const intersection = overlap(square.left) * overlap(square.top);
  const union = image.width * image.height + square.side * square.side - intersection;
  return intersection / union >= DISC_CROP_OVERLAP;
}

/** The side x side square at (left, top); parts outside the image are black. */
function cropSquare(image: DecodedImage, left: number, top: number, side: number): Uint8Array {
  const out = new Uint8Array(side * side * 3);
  const x0 = Math.max(0, left);
  const x1 = Math.min(image.width, left + side);
  if (x1 <= x0) return out;
  for (let y = Math.max(0, top); y < Math.min(image.height, top + side); y++) {
    const from = (y * image.width + x0) * 3;
    out.set(image.rgb.subarray(from, from + (x1 - x0) * 3), ((y - top) * side + (x0 - left)) * 3);
  }
  return out;
}
