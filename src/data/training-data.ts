// What training and evaluation read: three splits, each either whole tensors in memory
// (RetinaMNIST, `retinamnist.ts`) or rows read a batch at a time from a prepared dataset's arrays
// (`prepared-dataset.ts`). The loop asks only for a batch of rows by index or by range.
import { join } from 'node:path';
import { UserError } from '../errors.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { toModelInput } from './preprocess.js';
import { DATASET_FILE, md5OfFile, openPreparedDataset, type Preprocessing, type RowSource } from './prepared-dataset.js';
import type { DataSource, SplitTensors } from './retinamnist.js';

export type SplitSource = SplitTensors | RowSource;

export interface TrainingData {
  train: SplitSource;
  val: SplitSource;
  test: SplitSource;
  source: DataSource;
}

const inMemory = (split: SplitSource): split is SplitTensors => 'pixels' in split;

/** Images and grades of rows `indices`: float32 NCHW in [-1, 1] at the model's size, and int64. */
export function takeBatch(split: SplitSource, indices: Int32Array | number[]): { x: Tensor; y: Tensor } {
  if (inMemory(split)) {
    const index = torch.tensor(indices, [indices.length], 'int64');
    return { x: toModelInput(split.pixels.indexSelect(0, index), split.size), y: split.y.indexSelect(0, index) };
  }
  const grades = Array.from(indices, (i) => split.labels[i]!);
  return { x: split.read(indices), y: torch.tensor(grades, [indices.length], 'int64') };
}

/** Images of rows start..end-1. */
export function takeRange(split: SplitSource, start: number, end: number): Tensor {
  if (inMemory(split)) return toModelInput(split.pixels.slice(0, start, end), split.size);
  return split.read(Array.from({ length: end - start }, (_, k) => start + k));
}

/**
 * A prepared dataset at the model's input size `size` (resized per batch when the stored size
 * differs). A validation or test split may lack grades (its figures are then over the grades it
 * has, `model/split-figures.ts`), but needs two: AUC compares a grade with the others.
 */
export function loadPreparedData(dir: string, size: number): TrainingData {
  const { card, train, val, test } = openPreparedDataset(dir, size);
  for (const split of ['val', 'test'] as const) {
    const present = card.splits[split].per_grade.flatMap((n, grade) => (n > 0 ? [grade] : []));
    if (present.length < 2) {
      for (const source of [train, val, test]) source.close();
      const holds = present.length === 0 ? 'no photographs' : `photographs of grade ${present[0]} only`;
      throw new UserError(
        `${join(dir, DATASET_FILE)}: the ${split} split has ${holds}, ` +
          'so no AUC can be computed on it: prepare it again with a larger --val/--test, or with more photographs',
      );
    }
  }
  const preprocessing: Preprocessing = card.preprocessing;
  return {
    train,
    val,
    test,
    source: {
      file: join(dir, DATASET_FILE),
      md5: md5OfFile(join(dir, DATASET_FILE)),
      size: card.size,
      upsampled_from: card.size < size ? card.size : null,
      prepared: { name: card.name, layout: card.source.layout, preprocessing },
    },
  };
}

/** Frees the tensors or closes the files behind every split. */
export function releaseTrainingData(data: TrainingData): void {
  for (const split of [data.train, data.val, data.test]) {
    if (!inMemory(split)) split.close();
    else for (const tensor of [split.pixels, split.y]) tensor.dispose();
  }
}

/** The splits one after another as one source (`evaluate --split all`); closing it closes nothing (the parts belong to their data). */
export function concatSplits(splits: readonly SplitSource[]): RowSource {
  const starts = splits.map((_, k) => splits.slice(0, k).reduce((sum, s) => sum + s.count, 0));
  const count = splits.reduce((sum, s) => sum + s.count, 0);
  const labels = new Uint8Array(count);
  splits.forEach((s, k) => labels.set(s.labels, starts[k]));
  const splitOf = (row: number): number => {
    let k = starts.length - 1;
    while (row < starts[k]!) k--;
    return k;
  };
  return {
    count,
    labels,
    read(indices) {
      return torch.tidy(() => {
        const parts: Tensor[] = [];
        for (let k = 0; k < indices.length; ) {
          const part = splitOf(indices[k]!);
          const local: number[] = [];
          for (; k < indices.length && splitOf(indices[k]!) === part; k++) local.push(indices[k]! - starts[part]!);
          parts.push(takeBatch(splits[part]!, local).x);
        }
        return parts.length === 1 ? parts[0]! : torch.cat(parts, 0);
      });
    },
    close() {},
  };
}
