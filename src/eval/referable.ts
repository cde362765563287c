// Screening's binary questions asked of a grade classifier: is DR at least grade g (referable,
// g = 2; vision-threatening, g = 3)? The score is the summed probability of grades >= g; a
// screening programme acts on it at an operating point: refer when the score reaches a threshold
// chosen on validation, judged by sensitivity and specificity.
import { bootstrapStatistics, type BootstrapOptions, type Interval } from './bootstrap.js';
import { checkInputs, type Scores } from './inputs.js';
import { oneVsRestAuc, orderByClassScore } from './weighted-counts.js';

/** The operating point's default rule: the highest specificity with sensitivity at least this. */
export const DEFAULT_MIN_SENSITIVITY = 0.9;

/** P(grade >= cutGrade) of one image's grade probabilities. */
export function probabilityAtLeast(probabilities: ArrayLike<number>, cutGrade: number): number {
  return atLeast(Float64Array.from(probabilities), probabilities.length, cutGrade)[0]!;
}

function atLeast(flat: Float64Array, numClasses: number, cutGrade: number): Float64Array {
  if (!Number.isInteger(cutGrade) || cutGrade < 1 || cutGrade >= numClasses) {
    throw new Error(`cutGrade must be an integer in 1..${numClasses - 1}, got ${cutGrade}`);
  }
  const count = flat.length / numClasses;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    let sum = 0;
    for (let c = cutGrade; c < numClasses; c++) sum += flat[i * numClasses + c];
    out[i] = sum;
  }
  return out;
}

export interface RocPoint {
  /** Positive when score >= threshold. */
  threshold: number;
  fpr: number;
  tpr: number;
}

/**
 * The ROC curve at every distinct score, highest threshold first, as sklearn's
 * roc_curve(drop_intermediate=False) without its leading (inf, 0, 0) point.
 */
export function rocCurve(positive: ArrayLike<boolean>, scores: ArrayLike<number>): RocPoint[] {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  for (let i = 0; i < positive.length; i++) if (positive[i]) positives++;
  const negatives = positive.length - positives;
  if (positives === 0 || negatives === 0) throw new Error(`ROC needs positives and negatives, got ${positives} and ${negatives}`);
  const points: RocPoint[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; ) {
    const threshold = scores[order[k]];
    for (; k < order.length && scores[order[k]] === threshold; k++) {
      if (positive[order[k]]) tp++;
      else fp++;
    }
    points.push({ threshold, fpr: fp / negatives, tpr: tp / positives });
  }
  return points;
}

/**
 * The threshold of the highest specificity whose sensitivity is at least `minSensitivity` (ties:
 * the higher sensitivity). Choose it on validation; apply it unchanged elsewhere.
 */
export function chooseThreshold(positive: ArrayLike<boolean>, scores: ArrayLike<number>, minSensitivity = DEFAULT_MIN_SENSITIVITY): number {
  if (!(minSensitivity > 0 && minSensitivity <= 1)) throw new Error(`minSensitivity must lie in (0, 1], got ${minSensitivity}`);
  const feasible = rocCurve(positive, scores).filter((p) => p.tpr >= minSensitivity);
  // Thresholds fall along the curve, so FPR never decreases: the first feasible point has the
  // lowest FPR, and among points of that FPR the last has the highest TPR.
  const lowestFpr = feasible[0]!.fpr;
  return feasible.filter((p) => p.fpr === lowestFpr).at(-1)!.threshold;
}

export interface OperatingPoint {
  /** Refer when P(grade >= cut) >= threshold (chosen on validation). */
  threshold: number;
  auc: number;
  sensitivity: number;
  specificity: number;
  positives: number;
  negatives: number;
}

export type OperatingPointReport = OperatingPoint & {
  ci95: Record<'auc' | 'sensitivity' | 'specificity', Interval>;
};

/** AUC, sensitivity and specificity at `threshold`, each sample counted `weights[i]` times. */
function operatingPoint(
  positive: Int32Array,
  pairScores: Float64Array,
  order: Uint32Array,
  threshold: number,
  weights?: ArrayLike<number>,
): OperatingPoint {
  let tp = 0;
  let fn = 0;
  let tn = 0;
  let fp = 0;
  for (let i = 0; i < positive.length; i++) {
    const w = weights ? weights[i] : 1;
    const referred = pairScores[2 * i + 1] >= threshold;
    if (positive[i]) {
      if (referred) tp += w;
      else fn += w;
    } else if (referred) fp += w;
    else tn += w;
  }
  return {
    threshold,
    auc: oneVsRestAuc(positive, pairScores, 2, 1, order, weights),
    sensitivity: tp + fn === 0 ? Number.NaN : tp / (tp + fn),
    specificity: tn + fp === 0 ? Number.NaN : tn / (tn + fp),
    positives: tp + fn,
    negatives: tn + fp,
  };
}

export interface CutoffOptions {
  /** Threshold from validation; when absent it is chosen here, on these data. */
  threshold?: number;
  minSensitivity?: number;
  bootstrap?: BootstrapOptions;
}

/**
 * Grades >= cutGrade against the rest on these labels and probabilities: AUC, and sensitivity and
 * specificity at the operating point, with percentile bootstrap 95% intervals (the threshold held
 * fixed over the resamples).
 */
export function cutoffMetrics(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  cutGrade: number,
  options: CutoffOptions = {},
): OperatingPointReport {
  const input = checkInputs(labels, probs, numClasses);
  const score = atLeast(input.scores, numClasses, cutGrade);
  const positive = input.labels.map((label) => (label >= cutGrade ? 1 : 0));
  const isPositive = Array.from(positive, Boolean);
  const threshold = options.threshold ?? chooseThreshold(isPositive, score, options.minSensitivity);
  // Two columns (not referable, referable) so the multi-class AUC code scores column 1.
  const pairScores = new Float64Array(2 * input.count);
  score.forEach((s, i) => {
    pairScores[2 * i] = 1 - s;
    pairScores[2 * i + 1] = s;
  });
  const order = orderByClassScore(pairScores, 2, 1);
  const point = operatingPoint(positive, pairScores, order, threshold);
  if (Number.isNaN(point.auc))
    throw new Error(`AUC is undefined: ${point.positives} samples of grade >= ${cutGrade}, ${point.negatives} below`);
  const ci95 = bootstrapStatistics(
    input.count,
    { auc: point.auc, sensitivity: point.sensitivity, specificity: point.specificity },
    (counts) => {
      const { auc, sensitivity, specificity } = operatingPoint(positive, pairScores, order, threshold, counts);
      return { auc, sensitivity, specificity };
    },
    options.bootstrap,
  );
  return { ...point, ci95 };
}
