// RetinaMNIST at a model's input size, as training and evaluation use it: each split's images
// as the file stores them (uint8, a quarter of float32's memory), plus int64 labels; a batch of
// them becomes float32 NCHW in [-1,1] at the model's input size when it is taken
// (`training-data.ts`). When the file's images are smaller than the model's input (only the
// 28x28 file here), each batch is upsampled bilinearly, and the run records that it was.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { loadMedMNIST, type LoadedDataset, type SplitData } from './medmnist.js';
import { locateDatasetFile } from './locate.js';
import { IMAGE_SIZES, getDatasetFile, type ImageSize } from './registry.js';
import { locateOrDownload, type FirstUseOptions } from './download.js';
import { UserError } from '../errors.js';
import type { Preprocessing, SourceLayout } from './prepared-dataset.js';
import { pixelTensor } from './preprocess.js';

export interface SplitTensors {
  /** N x S x S x C uint8 pixels at the file's size S. */
  pixels: Tensor;
  /** The model's input size: what `takeBatch` and `takeRange` resize batches to. */
  size: number;
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
  return {
    pixels: pixelTensor(split.images, split.count, loaded.size, loaded.channels),
    size,
    y: torch.tensor(split.labels, [split.count], 'int64'),
    labels: split.labels,
    count: split.count,
  };
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
