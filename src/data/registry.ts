// The MedMNIST datasets this project knows, as data: one entry per 2D dataset.
// Facts come from the medmnist package's INFO record (MedMNIST+, Zenodo record 10519652),
// the record the official RetinaMNIST file's README quotes; each entry's 28x28 md5 and
// split sizes also match the MedMNIST v2 record (Zenodo 6496656). Not here: ChestMNIST (multi-label:
// the loader reads single labels) and the Organ{A,C,S}MNIST entries, whose MedMNIST+ files and
// split sizes differ from v2's and could not be checked against a second source.
import { UserError } from '../errors.js';

export const IMAGE_SIZES = [28, 64, 128, 224] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];
/** The size a run trains at unless told otherwise, and so the file `info` and `download` default to. */
export const DEFAULT_IMAGE_SIZE: ImageSize = 28;

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

/** The source of both PneumoniaMNIST and OCTMNIST. */
const KERMANY_2018 =
  'Kermany, D. S. et al. Identifying medical diagnoses and treatable diseases by image-based deep ' +
  'learning. Cell 172(5), 1122-1131 (2018).';

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
      'Liu, R. et al. DeepDRiD: Diabetic Retinopathy - Grading and Image Quality Estimation Challenge. ' + 'Patterns 3(6), 100512 (2022).',
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
    citations: [MEDMNIST_V2_CITATION, KERMANY_2018],
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
  {
    key: 'pathmnist',
    title: 'PathMNIST',
    task: 'multi-class',
    labels: [
      'adipose',
      'background',
      'debris',
      'lymphocytes',
      'mucus',
      'smooth muscle',
      'normal colon mucosa',
      'cancer-associated stroma',
      'colorectal adenocarcinoma epithelium',
    ],
    splitSizes: { train: 89996, val: 10004, test: 7180 },
    channels: 3,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Kather, J. N. et al. Predicting survival from colorectal cancer histology slides using deep learning: ' +
        'a retrospective multicenter study. PLOS Medicine 16(1), e1002730 (2019).',
    ],
    files: filesFor('pathmnist', {
      28: 'a8b06965200029087d5bd730944a56c1',
      64: '55aa9c1e0525abe5a6b9d8343a507616',
      128: 'ac42d08fb904d92c244187169d1fd1d9',
      224: '2c51a510bcdc9cf8ddb2af93af1eadec',
    }),
  },
  {
    key: 'octmnist',
    title: 'OCTMNIST',
    task: 'multi-class',
    labels: ['choroidal neovascularization', 'diabetic macular edema', 'drusen', 'normal'],
    splitSizes: { train: 97477, val: 10832, test: 1000 },
    channels: 1,
    licence: 'CC BY 4.0',
    citations: [MEDMNIST_V2_CITATION, KERMANY_2018],
    files: filesFor('octmnist', {
      28: 'c68d92d5b585d8d81f7112f81e2d0842',
      64: 'e229e9440236b774d9f0dfef9d07bdaf',
      128: '0a97e76651ace45c5d943ee3f65b63ae',
      224: 'abc493b6d529d5de7569faaef2773ba3',
    }),
  },
  {
    key: 'breastmnist',
    title: 'BreastMNIST',
    task: 'binary-class',
    labels: ['malignant', 'normal, benign'],
    splitSizes: { train: 546, val: 78, test: 156 },
    channels: 1,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Al-Dhabyani, W., Gomaa, M., Khaled, H. & Fahmy, A. Dataset of breast ultrasound images. ' + 'Data in Brief 28, 104863 (2020).',
    ],
    files: filesFor('breastmnist', {
      28: '750601b1f35ba3300ea97c75c52ff8f6',
      64: '742edef2a1fd1524b2efff4bd7ba9364',
      128: '363e4b3f8d712e9b5de15470a2aaadf1',
      224: 'b56378a6eefa9fed602bb16d192d4c8b',
    }),
  },
  {
    key: 'bloodmnist',
    title: 'BloodMNIST',
    task: 'multi-class',
    labels: [
      'basophil',
      'eosinophil',
      'erythroblast',
      'immature granulocytes(myelocytes, metamyelocytes and promyelocytes)',
      'lymphocyte',
      'monocyte',
      'neutrophil',
      'platelet',
    ],
    splitSizes: { train: 11959, val: 1712, test: 3421 },
    channels: 3,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Acevedo, A. et al. A dataset of microscopic peripheral blood cell images for development of ' +
        'automatic recognition systems. Data in Brief 30, 105474 (2020).',
    ],
    files: filesFor('bloodmnist', {
      28: '7053d0359d879ad8a5505303e11de1dc',
      64: '2b94928a2ae4916078ca51e05b6b800b',
      128: 'adace1e0ed228fccda1f39692059dd4c',
      224: 'b718ff6835fcbdb22ba9eacccd7b2601',
    }),
  },
  {
    key: 'tissuemnist',
    title: 'TissueMNIST',
    task: 'multi-class',
    labels: [
      'Collecting Duct, Connecting Tubule',
      'Distal Convoluted Tubule',
      'Glomerular endothelial cells',
      'Interstitial endothelial cells',
      'Leukocytes',
      'Podocytes',
      'Proximal Tubule Segments',
      'Thick Ascending Limb',
    ],
    splitSizes: { train: 165466, val: 23640, test: 47280 },
    channels: 1,
    licence: 'CC BY 4.0',
    citations: [
      MEDMNIST_V2_CITATION,
      'Ljosa, V., Sokolnicki, K. L. & Carpenter, A. E. Annotated high-throughput microscopy image sets ' +
        'for validation. Nature Methods 9(7), 637 (2012).',
    ],
    files: filesFor('tissuemnist', {
      28: 'ebe78ee8b05294063de985d821c1c34b',
      64: '123ece2eba09d0aa5d698fda57103344',
      128: '61b955355d7425a89687b06cca3ce0c2',
      224: 'b077128c4a949f0a4eb01517f9037b9c',
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
