// Everything a run reports about one split, from its calibrated probabilities: MedMNIST's metrics
// with bootstrap intervals, and the referable and vision-threatening decisions at the run's
// operating points. Shared by train (metrics.json) and evaluate, so both report the same figures.
import { NUM_GRADES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import {
  bootstrapMetrics,
  computeMetrics,
  cutoffMetrics,
  negativeLogLikelihood,
  perClassAuc,
  type BootstrapIntervals,
  type EvalMetrics,
  type OperatingPointReport,
} from '../eval/index.js';
import type { RunCalibration } from './run-calibration.js';

export interface SplitFigures extends EvalMetrics {
  /** Mean negative log-likelihood of the true grade. */
  nll: number;
  /** One-vs-rest ROC AUC of each grade (their mean is `auc`). */
  auc_per_grade: number[];
  ci95: BootstrapIntervals;
  /** Grade >= REFERABLE_GRADE against the rest; absent for a run without calibration.json. */
  referable?: OperatingPointReport;
  /** Grade >= VISION_THREATENING_GRADE against the rest. */
  vision_threatening?: OperatingPointReport;
}

/**
 * Figures of one split; `probs` are the calibrated probabilities. The bootstrap's seed is fixed
 * (its default), so evaluate reproduces metrics.json's intervals exactly.
 */
export function splitFigures(
  labels: ArrayLike<number>,
  probs: ArrayLike<number> & Iterable<number>,
  calibration: RunCalibration | undefined,
): SplitFigures {
  const scores = Float64Array.from(probs);
  const bootstrap = {};
  return {
    ...computeMetrics(labels, scores, NUM_GRADES),
    nll: negativeLogLikelihood(labels, scores, NUM_GRADES),
    auc_per_grade: perClassAuc(labels, scores, NUM_GRADES),
    ci95: bootstrapMetrics(labels, scores, NUM_GRADES, bootstrap),
    ...(calibration
      ? {
          referable: cutoffMetrics(labels, scores, NUM_GRADES, REFERABLE_GRADE, { threshold: calibration.referable.threshold, bootstrap }),
          vision_threatening: cutoffMetrics(labels, scores, NUM_GRADES, VISION_THREATENING_GRADE, {
            threshold: calibration.vision_threatening.threshold,
            bootstrap,
          }),
        }
      : {}),
  };
}
