// RetinaMNIST at a model's input size, as training and evaluation use it: each split as
// float32 NCHW in [-1,1] at the model's input size, plus int64 labels. When the file's images
// are smaller than the model's input (only the 28x28 file here), they are upsampled once,
// bilinearly, and the run records that it did.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { loadMedMNIST, type LoadedDataset, type SplitData } from './medmnist.js';
import { locateDatasetFile } from './locate.js';
import { IMAGE_SIZES, getDatasetFile, type ImageSize } from './registry.js';
import { locateOrDownload, type FirstUseOptions } from './download.js';
import { UserError } from '../errors.js';
import type { Preprocessing, SourceLayout } from './prepared-dataset.js';
import { resizeBatch, toTensor } from './preprocess.js';

export interface SplitTensors {
  /** N x 3 x S x S float32 in [-1, 1]. */
  x: Tensor;
  /** N int64 grades. */
  y: Tensor;
  labels: Uint8Array;
  count: number;
}

export interface DataSource {
  file: string;
  md5: string;
  /** Size of the images in the file. */
  size: number;
  /** Set when the images were resized to the model's input: the file's size. */
  upsampled_from: number | null;
  /** Set for a prepared dataset (`retinagrade prepare`): what it is and how its images were made. */
  prepared?: { name: string; layout: SourceLayout; preprocessing: Preprocessing };
}

export interface RetinaTensors {
  train: SplitTensors;
  val: SplitTensors;
  test: SplitTensors;
  source: DataSource;
}

function splitTensors(split: SplitData, loaded: LoadedDataset, size: number): SplitTensors {
  return torch.tidy(() => {
    const stored = toTensor(split.images, split.count, loaded.size, loaded.channels);
    const x = loaded.size === size ? stored : resizeBatch(stored, size);
    const y = torch.tensor(split.labels, [split.count], 'int64');
    return { x, y, labels: split.labels, count: split.count };
  });
}

const DATASET = 'retinamnist';

/** The file at `size`, else the largest smaller one (to be upsampled); errors name the wanted one. */
function locateForSize(size: number, dataDir: string | undefined): { file: string; md5?: string } {
  const sizes = [size, ...IMAGE_SIZES.filter((s) => s < size).reverse()];
  let firstError: unknown;
  for (const candidate of sizes) {
    try {
      return { file: locateDatasetFile(DATASET, candidate, { dataDir }), md5: getDatasetFile(DATASET, candidate).md5 };
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      firstError ??= error;
    }
  }
  throw firstError;
}

/** Makes sure loadRetinaTensors will find a file for `size`: downloads the one at `size` when none is there. */
export async function ensureRetinaFile(options: { dataDir?: string; size: number }, download: FirstUseOptions): Promise<void> {
  await locateOrDownload(DATASET, options.size as ImageSize, () => locateForSize(options.size, options.dataDir), download);
}

/** Loads RetinaMNIST at `size`, or the largest smaller file upsampled when that size is absent. */
export function loadRetinaTensors(options: { dataDir?: string; size: number }): RetinaTensors {
  const found = locateForSize(options.size, options.dataDir);
  const loaded = loadMedMNIST(found.file, DATASET, { expectedMd5: found.md5 });
  return {
    train: splitTensors(loaded.train, loaded, options.size),
    val: splitTensors(loaded.val, loaded, options.size),
    test: splitTensors(loaded.test, loaded, options.size),
    source: {
      file: loaded.file,
      md5: loaded.md5,
      size: loaded.size,
      upsampled_from: loaded.size === options.size ? null : loaded.size,
    },
  };
}
