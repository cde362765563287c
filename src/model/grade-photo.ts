// Grading one photograph with an opened run: decode, crop, resize, normalize, forward, softmax.
// Used by the `predict` command and by the prediction worker a server runs.
import * as torch from '../torch/index.js';
import { squarePixels, type CropMode, type ImageInput, type SquarePixels } from '../data/fundus.js';
import { GRADE_NAMES, NUM_GRADES } from '../data/grades.js';
import { resizeBatch, toTensor } from '../data/preprocess.js';
import { UserError } from '../errors.js';
import { camOverlayPng, gradCam, writeCamOverlay } from '../explain/gradcam.js';
import { checkGradability } from './gradability.js';
import { probabilitiesOfFeatures } from './inference.js';
import type { OpenedModel } from './open-run.js';
import type { FrozenFeatures } from '../nn/index.js';
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

/** The model's 1 x 3 x S x S input in [-1, 1], resized the way training resizes the dataset's images when the sides differ. */
function modelInput(pixels: SquarePixels, size: number): torch.Tensor {
  return torch.tidy(() => {
    const x = toTensor(pixels.rgb, 1, pixels.side, 3);
    return pixels.side === size ? x : resizeBatch(x, size);
  });
}

export type { CropMode };
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

/** A photograph decoded and cropped to the model's input, ready to be graded (with others, in one forward pass). */
export interface LoadedPhoto {
  file: string;
  /** 1 x 3 x S x S in [-1, 1]; gradeLoaded disposes it. */
  x: torch.Tensor;
  /** Every warning from loading says the disc was not found (a reason to refuse). */
  warnings: string[];
}

export const isLoaded = (photo: LoadedPhoto | Prediction): photo is LoadedPhoto => 'x' in photo;

/** The record of an image that could not be read (`error`), or the image loaded as the model's input. */
export async function loadPhoto(opened: OpenedModel, input: ImageInput, crop: CropMode): Promise<LoadedPhoto | Prediction> {
  const file = inputName(input);
  try {
    return loadedPhoto(opened, file, await squarePixels(input, opened.modelConfig.inputSize, crop));
  } catch (error) {
    if (error instanceof UserError) return unreadable(file, error.message);
    throw error;
  }
}

/** A photograph decoded and cropped elsewhere (squarePixels, e.g. in another thread), loaded as the model's input. */
export const loadedPhoto = (opened: OpenedModel, file: string, pixels: SquarePixels): LoadedPhoto => ({
  file,
  x: modelInput(pixels, opened.modelConfig.inputSize),
  warnings: pixels.warnings,
});

/** The record of an image that could not be read. */
export const unreadable = (file: string, error: string): Prediction => ({ file, warnings: [], error });

/** Each model's frozen feature extractor (FeatureClassifier.frozenFeatures), made on its first photograph (a run's weights stay). */
const frozenExtractors = new WeakMap<OpenedModel['model'], FrozenFeatures | null>();

/** The model's features of `x` for grading: through its frozen extractor where it has one. */
function gradingFeatures(model: OpenedModel['model'], x: torch.Tensor): torch.Tensor {
  if (!frozenExtractors.has(model)) frozenExtractors.set(model, model.frozenFeatures?.() ?? null);
  const frozen = frozenExtractors.get(model);
  return frozen ? frozen.features(x) : torch.noGrad(() => model.features(x));
}

/**
 * Grades loaded photographs in one forward pass (their tensors are disposed): one pass through the
 * feature extractor serves the gate and the grade. In eval mode each image's outputs do not depend
 * on the others in the batch. A model whose outputs are not probabilities throws its
 * ModelOutputError: no image can fix that.
 */
export async function gradeLoaded(opened: OpenedModel, photos: readonly LoadedPhoto[], options: PredictOptions): Promise<Prediction[]> {
  if (photos.length === 0) return [];
  let x = photos[0]!.x;
  if (photos.length > 1) {
    x = torch.cat(
      photos.map((p) => p.x),
      0,
    );
    for (const p of photos) p.x.dispose();
  }
  let features: torch.Tensor | undefined;
  try {
    const extracted = gradingFeatures(opened.model, x);
    features = extracted;
    const checks = checkGradability(opened.model, opened.gradability, x, extracted);
    const probabilities = calibrated(probabilitiesOfFeatures(opened.model, opened.objective, extracted), opened.calibration);
    const records: Prediction[] = [];
    for (const [i, photo] of photos.entries()) {
      const check = checks[i]!;
      const reasons = [...photo.warnings, ...check.reasons];
      const gate = check.ood_score === undefined ? {} : { ood_score: check.ood_score };
      if (reasons.length > 0 && !options.force) {
        records.push({ file: photo.file, status: 'refused', reason: `${REFUSED_MESSAGE}: ${reasons.join('; ')}`, ...gate, warnings: [] });
        continue;
      }
      const row = Array.from(probabilities.subarray(i * NUM_GRADES, (i + 1) * NUM_GRADES));
      records.push(await gradedRecord(opened, photo.file, x.slice(0, i, i + 1), row, gate, reasons, options));
    }
    return records;
  } finally {
    features?.dispose();
    x.dispose();
  }
}

/** The record of one graded image, with its Grad-CAM picture when asked for. */
async function gradedRecord(
  opened: OpenedModel,
  file: string,
  x: torch.Tensor,
  probabilities: number[],
  gate: { ood_score?: number },
  warnings: string[],
  options: PredictOptions,
): Promise<Prediction> {
  try {
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
        return { file, warnings: [], error: `cannot write ${record.cam}: ${(error as Error).message}` };
      }
    }
    return record;
  } finally {
    x.dispose();
  }
}

/**
 * Grades one image; a problem with the image becomes the record's `error`, not an exception. A
 * model whose outputs are not probabilities throws its ModelOutputError: no image can fix that.
 */
export async function predictImage(opened: OpenedModel, input: ImageInput, options: PredictOptions): Promise<Prediction> {
  const loaded = await loadPhoto(opened, input, options.crop);
  if (!isLoaded(loaded)) return loaded;
  const [record] = await gradeLoaded(opened, [loaded], options);
  return record!;
}
