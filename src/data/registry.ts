// The MedMNIST datasets this project knows, as data: one entry per 2D dataset.
// Facts come from the medmnist package's INFO record (MedMNIST+, Zenodo record 10519652),
// the same record /work/shared/data/README.md quotes for RetinaMNIST.
import { UserError } from '../errors.js';

export const IMAGE_SIZES = [28, 64, 128, 224] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

/** Single-label tasks only: the loader reads labels of shape (N, 1). */
export type MedMNISTTask = 'binary-class' | 'multi-class' | 'ordinal-regression';

export interface DatasetFile {
  size: ImageSize;
  fileName: string;
  url: string;
  /** Undefined when no checksum is recorded: downloads then skip verification with a warning. */
  md5: string | undefined;
}

export interface DatasetInfo {
  key: string;
  title: string;
  task: MedMNISTTask;
  /** Index = class id. */
  labels: readonly string[];
  splitSizes: Readonly<Record<Split, number>>;
  channels: 1 | 3;
  licence: string;
  citations: readonly string[];
  files: Readonly<Record<ImageSize, DatasetFile>>;
}

/** Where the official files live; a download mirror replaces exactly this prefix. */
export const OFFICIAL_BASE_URL = 'https://zenodo.org/records/10519652/files/';

/** The 28x28 file has no size suffix; the MedMNIST+ sizes do (`retinamnist_64.npz`). */
export function fileNameFor(key: string, size: ImageSize): string {
  return size === 28 ? `${key}.npz` : `${key}_${size}.npz`;
}

function filesFor(key: string, md5s: Record<ImageSize, string | undefined>): Record<ImageSize, DatasetFile> {
  const entry = (size: ImageSize): DatasetFile => {
    const fileName = fileNameFor(key, size);
    return { size, fileName, url: `${OFFICIAL_BASE_URL}${fileName}?download=1`, md5: md5s[size] };
  };
  return { 28: entry(28), 64: entry(64), 128: entry(128), 224: entry(224) };
}

const MEDMNIST_V2_CITATION =
  'Yang, J. et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image ' +
  'classification. Scientific Data 10, 41 (2023).';

const DATASETS: readonly DatasetInfo[] = [
  {
    key: 'retinamnist',
    title: 'RetinaMNIST',
    task: 'ordinal-regression',
    labels: ['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR'],
    splitSizes: { train: 1080, val: 120, test: 400 },
    channels: 3,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Liu, R. et al. DeepDRiD: Diabetic Retinopathy - Grading and Image Quality Estimation Challenge. ' +
        'Patterns 3(6), 100512 (2022).',
    ],
    files: filesFor('retinamnist', {
      28: 'bd4c0672f1bba3e3a89f0e4e876791e4',
      64: 'afda852cc34dcda56f86ad2b2457dbcc',
      128: 'e48e916a24454daf90583d4e6efb1a18',
      // From the medmnist package's dataset record (medmnist/info.py); not in the data README.
      224: 'eae7e3b6f3fcbda4ae613ebdcbe35348',
    }),
  },
  {
    key: 'pneumoniamnist',
    title: 'PneumoniaMNIST',
    task: 'binary-class',
    labels: ['normal', 'pneumonia'],
    splitSizes: { train: 4708, val: 524, test: 624 },
    channels: 1,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Kermany, D. S. et al. Identifying medical diagnoses and treatable diseases by image-based deep ' +
        'learning. Cell 172(5), 1122-1131 (2018).',
    ],
    files: filesFor('pneumoniamnist', {
      28: '28209eda62fecd6e6a2d98b1501bb15f',
      64: '8f4eceb4ccffa70c672198ea285246c6',
      128: '05b46931834c231683c68f40c47b2971',
      224: 'd6a3c71de1b945ea11211b03746c1fe1',
    }),
  },
  {
    key: 'dermamnist',
    title: 'DermaMNIST',
    task: 'multi-class',
    labels: [
      'actinic keratoses and intraepithelial carcinoma',
      'basal cell carcinoma',
      'benign keratosis-like lesions',
      'dermatofibroma',
      'melanoma',
      'melanocytic nevi',
      'vascular lesions',
    ],
    splitSizes: { train: 7007, val: 1003, test: 2005 },
    channels: 3,
    licence: 'CC BY-NC 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Tschandl, P., Rosendahl, C. & Kittler, H. The HAM10000 dataset, a large collection of multi-source ' +
        'dermatoscopic images of common pigmented skin lesions. Scientific Data 5, 180161 (2018).',
      'Codella, N. et al. Skin lesion analysis toward melanoma detection 2018: a challenge hosted by the ' +
        'International Skin Imaging Collaboration (ISIC). arXiv:1902.03368 (2019).',
    ],
    files: filesFor('dermamnist', {
      28: '0744692d530f8e62ec473284d019b0c7',
      64: 'b70a2f5635c6199aeaa28c31d7202e1f',
      128: '2defd784463fa5243564e855ed717de1',
      224: '8974907d8e169bef5f5b96bc506ae45d',
    }),
  },
];

export function datasetKeys(): string[] {
  return DATASETS.map((d) => d.key);
}

export function getDataset(key: string): DatasetInfo {
  const info = DATASETS.find((d) => d.key === key);
  if (!info) {
    throw new UserError(`unknown dataset '${key}' (expected one of: ${datasetKeys().join(', ')})`);
  }
  return info;
}

export function isImageSize(size: number): size is ImageSize {
  return (IMAGE_SIZES as readonly number[]).includes(size);
}

export function getDatasetFile(key: string, size: number): DatasetFile {
  const info = getDataset(key);
  if (!isImageSize(size)) {
    throw new UserError(`unsupported image size ${size} for ${key} (expected one of: ${IMAGE_SIZES.join(', ')})`);
  }
  return info.files[size];
}
