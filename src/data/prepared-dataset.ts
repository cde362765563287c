// A prepared dataset (written by `retinagrade prepare`): dataset.json describes it, and each split
// is a pair of .npy files, N x S x S x 3 uint8 images and N uint8 grades. Images are never loaded
// whole: a split is read a batch of rows at a time (NpyRowReader), so memory does not grow with
// the number of photographs.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { MAX_JSON_BYTES, readRegularFileSync } from '../io/regular-file.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { GRADE_NAMES, NUM_GRADES } from './grades.js';
import { NPY_HEADER_BYTES, NpyRowReader, parseNpyHeader } from './npy.js';
import { pixelTensor, toModelInput } from './preprocess.js';
import { SPLITS, type Split } from './registry.js';

export const DATASET_FILE = 'dataset.json';

/** The smallest side `prepare` stores and a model on a prepared dataset trains at. */
export const MIN_PREPARED_SIZE = 8;
/** What `train --data` trains at unless told: the RetinaMNIST datasheet's 64x64. */
export const PREPARED_TRAINING_SIZE = 64;
export const DATASET_FORMAT = 'retinagrade-prepared-1';
export const imagesFile = (split: Split): string => `${split}_images.npy`;
export const labelsFile = (split: Split): string => `${split}_labels.npy`;

const SkipSchema = z.object({ input: z.string(), reason: z.string() });

const SplitCardSchema = z.object({
  count: z.number().int().min(0),
  per_grade: z.array(z.number().int().min(0)).length(NUM_GRADES),
  images: z.string(),
  labels: z.string(),
  images_md5: z.string(),
  labels_md5: z.string(),
  /** The source photographs of the split's rows, in row order (for an npz source: its indices). */
  sources: z.array(z.string()),
});

/** How a prepared dataset's photographs and grades were found. */
export const SOURCE_LAYOUTS = ['labels-csv', 'labels-excel', 'grade-folders', 'medmnist-npz'] as const;
export type SourceLayout = (typeof SOURCE_LAYOUTS)[number];

/** What a prepared dataset's images went through: compared by `evaluate --data` with a run's training data. */
export const PreprocessingSchema = z.object({
  /** 'retina-disc': cropped to the disc found in each photograph (src/data/fundus.ts); 'medmnist': as MedMNIST published them. */
  crop: z.enum(['retina-disc', 'medmnist']),
  resize: z.string(),
  decode: z.string(),
});
export type Preprocessing = z.infer<typeof PreprocessingSchema>;

export const DatasetJsonSchema = z.object({
  format: z.literal(DATASET_FORMAT),
  name: z.string(),
  /** What was prepared, as given: compared on a re-run to resume or refuse. */
  request: z.record(z.string(), z.unknown()),
  source: z.object({
    layout: z.enum(SOURCE_LAYOUTS),
    columns: z.record(z.string(), z.string()).optional(),
    groups: z.enum(['column', 'eyepacs-names', 'none']),
  }),
  grades: z.array(z.string()).length(NUM_GRADES),
  size: z.number().int().positive(),
  channels: z.literal(3),
  preprocessing: PreprocessingSchema,
  splits: z.object({ train: SplitCardSchema, val: SplitCardSchema, test: SplitCardSchema }),
  skipped: z.array(SkipSchema),
  disclaimer: z.string(),
});
export type DatasetJson = z.infer<typeof DatasetJsonSchema>;
export type SplitCard = z.infer<typeof SplitCardSchema>;

/** Reads and checks dataset.json; anything wrong names the file and what was expected. */
export function readDatasetJson(dir: string): DatasetJson {
  const file = join(dir, DATASET_FILE);
  let text: string;
  try {
    text = readRegularFileSync(file, MAX_JSON_BYTES, 'a prepared dataset card').toString('utf8');
  } catch (error) {
    throw new UserError(`${dir} is not a prepared dataset: ${(error as Error).message}; make one with retinagrade prepare`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  const result = DatasetJsonSchema.safeParse(parsed);
  if (!result.success) throw new UserError(`${file}: not a prepared dataset card:\n${z.prettifyError(result.error)}`);
  if (result.data.grades.join('|') !== GRADE_NAMES.join('|')) {
    throw new UserError(`${file}: grades ${result.data.grades.join(', ')} differ from this program's (${GRADE_NAMES.join(', ')})`);
  }
  return result.data;
}

/** The default input size for training on a dataset stored at `storedSize`: 64, or the stored size when smaller. */
export const defaultTrainingSize = (storedSize: number): number => Math.min(PREPARED_TRAINING_SIZE, storedSize);

/**
 * Training reads a prepared dataset at its stored size or smaller: upsampling it would only blur
 * what the photographs held (evaluating a model of another size on it still resizes either way).
 */
export function checkTrainingSize(dir: string, storedSize: number, size: number): void {
  if (size <= storedSize) return;
  throw new UserError(
    `--size ${size} is larger than the ${storedSize}x${storedSize} images ${dir} was prepared at: ` +
      `train at --size ${storedSize} or less, or prepare the photographs again with --size ${size}`,
  );
}

/** md5 of a file, read in chunks (array files can be larger than memory). */
export function md5OfFile(file: string): string {
  const hash = createHash('md5');
  const chunk = Buffer.alloc(8 << 20);
  const fd = openSync(file, 'r');
  try {
    for (let got = readSync(fd, chunk); got > 0; got = readSync(fd, chunk)) hash.update(chunk.subarray(0, got));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** One split read by rows: what the training loop and evaluation ask of a prepared dataset. */
export interface RowSource {
  count: number;
  labels: Uint8Array;
  /** Rows `indices` as float32 NCHW in [-1, 1] at the model's input size. */
  read(indices: ArrayLike<number>): Tensor;
  close(): void;
}

function readLabels(file: string, count: number): Uint8Array {
  const bytes = readRegularFileSync(file, NPY_HEADER_BYTES + count, 'the grades of a prepared split (.npy)');
  const header = parseNpyHeader(bytes, file);
  const labels = new Uint8Array(bytes.subarray(header.offset));
  if (header.shape.join(',') !== String(count) || labels.length !== count || labels.some((g) => g >= NUM_GRADES)) {
    throw new UserError(`${file}: expected ${count} grades in 0-${NUM_GRADES - 1}, found shape (${header.shape.join(', ')})`);
  }
  return labels;
}

/** A split's rows through a reused buffer, resized (bilinear, antialiased when shrinking) to `size`. */
export function openSplit(dir: string, card: SplitCard, datasetSize: number, size: number): RowSource {
  const images = new NpyRowReader(join(dir, card.images));
  const expected = [card.count, datasetSize, datasetSize, 3];
  if (images.shape.join(',') !== expected.join(',')) {
    images.close();
    throw new UserError(`${images.file}: shape (${images.shape.join(', ')}), expected (${expected.join(', ')}) as ${DATASET_FILE} says`);
  }
  let labels: Uint8Array;
  try {
    labels = readLabels(join(dir, card.labels), card.count);
  } catch (error) {
    images.close();
    throw error;
  }
  return {
    count: card.count,
    labels,
    read(indices) {
      return torch.tidy(() => toModelInput(pixelTensor(images.read(indices), indices.length, datasetSize, 3), size));
    },
    close: () => images.close(),
  };
}

export interface PreparedSplits {
  card: DatasetJson;
  train: RowSource;
  val: RowSource;
  test: RowSource;
}

/** Opens every split of the prepared dataset in `dir` for reading at the model's input `size`. */
export function openPreparedDataset(dir: string, size: number): PreparedSplits {
  const card = readDatasetJson(dir);
  const opened: RowSource[] = [];
  try {
    for (const split of SPLITS) opened.push(openSplit(dir, card.splits[split], card.size, size));
  } catch (error) {
    for (const source of opened) source.close();
    throw error;
  }
  const [train, val, test] = opened as [RowSource, RowSource, RowSource];
  return { card, train, val, test };
}
