// Loads a MedMNIST .npz file and checks it against the registry before anything trains on it:
// keys, dtypes, shapes, label range, split sizes and (optionally) the md5 of the file.
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { readRegularFileSync } from '../io/regular-file.js';
import { MAX_NPZ_BYTES, formatShape, parseNpz, type NpyArray } from './npz.js';
import { IMAGE_SIZES, SPLITS, getDataset, isImageSize, type DatasetInfo, type ImageSize, type Split } from './registry.js';

export interface SplitData {
  /** N x H x W x C uint8 (C = 1 for grey datasets, so N x H x W). */
  images: Uint8Array;
  /** One class id per image. */
  labels: Uint8Array;
  count: number;
}

export interface LoadedDataset extends Record<Split, SplitData> {
  /** Registry key, e.g. 'retinamnist'. */
  dataset: string;
  size: ImageSize;
  channels: 1 | 3;
  file: string;
  md5: string;
}

export interface LoadOptions {
  /** When given, a file with another md5 is refused before parsing. */
  expectedMd5?: string;
}

export function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

export function loadMedMNIST(file: string, datasetKey: string, options: LoadOptions = {}): LoadedDataset {
  const info = getDataset(datasetKey);
  const bytes = readRegularFileSync(file, MAX_NPZ_BYTES, 'the dataset file');
  const md5 = md5Hex(bytes);
  if (options.expectedMd5 !== undefined && md5 !== options.expectedMd5.toLowerCase()) {
    throw new UserError(
      `${file}: md5 mismatch: expected ${options.expectedMd5}, got ${md5} ` +
        '(the file is corrupt, incomplete or a different version: download it again)',
    );
  }

  const arrays = parseNpz(bytes, file);
  const where = (key: string) => `${file}, key '${key}'`;
  const size = checkImages(requireKey(arrays, 'train_images', file), info, where('train_images'));
  const splits = {} as Record<Split, SplitData>;
  for (const split of SPLITS) {
    const images = requireKey(arrays, `${split}_images`, file);
    checkImages(images, info, where(`${split}_images`), size);
    const count = images.shape[0]!;
    const labels = checkLabels(requireKey(arrays, `${split}_labels`, file), count, info, where(`${split}_labels`));
    splits[split] = { images: images.data as Uint8Array, labels, count };
  }
  for (const split of SPLITS) {
    const expected = info.splitSizes[split];
    if (splits[split].count !== expected) {
      throw new UserError(`${file}: split '${split}' has ${splits[split].count} images, expected ${expected} for ${info.title}`);
    }
  }
  return { dataset: info.key, size, channels: info.channels, file, md5, ...splits };
}

function requireKey(arrays: Map<string, NpyArray>, key: string, file: string): NpyArray {
  const array = arrays.get(key);
  if (!array) {
    const expected = SPLITS.flatMap((s) => [`${s}_images`, `${s}_labels`]).join(', ');
    const found = [...arrays.keys()].join(', ') || 'none';
    throw new UserError(`${file}: missing key '${key}' (expected ${expected}; found ${found})`);
  }
  return array;
}

/** Checks dtype and shape, and that S matches `sizeOfTrain` when given; returns the side length S. */
function checkImages(array: NpyArray, info: DatasetInfo, where: string, sizeOfTrain?: ImageSize): ImageSize {
  const { shape, dtype } = array;
  const side = shape[1]!;
  const rankOk = info.channels === 3 ? shape.length === 4 && shape[3] === 3 : shape.length === 3;
  if (dtype !== 'uint8' || !rankOk || shape[2] !== side) {
    const expected = info.channels === 3 ? '(N, S, S, 3)' : '(N, S, S)';
    throw new UserError(`${where}: expected ${expected} uint8 images for ${info.title}, found ${formatShape(shape)} ${dtype}`);
  }
  if (!isImageSize(side)) {
    const sizes = IMAGE_SIZES.join(', ');
    throw new UserError(`${where}: image size ${side}x${side} is not a MedMNIST size (expected ${sizes})`);
  }
  if (sizeOfTrain !== undefined && side !== sizeOfTrain) {
    throw new UserError(`${where}: expected ${sizeOfTrain}x${sizeOfTrain} images like train_images, found ${side}x${side}`);
  }
  return side;
}

function checkLabels(array: NpyArray, count: number, info: DatasetInfo, where: string): Uint8Array {
  const { shape, dtype } = array;
  const integer = dtype.startsWith('int') || dtype.startsWith('uint');
  if (!integer || shape.length !== 2 || shape[0] !== count || shape[1] !== 1) {
    throw new UserError(`${where}: expected (${count}, 1) integer labels (one per image), found ${formatShape(shape)} ${dtype}`);
  }
  const classes = info.labels.length;
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = Number(array.data[i]);
    if (label < 0 || label >= classes) {
      throw new UserError(`${where}: label ${label} at index ${i} is out of range (expected 0..${classes - 1} for ${info.title})`);
    }
    labels[i] = label;
  }
  return labels;
}

export interface SplitCard {
  count: number;
  /** Images per class id. */
  classCounts: number[];
  /** Per channel, pixel values scaled to 0..1; std is the population std (numpy's default). */
  channelMean: number[];
  channelStd: number[];
}

export interface DatasetCard {
  dataset: string;
  title: string;
  task: DatasetInfo['task'];
  classNames: readonly string[];
  size: ImageSize;
  channels: 1 | 3;
  file: string;
  md5: string;
  licence: string;
  citations: readonly string[];
  splits: Record<Split, SplitCard>;
}

/** Summary of a loaded dataset for the `info` command and model cards. */
export function datasetCard(loaded: LoadedDataset): DatasetCard {
  const info = getDataset(loaded.dataset);
  const splits = {} as Record<Split, SplitCard>;
  for (const split of SPLITS) {
    splits[split] = splitCard(loaded[split], info.labels.length, loaded.channels);
  }
  return {
    dataset: info.key,
    title: info.title,
    task: info.task,
    classNames: info.labels,
    size: loaded.size,
    channels: loaded.channels,
    file: loaded.file,
    md5: loaded.md5,
    licence: info.licence,
    citations: info.citations,
    splits,
  };
}

function splitCard({ images, labels, count }: SplitData, classes: number, channels: number): SplitCard {
  const classCounts = new Array<number>(classes).fill(0);
  for (const label of labels) classCounts[label]!++;
  const sum = new Float64Array(channels);
  const sumSquares = new Float64Array(channels);
  for (let i = 0; i < images.length; i++) {
    const v = images[i]!;
    sum[i % channels]! += v;
    sumSquares[i % channels]! += v * v;
  }
  const perChannel = images.length / channels;
  const channelMean = [...sum].map((s) => s / perChannel / 255);
  // Var = E[x^2] - E[x]^2, clamped at 0 against rounding.
  const channelStd = [...sumSquares].map((s, c) => Math.sqrt(Math.max(0, s / perChannel / 255 ** 2 - channelMean[c]! ** 2)));
  return { count, classCounts, channelMean, channelStd };
}
