// Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) and
// the uncertainty that decides "uncertain: refer for human grading". Both are fitted on validation
// probabilities and applied unchanged to test and to photographs.
import { checkInputs, type Scores } from './inputs.js';

/** Keeps log(0) out of the tempered log-probabilities. */
export const MIN_PROBABILITY = 1e-12;
/** Temperatures searched by fitTemperature: far beyond any a trained classifier needs. */
const TEMPERATURE_RANGE = [0.05, 20] as const;

/**
 * Probabilities at temperature T: softmax(log p / T), i.e. p^(1/T) renormalized. For a softmax
 * head this equals softmax(logits / T); it applies as well to an ensemble's averaged probabilities.
 * Argmax is unchanged; T > 1 softens, T < 1 sharpens.
 */
export function applyTemperature(probs: ArrayLike<number>, numClasses: number, temperature: number): Float64Array {
  if (!(temperature > 0 && Number.isFinite(temperature))) throw new Error(`temperature must be a positive number, got ${temperature}`);
  const out = new Float64Array(probs.length);
  for (let offset = 0; offset < probs.length; offset += numClasses) {
    let max = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      out[offset + c] = Math.log(Math.max(MIN_PROBABILITY, probs[offset + c])) / temperature;
      max = Math.max(max, out[offset + c]);
    }
    let sum = 0;
    for (let c = 0; c < numClasses; c++) {
      out[offset + c] = Math.exp(out[offset + c] - max);
      sum += out[offset + c];
    }
    for (let c = 0; c < numClasses; c++) out[offset + c] /= sum;
  }
  return out;
}

/** Mean negative log-likelihood of the labels under the probabilities. */
export function negativeLogLikelihood(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  const { labels: checked, scores, count } = checkInputs(labels, probs, numClasses);
  let sum = 0;
  for (let i = 0; i < count; i++) sum -= Math.log(Math.max(MIN_PROBABILITY, scores[i * numClasses + checked[i]]));
  return sum / count;
}

/**
 * The temperature minimizing the NLL of the labels: golden-section search over log T, the NLL
 * being convex in 1/T for a softmax of fixed log-probabilities.
 */
export function fitTemperature(labels: ArrayLike<number>, probs: Scores, numClasses: number): number {
  const { labels: checked, scores } = checkInputs(labels, probs, numClasses);
  const loss = (logT: number): number => negativeLogLikelihood(checked, applyTemperature(scores, numClasses, Math.exp(logT)), numClasses);
  const ratio = (Math.sqrt(5) - 1) / 2;
  let lo = Math.log(TEMPERATURE_RANGE[0]);
  let hi = Math.log(TEMPERATURE_RANGE[1]);
  let a = hi - ratio * (hi - lo);
  let b = lo + ratio * (hi - lo);
  let lossA = loss(a);
  let lossB = loss(b);
  while (hi - lo > 1e-6) {
    if (lossA < lossB) {
      hi = b;
      b = a;
      lossB = lossA;
      a = hi - ratio * (hi - lo);
      lossA = loss(a);
    } else {
      lo = a;
      a = b;
      lossA = lossB;
      b = lo + ratio * (hi - lo);
      lossB = loss(b);
    }
  }
  return Math.exp((lo + hi) / 2);
}

export interface ReliabilityBin {
  /** Confidences in (lo, hi]. */
  lo: number;
  hi: number;
  count: number;
  /** Mean top probability in the bin (NaN when empty). */
  confidence: number;
  /** Fraction of the bin's argmax predictions that are right (NaN when empty). */
  accuracy: number;
}

/** The reliability diagram: top probability against accuracy in equal-width bins (as ECE bins them). */
export function reliabilityBins(labels: ArrayLike<number>, probs: Scores, numClasses: number, bins = 15): ReliabilityBin[] {
  const { labels: checked, scores, count } = checkInputs(labels, probs, numClasses);
  const sums = Array.from({ length: bins }, (_, b) => ({ lo: b / bins, hi: (b + 1) / bins, count: 0, confidence: 0, correct: 0 }));
  for (let i = 0; i < count; i++) {
    const row = scores.subarray(i * numClasses, (i + 1) * numClasses);
    const predicted = row.indexOf(Math.max(...row));
    const bin = sums[Math.max(0, Math.ceil(row[predicted] * bins) - 1)];
    bin.count++;
    bin.confidence += row[predicted];
    if (predicted === checked[i]) bin.correct++;
  }
  return sums.map(({ lo, hi, count: n, confidence, correct }) => ({
    lo,
    hi,
    count: n,
    confidence: n === 0 ? Number.NaN : confidence / n,
    accuracy: n === 0 ? Number.NaN : correct / n,
  }));
}
