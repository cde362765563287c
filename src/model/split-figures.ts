// Everything a run reports about one split, from its calibrated probabilities: MedMNIST's metrics
// with bootstrap intervals, and the referable and vision-threatening decisions at the run's
// operating points. Shared by train (metrics.json) and evaluate, so both report the same figures.
// A split lacking a grade (a set graded 0-3, a small set) is scored over the grades it has, and
// says so (`grades_absent`, `note`).
import { NUM_GRADES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import {
  bootstrapMetrics,
  classesPresent,
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
  /** One-vs-rest ROC AUC of each grade, null for a grade the split lacks (the others' mean is `auc`). */
  auc_per_grade: (number | null)[];
  /** Grades with no image in the split: AUC and macro F1 are means over the others. */
  grades_absent: number[];
  /** Said when grades are absent: what the figures are over and what is not reported. */
  note?: string;
  ci95: BootstrapIntervals;
  /** Grade >= REFERABLE_GRADE against the rest; absent for a run without calibration.json, or a split with one side only. */
  referable?: OperatingPointReport;
  /** Grade >= VISION_THREATENING_GRADE against the rest (absent likewise). */
  vision_threatening?: OperatingPointReport;
}

const ALL_GRADES = Array.from({ length: NUM_GRADES }, (_, g) => g);

/** Whether grades `present` fall on both sides of a screening cut-off (its AUC needs both). */
export const straddles = (present: readonly number[], cut: number): boolean =>
  present.some((g) => g < cut) && present.some((g) => g >= cut);

/** What the figures of a split lacking `absent` grades leave out, in words. */
function absentGradesNote(absent: readonly number[]): string {
  const present = ALL_GRADES.filter((g) => !absent.includes(g));
  const cutoffs = [
    ['referable', REFERABLE_GRADE],
    ['vision-threatening', VISION_THREATENING_GRADE],
  ] as const;
  const unreported = cutoffs.flatMap(([name, cut]) => (straddles(present, cut) ? [] : [`${name} DR (grade >= ${cut})`]));
  return (
    `no image of grade ${absent.join(', ')} in this split: AUC and macro F1 are means over grades ${present.join(', ')}` +
    (unreported.length > 0 ? `; ${unreported.join(' and ')} not reported (no image on one side)` : '')
  );
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
  const present = classesPresent(labels, NUM_GRADES);
  const absent = ALL_GRADES.filter((g) => !present.includes(g));
  const aucs = perClassAuc(labels, scores, NUM_GRADES, present);
  const cutoff = (cut: number, threshold: number) =>
    straddles(present, cut) ? cutoffMetrics(labels, scores, NUM_GRADES, cut, { threshold, bootstrap }) : undefined;
  return {
    ...computeMetrics(labels, scores, NUM_GRADES, present),
    nll: negativeLogLikelihood(labels, scores, NUM_GRADES),
    auc_per_grade: ALL_GRADES.map((g) => (present.includes(g) ? aucs[present.indexOf(g)]! : null)),
    grades_absent: absent,
    ...(absent.length > 0 ? { note: absentGradesNote(absent) } : {}),
    ci95: bootstrapMetrics(labels, scores, NUM_GRADES, { ...bootstrap, classes: present }),
    ...(calibration
      ? {
          referable: cutoff(REFERABLE_GRADE, calibration.referable.threshold),
          vision_threatening: cutoff(VISION_THREATENING_GRADE, calibration.vision_threatening.threshold),
        }
      : {}),
  };
}
