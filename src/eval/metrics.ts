// Classification metrics over plain arrays, defined as MedMNIST's evaluator and scikit-learn
// define them so numbers compare with published results. Every function takes the same
// arguments: integer labels 0..K-1, N x K scores (see Scores) and K. Predictions are the
// argmax of each row (lowest class on ties, like numpy.argmax).
import { argmaxRows, checkInputs, type EvalInputs, type Scores } from './inputs.js';
import {
  accuracyFromConfusion,
  classMetricsFromConfusion,
  confusionCounts,
  oneVsRestAuc,
  orderByClassScore,
  qwkFromConfusion,
  type ClassMetrics,
} from './weighted-counts.js';

export type { Scores } from './inputs.js';
export type { ClassMetrics } from './weighted-counts.js';

/** Guo et al. (2017) use 15 bins; so do most papers reporting ECE. */
export const DEFAULT_CALIBRATION_BINS = 15;

export interface EvalMetrics {
  /** MedMNIST ACC: fraction of argmax predictions equal to the label. */
  acc: number;
  /** MedMNIST AUC: mean over classes of the one-vs-rest ROC AUC. */
  auc: number;
  /** Quadratic weighted kappa on argmax predictions, in -1..1; NaN when undefined. */
  qwk: number;
  macro_f1: number;
  balanced_acc: number;
  /** Expected calibration error, 15 equal-width confidence bins. */
  ece: number;
  /** confusion[true][predicted] = number of samples. */
  confusion: number[][];
  per_class: ClassMetrics[];
}

const confusionOf = (input: EvalInputs): number[][] => confusionCounts(input.labels, argmaxRows(input), input.numClasses);

const allClasses = (numClasses: number): number[] => Array.from({ length: numClasses }, (_, cls) => cls);

/**
 * The classes that occur in `labels`. A split lacking a grade (a set graded 0-3, a small set) has
 * no one-vs-rest AUC for it; its AUC and macro F1 are then means over these classes.
 */
export function classesPresent(labels: ArrayLike<number>, numClasses: number): number[] {
  const seen = new Set(Array.from(labels));
  return allClasses(numClasses).filter((cls) => seen.has(cls));
}

function perClassAucOf({ labels, scores, numClasses }: EvalInputs, classes: readonly number[]): number[] {
  return classes.map((cls) => {
    const auc = oneVsRestAuc(labels, scores, numClasses, cls, orderByClassScore(scores, numClasses, cls));
    if (Number.isNaN(auc)) {
      // MedMNIST's evaluator fails here as well (sklearn's roc_auc_score raises), so no
      // silently different number is produced.
      const problem = labels.every((label) => label === cls) ? 'every sample is' : 'no sample is';
      throw new Error(
        `AUC is undefined: ${problem} labelled class ${cls}, and one-vs-rest ROC AUC needs both positives and negatives for each class`,
      );
    }
    return auc;
  });
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

/** Mean recall over the classes present in the labels (sklearn's balanced_accuracy_score). */
const balancedAccuracyOf = (perClass: ClassMetrics[]): number => mean(perClass.filter((c) => c.support > 0).map((c) => c.recall));

/** Mean F1 over `classes` (sklearn's f1_score(average='macro', labels=classes, zero_division=0)). */
const macroF1Of = (perClass: ClassMetrics[], classes: readonly number[]): number => mean(classes.map((cls) => perClass[cls]!.f1));

function calibrationErrorOf(input: EvalInputs, bins: number): number {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`bins must be a positive integer, got ${bins}`);
  const { labels, scores, count, numClasses } = input;
  const preds = argmaxRows(input);
  const binConfidence = new Float64Array(bins);
  const binCorrect = new Float64Array(bins);
  for (let i = 0; i < count; i++) {
    const confidence = scores[i * numClasses + preds[i]];
    if (confidence < 0 || confidence > 1) {
      throw new Error(
        `expected calibration error needs probabilities in [0, 1], but row ${i} has top score ${confidence} ` +
          '(apply softmax to logits first)',
      );
    }
    // Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0.
    const bin = Math.max(0, Math.ceil(confidence * bins) - 1);
    binConfidence[bin] += confidence;
    if (preds[i] === labels[i]) binCorrect[bin] += 1;
  }
  // sum_b |B_b|/N * |acc(B_b) - conf(B_b)| = sum_b |correct_b - confidenceSum_b| / N
  let gap = 0;
  for (let b = 0; b < bins; b++) gap += Math.abs(binCorrect[b] - binConfidence[b]);
  return gap / count;
}

export function accuracy(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  return accuracyFromConfusion(confusionOf(checkInputs(labels, probs, numClasses)));
}

/**
 * One-vs-rest ROC AUC of each class's score, ties scored as sklearn's roc_auc_score scores them.
 * Throws when a class is absent from the labels (or is the only class present), as MedMNIST's
 * evaluator does. `classes` (default: all) chooses which, in that order.
 */
export function perClassAuc(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  classes: readonly number[] = allClasses(numClasses),
): number[] {
  return perClassAucOf(checkInputs(labels, probs, numClasses), classes);
}

/** MedMNIST's multi-class AUC: the mean of perClassAuc (over `classes`, default all). */
export function multiclassAuc(labels: ArrayLike<number>, probs: Scores, numClasses: number, classes?: readonly number[]): number {
  return mean(perClassAuc(labels, probs, numClasses, classes));
}

/**
 * Quadratic weighted kappa of argmax predictions against labels, with weights (t - p)^2 on the
 * class values. Equals sklearn's cohen_kappa_score(weights='quadratic', labels=range(K)), and its
 * default too whenever each class occurs in labels or predictions. NaN when undefined (labels and
 * predictions all the same single class), as sklearn returns.
 */
export function quadraticWeightedKappa(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  return qwkFromConfusion(confusionOf(checkInputs(labels, probs, numClasses)));
}

/** K x K counts, rows = true class, columns = predicted class. */
export function confusionMatrix(labels: ArrayLike<number>, probs: Scores, numClasses: number): number[][] {
  return confusionOf(checkInputs(labels, probs, numClasses));
}

/** Precision, recall, F1 and support for each class 0..K-1; 0/0 counts as 0. */
export function perClassMetrics(labels: ArrayLike<number>, probs: Scores, numClasses: number): ClassMetrics[] {
  return classMetricsFromConfusion(confusionMatrix(labels, probs, numClasses));
}

/** Mean recall over the classes present in the labels, as sklearn's balanced_accuracy_score. */
export function balancedAccuracy(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  return balancedAccuracyOf(perClassMetrics(labels, probs, numClasses));
}

/**
 * Mean F1 over all K classes, a class never seen nor predicted counting 0; equals sklearn's
 * f1_score(average='macro', labels=range(K), zero_division=0).
 */
export function macroF1(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  return macroF1Of(perClassMetrics(labels, probs, numClasses), allClasses(numClasses));
}

/**
 * Expected calibration error (Guo et al. 2017): samples binned by confidence (top probability)
 * into equal-width bins, then the sample-weighted mean of |accuracy - mean confidence| per bin.
 * Needs probabilities: throws if a top score lies outside [0, 1].
 */
export function expectedCalibrationError(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  bins = DEFAULT_CALIBRATION_BINS,
): number {
  return calibrationErrorOf(checkInputs(labels, probs, numClasses), bins);
}

/**
 * All metrics at once from probabilities (softmax outputs), validating the inputs once. AUC and
 * macro F1 are means over `classes` (default: all K, as MedMNIST's evaluator; each must occur).
 */
export function computeMetrics(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  classes: readonly number[] = allClasses(numClasses),
): EvalMetrics {
  const input = checkInputs(labels, probs, numClasses);
  const confusion = confusionOf(input);
  const perClass = classMetricsFromConfusion(confusion);
  return {
    acc: accuracyFromConfusion(confusion),
    auc: mean(perClassAucOf(input, classes)),
    qwk: qwkFromConfusion(confusion),
    macro_f1: macroF1Of(perClass, classes),
    balanced_acc: balancedAccuracyOf(perClass),
    ece: calibrationErrorOf(input, DEFAULT_CALIBRATION_BINS),
    confusion,
    per_class: perClass,
  };
}
