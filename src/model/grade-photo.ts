// Grading one photograph with an opened run: decode, crop, resize, normalize, forward, softmax.
// Used by the `predict` command and by the prediction worker a server runs.
import * as torch from '../torch/index.js';
import { decodeImage, preprocessFundus, type ImageInput } from '../data/fundus.js';
import { GRADE_NAMES } from '../data/grades.js';
import { resizeBatch, toTensor } from '../data/preprocess.js';
import { ModelOutputError, UserError } from '../errors.js';
import { camOverlayPng, gradCam, writeCamOverlay } from '../explain/gradcam.js';
import { predictProbabilities } from './inference.js';
import type { OpenedModel } from './open-run.js';

export type { ImageInput };

export interface Prediction {
  file: string;
  grade?: number;
  grade_name?: string;
  probabilities?: number[];
  warnings: string[];
  error?: string;
  /** Grad-CAM picture written for this image (predict --cam). */
  cam?: string;
  /** Grad-CAM picture as PNG bytes (the server's cam=1). */
  camPng?: Uint8Array;
}

/**
 * The model input for one file. `disc` crops a square around the retina disc (real photographs);
 * `none` takes the image as it is (e.g. a MedMNIST image exported to PNG), resized the way
 * training resizes the dataset's images.
 */
async function loadInput(input: ImageInput, size: number, crop: CropMode): Promise<{ x: torch.Tensor; warnings: string[] }> {
  if (crop === 'disc') {
    const fundus = await preprocessFundus(input, size);
    return { x: toTensor(fundus.pixels, 1, size, 3), warnings: fundus.warnings };
  }
  const image = await decodeImage(input);
  if (image.width !== image.height) {
    throw new UserError(`${inputName(input)}: crop 'none' needs a square image, got ${image.width}x${image.height}`);
  }
  const x = torch.tidy(() => {
    const decoded = toTensor(image.rgb, 1, image.width, 3);
    return image.width === size ? decoded : resizeBatch(decoded, size);
  });
  return { x, warnings: [] };
}

export type CropMode = 'disc' | 'none';
const inputName = (input: ImageInput): string => (typeof input === 'string' ? input : input.name);

/** The model input back as size x size x 3 RGB bytes, for pictures of what the model saw. */
const inputPixels = (x: torch.Tensor): Uint8Array =>
  torch.tidy(() => x.add(1).mul(127.5).round().clamp(0, 255).permute([0, 2, 3, 1]).contiguous().to('uint8').data() as Uint8Array);

export interface PredictOptions {
  crop: CropMode;
  /** Also write a Grad-CAM picture of the predicted grade to this file (PNG). */
  camFile?: string;
  /** Also return that picture as PNG bytes in the record's `camPng`. */
  camPng?: boolean;
}

/**
 * Grades one image; a problem with the image becomes the record's `error`, not an exception. A
 * model whose outputs are not probabilities throws its ModelOutputError: no image can fix that.
 */
export async function predictImage(opened: OpenedModel, input: ImageInput, options: PredictOptions): Promise<Prediction> {
  const file = inputName(input);
  try {
    const { x, warnings } = await loadInput(input, opened.modelConfig.inputSize, options.crop);
    try {
      const probabilities = Array.from(predictProbabilities(opened.model, opened.objective, x));
      const grade = probabilities.indexOf(Math.max(...probabilities));
      if (opened.unfinished) warnings.unshift(opened.unfinished);
      const record: Prediction = { file, grade, grade_name: GRADE_NAMES[grade], probabilities, warnings };
      // One Grad-CAM per image, however many places it goes to.
      const cam = options.camFile || options.camPng ? gradCam(opened.model, opened.objective, x, grade) : undefined;
      const pixels = cam ? inputPixels(x) : undefined;
      if (cam && options.camPng) record.camPng = await camOverlayPng(pixels!, cam);
      if (cam && options.camFile) {
        record.cam = options.camFile;
        try {
          await writeCamOverlay(record.cam, pixels!, cam);
        } catch (error) {
          throw new UserError(`cannot write ${record.cam}: ${(error as Error).message}`);
        }
      }
      return record;
    } finally {
      x.dispose();
    }
  } catch (error) {
    if (error instanceof UserError && !(error instanceof ModelOutputError)) return { file, warnings: [], error: error.message };
    throw error;
  }
}
