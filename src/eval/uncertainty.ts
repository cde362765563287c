// How unsure a prediction is, and the threshold above which it goes to a human grader instead.
// The score is the predictive entropy of the (temperature-scaled) probabilities divided by log K,
// so 0 is certain and 1 is uniform. The threshold is chosen on validation as the entropy above
// which a set fraction of validation images falls; test shows what that choice costs and buys.
import { checkInputs, type Scores } from './inputs.js';

/** Fraction of validation images the default threshold sends to a human grader. */
export const DEFAULT_REFER_FRACTION = 0.1;

/** Predictive entropy of one row of probabilities over log K: 0 certain, 1 uniform. */
export function normalizedEntropy(probabilities: ArrayLike<number>): number {
  let entropy = 0;
  for (let c = 0; c < probabilities.length; c++) {
    const p = probabilities[c];
    if (p > 0) entropy -= p * Math.log(p);
  }
  return entropy / Math.log(probabilities.length);
}

function entropies(scores: Float64Array, numClasses: number): Float64Array {
  const count = scores.length / numClasses;
  return Float64Array.from({ length: count }, (_, i) => normalizedEntropy(scores.subarray(i * numClasses, (i + 1) * numClasses)));
}

/**
 * The entropy threshold above which `referFraction` of these (validation) images fall: a
 * prediction whose uncertainty exceeds it is "uncertain".
 */
export function chooseUncertaintyThreshold(probs: Scores, numClasses: number, referFraction = DEFAULT_REFER_FRACTION): number {
  if (!(referFraction >= 0 && referFraction < 1)) throw new Error(`referFraction must lie in [0, 1), got ${referFraction}`);
  const flat = checkInputs(new Int32Array(rowCount(probs, numClasses)), probs, numClasses).scores;
  const sorted = [...entropies(flat, numClasses)].sort((a, b) => a - b);
  const kept = Math.ceil((1 - referFraction) * sorted.length);
  return kept >= sorted.length ? 1 : sorted[kept - 1]!;
}

const rowCount = (probs: Scores, numClasses: number): number =>
  Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number' ? probs.length : probs.length / numClasses;

export interface CoveragePoint {
  /** Predictions kept when those with uncertainty above `threshold` are referred. */
  threshold: number;
  coverage: number;
  /** ACC of the kept predictions. */
  accuracy: number;
}

/**
 * Coverage against accuracy as the uncertainty threshold is lowered: one point per distinct
 * uncertainty, from keeping everything (coverage 1) to keeping only the most certain.
 */
export function coverageCurve(labels: ArrayLike<number>, probs: Scores, numClasses: number): CoveragePoint[] {
  const { labels: checked, scores, count } = checkInputs(labels, probs, numClasses);
  const uncertainty = entropies(scores, numClasses);
  const correct = Array.from({ length: count }, (_, i) => {
    const row = scores.subarray(i * numClasses, (i + 1) * numClasses);
    return row.indexOf(Math.max(...row)) === checked[i];
  });
  const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => uncertainty[a] - uncertainty[b]);
  const points: CoveragePoint[] = [];
  let right = 0;
  for (let k = 0; k < count; ) {
    const threshold = uncertainty[order[k]];
    for (; k < count && uncertainty[order[k]] === threshold; k++) if (correct[order[k]]) right++;
    points.push({ threshold, coverage: k / count, accuracy: right / k });
  }
  return points.reverse();
}

/** Coverage and accuracy of the kept predictions at one threshold. */
export function coverageAt(labels: ArrayLike<number>, probs: Scores, numClasses: number, threshold: number): CoveragePoint {
  const kept = coverageCurve(labels, probs, numClasses).find((p) => p.threshold <= threshold);
  return { threshold, coverage: kept?.coverage ?? 0, accuracy: kept?.accuracy ?? Number.NaN };
}
