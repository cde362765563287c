// Metrics from weighted sample counts, over checked inputs. Every sample carries a weight, the number of times it
// is counted: the plain metrics count each sample once, the bootstrap passes how often each
// sample was drawn, so a resample is scored without copying it.

/** K x K counts, rows = true class, columns = predicted class. */
export function confusionCounts(labels: Int32Array, preds: Int32Array, numClasses: number, weights?: ArrayLike<number>): number[][] {
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) confusion[labels[i]][preds[i]] += weights ? weights[i] : 1;
  return confusion;
}

export function accuracyFromConfusion(confusion: number[][]): number {
  let correct = 0;
  let total = 0;
  confusion.forEach((row, t) => {
    correct += row[t];
    for (const n of row) total += n;
  });
  return correct / total;
}

/**
 * Cohen's kappa with weights (t - p)^2 on the class values 0..K-1, as sklearn's
 * cohen_kappa_score(weights='quadratic', labels=range(K)). NaN when it is undefined (labels and
 * predictions all one and the same class), as sklearn returns.
 */
export function qwkFromConfusion(confusion: number[][]): number {
  const k = confusion.length;
  const rowSums = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  const colSums = confusion[0].map((_, p) => confusion.reduce((sum, row) => sum + row[p], 0));
  const total = rowSums.reduce((a, b) => a + b, 0);
  let observed = 0;
  let expected = 0;
  for (let t = 0; t < k; t++) {
    for (let p = 0; p < k; p++) {
      const weight = (t - p) ** 2;
      observed += weight * confusion[t][p];
      expected += (weight * rowSums[t] * colSums[p]) / total;
    }
  }
  return expected === 0 ? Number.NaN : 1 - observed / expected;
}

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of samples whose true label is this class. */
  support: number;
}

/** Per-class precision/recall/F1; a 0/0 ratio counts as 0 (sklearn's zero_division=0). */
export function classMetricsFromConfusion(confusion: number[][]): ClassMetrics[] {
  const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);
  return confusion.map((row, c) => {
    const truePositives = row[c];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((sum, r) => sum + r[c], 0);
    return {
      precision: ratio(truePositives, predicted),
      recall: ratio(truePositives, support),
      // 2PR/(P+R) rewritten over counts; equal to it whenever both are defined.
      f1: ratio(2 * truePositives, support + predicted),
      support,
    };
  });
}

/** Sample indices sorted by their score for class `cls`, ascending. */
export function orderByClassScore(scores: Float64Array, numClasses: number, cls: number): Uint32Array {
  const count = scores.length / numClasses;
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  return order.sort((a, b) => scores[a * numClasses + cls] - scores[b * numClasses + cls]);
}

/**
 * One-vs-rest ROC AUC of class `cls` as the Mann-Whitney statistic: the fraction of
 * (positive, negative) pairs where the positive scores higher, a tie counting one half. This
 * is exactly the area under sklearn's ROC curve, ties included. `order` comes from
 * orderByClassScore. NaN when the class has no positives or no negatives.
 */
export function oneVsRestAuc(
  labels: Int32Array,
  scores: Float64Array,
  numClasses: number,
  cls: number,
  order: Uint32Array,
  weights?: ArrayLike<number>,
): number {
  let winningPairs = 0;
  let negativesBelow = 0;
  let positives = 0;
  // Walk groups of equal scores from lowest to highest.
  for (let start = 0; start < order.length; ) {
    const groupScore = scores[order[start] * numClasses + cls];
    let groupPositives = 0;
    let groupNegatives = 0;
    let end = start;
    for (; end < order.length && scores[order[end] * numClasses + cls] === groupScore; end++) {
      const i = order[end];
      const weight = weights ? weights[i] : 1;
      if (labels[i] === cls) groupPositives += weight;
      else groupNegatives += weight;
    }
    winningPairs += groupPositives * (negativesBelow + groupNegatives / 2);
    negativesBelow += groupNegatives;
    positives += groupPositives;
    start = end;
  }
  const pairs = positives * negativesBelow;
  return pairs === 0 ? Number.NaN : winningPairs / pairs;
}
