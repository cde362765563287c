// The library API (`import { openModel } from 'retinagrade'`): open a trained run, grade
// photographs, get Grad-CAM pictures. The `predict` command and the server's worker thread use it,
// so a program gets exactly the records `predict --json` prints.
import type { ImageInput } from './data/fundus.js';
import { gradeLoaded, isLoaded, loadPhoto, predictImage, type CropMode, type Prediction } from './model/grade-photo.js';
import { openRun, type OpenedModel, type OpenRunOptions } from './model/open-run.js';

/** A file path, the bytes of an image file, or bytes with the name records should carry. */
export type ImageSource = string | Uint8Array | { name: string; bytes: Uint8Array };

export interface GradeOptions {
  /** 'disc' (default): a square around the retina disc (photographs); 'none': the image as it is (square). */
  crop?: CropMode;
  /** Grade an image the gradability gate refuses too: its reasons become warnings (`predict --force`). */
  force?: boolean;
}

export interface GradcamOptions extends GradeOptions {
  /** Also write the picture to this PNG file; the record's `cam` names it. */
  file?: string;
}

/**
 * What the model is, as its weights describe it; `unfinished` says what the weights are when the run had not finished,
 * `precision` what it computes at (`precisionFallback`: why not at the one asked for or trained at).
 */
export type ModelInfo = Pick<OpenedModel, 'modelConfig' | 'ensemble' | 'unfinished' | 'precision' | 'precisionFallback'> & {
  runDir: string;
};

/** Photographs per forward pass in gradeBatch. */
const GRADE_BATCH = 32;

/** Name of an image given as bare bytes, in its record's `file`. */
const BYTES_NAME = '<bytes>';

const toInput = (image: ImageSource): ImageInput => (image instanceof Uint8Array ? { name: BYTES_NAME, bytes: image } : image);

export class RetinaModel {
  readonly info: ModelInfo;
  readonly #opened: OpenedModel;
  #disposed = false;

  /** Use `openModel`. */
  constructor(opened: OpenedModel) {
    this.#opened = opened;
    const { modelConfig, ensemble, unfinished, precision, precisionFallback } = opened;
    this.info = {
      modelConfig,
      ensemble,
      ...(unfinished ? { unfinished } : {}),
      precision,
      ...(precisionFallback ? { precisionFallback } : {}),
      runDir: opened.run.path,
    };
  }

  /**
   * Grades one image: the record `predict --json` prints (`{file, status, grade, grade_name,
   * probabilities, p_referable, uncertainty, warnings, ...}`); `{file, status: 'refused', reason,
   * warnings}` when the gradability gate refuses it (unless `force`), `{file, warnings, error}` when
   * it cannot be read (a bad image is a record, not an exception).
   */
  grade(image: ImageSource, options: GradeOptions = {}): Promise<Prediction> {
    return predictImage(this.#live(), toInput(image), { crop: options.crop ?? 'disc', force: options.force });
  }

  /**
   * Grades images, the same records as `grade` gives one by one: each is decoded and cropped in
   * turn (one full-size photograph in memory at a time), then up to GRADE_BATCH of them go
   * through the model in one forward pass.
   */
  async gradeBatch(images: readonly ImageSource[], options: GradeOptions = {}): Promise<Prediction[]> {
    const opened = this.#live();
    const predictOptions = { crop: options.crop ?? 'disc', force: options.force };
    const records: Prediction[] = [];
    for (let start = 0; start < images.length; start += GRADE_BATCH) {
      const loaded = [];
      for (const image of images.slice(start, start + GRADE_BATCH))
        loaded.push(await loadPhoto(opened, toInput(image), predictOptions.crop));
      const graded = await gradeLoaded(opened, loaded.filter(isLoaded), predictOptions);
      records.push(...loaded.map((record) => (isLoaded(record) ? graded.shift()! : record)));
    }
    return records;
  }

  /**
   * The grade's record plus `camPng`: a PNG of the model's input beside the Grad-CAM heat map of
   * the predicted grade (absent when the image could not be graded).
   */
  gradcam(image: ImageSource, options: GradcamOptions = {}): Promise<Prediction> {
    return predictImage(this.#live(), toInput(image), {
      crop: options.crop ?? 'disc',
      force: options.force,
      camPng: true,
      camFile: options.file,
    });
  }

  /** Frees the weights; the model cannot grade afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#opened.model.dispose();
  }

  #live(): OpenedModel {
    if (this.#disposed) throw new Error('this RetinaModel has been disposed');
    return this.#opened;
  }
}

/**
 * Opens a run directory written by `retinagrade train` (its weights, and calibration.json when
 * present). An unfinished run is refused unless `allowUnfinished` (`--allow-unfinished`).
 */
export async function openModel(runDir: string, options: OpenRunOptions = {}): Promise<RetinaModel> {
  return new RetinaModel(openRun(runDir, options));
}
