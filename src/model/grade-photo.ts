// Grading one photograph with an opened run: decode, crop, resize, normalize, forward, softmax.
// Used by the `predict` command and by the prediction worker a server runs.
import * as torch from '../torch/index.js';
import { decodeImage, preprocessFundus, type ImageInput } from '../data/fundus.js';
import { GRADE_NAMES } from '../data/grades.js';
import { resizeBatch, toTensor } from '../data/preprocess.js';
import { ModelOutputError, UserError } from '../errors.js';
import { camOverlayPng, gradCam, writeCamOverlay } from '../explain/gradcam.js';
import { checkGradability } from './gradability.js';
import { probabilitiesOfFeatures } from './inference.js';
import type { OpenedModel } from './open-run.js';
import { calibrated, screeningFigures, type ScreeningFigures, type Status } from './run-calibration.js';

export type { ImageInput };

/** The message of an 'uncertain' prediction. */
export const UNCERTAIN_MESSAGE = 'uncertain: refer for human grading';

export interface Prediction extends Partial<Omit<ScreeningFigures, 'status'>> {
  file: string;
  /** Absent when the file could not be read (`error`). */
  status?: Status;
  grade?: number;
  grade_name?: string;
  /** Temperature-scaled (the run's calibration.json). */
  probabilities?: number[];
  /** Why the image was refused (status 'refused'); under `force` the reasons are warnings instead. */
  reason?: string;
  /** The gradability gate's out-of-distribution score (0: like a training image). */
  ood_score?: number;
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
export const inputPixels = (x: torch.Tensor): Uint8Array =>
  torch.tidy(() => x.add(1).mul(127.5).round().clamp(0, 255).permute([0, 2, 3, 1]).contiguous().to('uint8').data() as Uint8Array);

export interface PredictOptions {
  crop: CropMode;
  /** Also write a Grad-CAM picture of the predicted grade to this file (PNG). */
  camFile?: string;
  /** Also return that picture as PNG bytes in the record's `camPng`. */
  camPng?: boolean;
  /** Grade an image the gradability gate refuses, with its reasons as warnings. */
  force?: boolean;
}

/** The message of a refusal; the record's `reason` says why. */
export const REFUSED_MESSAGE = 'not graded: this does not look like a gradable colour fundus photograph';

/**
 * Grades one image; a problem with the image becomes the record's `error`, not an exception. A
 * model whose outputs are not probabilities throws its ModelOutputError: no image can fix that.
 */
export async function predictImage(opened: OpenedModel, input: ImageInput, options: PredictOptions): Promise<Prediction> {
  const file = inputName(input);
  try {
    const loaded = await loadInput(input, opened.modelConfig.inputSize, options.crop);
    const { x } = loaded;
    let features: torch.Tensor | undefined;
    try {
      // One pass through the feature extractor (the model is in eval mode) serves the gate and the grade.
      const extracted = torch.noGrad(() => opened.model.features(x));
      features = extracted;
      // Every warning from loading says the disc was not found; with the gate's reasons, they refuse.
      const [check] = checkGradability(opened.model, opened.gradability, x, extracted);
      const reasons = [...loaded.warnings, ...check!.reasons];
      const gate = check!.ood_score === undefined ? {} : { ood_score: check!.ood_score };
      if (reasons.length > 0 && !options.force) {
        return { file, status: 'refused', reason: `${REFUSED_MESSAGE}: ${reasons.join('; ')}`, ...gate, warnings: [] };
      }
      const warnings = reasons;
      const modelProbabilities = probabilitiesOfFeatures(opened.model, opened.objective, extracted);
      const probabilities = Array.from(calibrated(modelProbabilities, opened.calibration));
      const grade = probabilities.indexOf(Math.max(...probabilities));
      if (opened.unfinished) warnings.unshift(opened.unfinished);
      const screening = screeningFigures(probabilities, opened.calibration);
      const record: Prediction = { file, grade, grade_name: GRADE_NAMES[grade], probabilities, ...screening, ...gate, warnings };
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
      features?.dispose();
      x.dispose();
    }
  } catch (error) {
    if (error instanceof UserError && !(error instanceof ModelOutputError)) return { file, warnings: [], error: error.message };
    throw error;
  }
}
