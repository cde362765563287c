// What a run fits on its validation split after training, kept in calibration.json: the
// temperature its probabilities are scaled by, the operating points of the referable and
// vision-threatening decisions, and the uncertainty above which a prediction goes to a human.
// Written by train (src/train/outputs.ts), read by openRun only.
import { z } from 'zod';
import { UserError } from '../errors.js';
import { NUM_GRADES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import {
  applyTemperature,
  chooseThreshold,
  chooseUncertaintyThreshold,
  DEFAULT_MIN_SENSITIVITY,
  DEFAULT_REFER_FRACTION,
  fitTemperature,
  normalizedEntropy,
  probabilityAtLeast,
} from '../eval/index.js';

const Probability = z.number().min(0).max(1);

export const RunCalibrationSchema = z.object({
  /** Probabilities are p^(1/T) renormalized (temperature scaling, fitted on validation NLL). */
  temperature: z.number().positive(),
  /** Refer when P(grade >= 2) >= threshold: the highest validation specificity at sensitivity >= minSensitivity. */
  referable: z.object({ threshold: Probability, minSensitivity: Probability }),
  /** The same rule for P(grade >= 3). */
  vision_threatening: z.object({ threshold: Probability, minSensitivity: Probability }),
  /** A prediction whose normalized entropy exceeds threshold is "uncertain" (referFraction of validation was). */
  uncertainty: z.object({ threshold: Probability, referFraction: Probability }),
});
export type RunCalibration = z.infer<typeof RunCalibrationSchema>;

/** What an uncalibrated run (trained before calibration.json existed) is given: no thresholds to apply. */
export const IDENTITY_TEMPERATURE = 1;

export interface CalibrationChoices {
  minSensitivity?: number;
  referFraction?: number;
}

/** Fits everything in calibration.json on validation labels and the model's (untempered) probabilities. */
export function fitRunCalibration(labels: ArrayLike<number>, probs: Float32Array, choices: CalibrationChoices = {}): RunCalibration {
  const { minSensitivity = DEFAULT_MIN_SENSITIVITY, referFraction = DEFAULT_REFER_FRACTION } = choices;
  const temperature = fitTemperature(labels, probs, NUM_GRADES);
  const tempered = applyTemperature(probs, NUM_GRADES, temperature);
  return {
    temperature,
    ...chooseOperatingPoints(labels, tempered, minSensitivity),
    uncertainty: { threshold: chooseUncertaintyThreshold(tempered, NUM_GRADES, referFraction), referFraction },
  };
}

/** The referable and vision-threatening thresholds on validation labels and calibrated probabilities. */
export function chooseOperatingPoints(
  labels: ArrayLike<number>,
  tempered: Float64Array,
  minSensitivity = DEFAULT_MIN_SENSITIVITY,
): Pick<RunCalibration, 'referable' | 'vision_threatening'> {
  const operatingPoint = (cut: number) => {
    const scores = Array.from({ length: labels.length }, (_, i) =>
      probabilityAtLeast(tempered.subarray(i * NUM_GRADES, (i + 1) * NUM_GRADES), cut),
    );
    const positive = Array.from(labels, (label) => label >= cut);
    if (!positive.includes(true) || !positive.includes(false)) {
      const side = positive.includes(true) ? `below grade ${cut}` : `of grade >= ${cut}`;
      throw new UserError(
        `the validation split has no image ${side}, so the operating point of that cut-off cannot be chosen on it: ` +
          'prepare the dataset again with a larger --val',
      );
    }
    return { threshold: chooseThreshold(positive, scores, minSensitivity), minSensitivity };
  };
  return { referable: operatingPoint(REFERABLE_GRADE), vision_threatening: operatingPoint(VISION_THREATENING_GRADE) };
}

/** The model's probabilities at the run's temperature (unchanged without calibration). */
export function calibrated(probs: ArrayLike<number>, calibration: RunCalibration | undefined): Float64Array {
  return applyTemperature(probs, NUM_GRADES, calibration?.temperature ?? IDENTITY_TEMPERATURE);
}

/** 'refused' (not a gradable fundus photograph) is decided before the model runs (src/model/gradability.ts). */
export type Status = 'graded' | 'uncertain' | 'refused';

/** What screening reads off one image's calibrated grade probabilities. */
export interface ScreeningFigures {
  p_referable: number;
  p_vision_threatening: number;
  /** P(referable) at or above the run's operating point; absent for a run without calibration.json. */
  referable?: boolean;
  vision_threatening?: boolean;
  /** Normalized predictive entropy: 0 certain, 1 uniform. */
  uncertainty: number;
  /** 'uncertain': above the run's uncertainty threshold, refer for human grading. */
  status: Exclude<Status, 'refused'>;
}

export function screeningFigures(probabilities: ArrayLike<number>, calibration: RunCalibration | undefined): ScreeningFigures {
  const p_referable = probabilityAtLeast(probabilities, REFERABLE_GRADE);
  const p_vision_threatening = probabilityAtLeast(probabilities, VISION_THREATENING_GRADE);
  const uncertainty = normalizedEntropy(probabilities);
  return {
    p_referable,
    p_vision_threatening,
    ...(calibration
      ? {
          referable: p_referable >= calibration.referable.threshold,
          vision_threatening: p_vision_threatening >= calibration.vision_threatening.threshold,
        }
      : {}),
    uncertainty,
    status: calibration && uncertainty > calibration.uncertainty.threshold ? 'uncertain' : 'graded',
  };
}
