// Percentile bootstrap confidence intervals for ACC, AUC and QWK, and per grade for recall,
// precision and AUC. A RetinaMNIST test split has 400 images, so a point estimate alone hides
// several points of sampling noise.
import { argmaxRows, checkInputs, type Scores } from './inputs.js';
import {
  accuracyFromConfusion,
  classMetricsFromConfusion,
  confusionCounts,
  oneVsRestAuc,
  orderByClassScore,
  qwkFromConfusion,
} from './weighted-counts.js';
import { accuracy, multiclassAuc, quadraticWeightedKappa } from './metrics.js';
import { seededRandom } from '../random.js';

export interface BootstrapOptions {
  /** The classes whose one-vs-rest AUCs are averaged (default: all). */
  classes?: readonly number[];
  /** Number of resamples B (default 1000). */
  resamples?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
  /** Seed of the resampling generator, an integer in 0..2^32-1 (default 0). */
  seed?: number;
}

export interface Interval {
  /** The metric on the full data. */
  estimate: number;
  /** Mean over the resamples used. */
  mean: number;
  lo: number;
  hi: number;
  /** Resamples on which the metric was defined, out of B. */
  resamplesUsed: number;
}

export interface BootstrapIntervals {
  acc: Interval;
  auc: Interval;
  qwk: Interval;
}

/** Quantile of sorted values with linear interpolation between order statistics (numpy's default). */
function quantile(sorted: number[], q: number): number {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

function percentileInterval(name: string, estimate: number, draws: number[], level: number, resamples: number): Interval {
  if (draws.length === 0) {
    throw new Error(`bootstrap: ${name} was undefined on all ${resamples} resamples; the data are too small or too one-sided`);
  }
  const sorted = [...draws].sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  return {
    estimate,
    mean: draws.reduce((a, b) => a + b, 0) / draws.length,
    lo: quantile(sorted, tail),
    hi: quantile(sorted, 1 - tail),
    resamplesUsed: draws.length,
  };
}

/** Checks the options and fills in their defaults. */
function checkedOptions(options: BootstrapOptions): Required<Omit<BootstrapOptions, 'classes'>> {
  const { resamples = 1000, level = 0.95, seed = 0 } = options;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new Error(`resamples must be a positive integer, got ${resamples}`);
  }
  if (!(level > 0 && level < 1)) throw new Error(`level must lie strictly between 0 and 1, got ${level}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`seed must be an integer in 0..4294967295, got ${seed}`);
  }
  return { resamples, level, seed };
}

/**
 * Percentile bootstrap of any statistics of N samples: draws N indices with replacement B times
 * and hands `scoreResample` how often each sample was drawn (so nothing is copied). A statistic
 * that is NaN on a resample (undefined there) skips that resample. Deterministic for a seed.
 */
export function bootstrapStatistics<Name extends string>(
  count: number,
  estimates: Record<Name, number>,
  scoreResample: (counts: Float64Array) => Record<Name, number>,
  options: BootstrapOptions = {},
): Record<Name, Interval> {
  const { resamples, level, seed } = checkedOptions(options);
  const names = Object.keys(estimates) as Name[];
  const draws = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const random = seededRandom(seed);
  const counts = new Float64Array(count);
  for (let b = 0; b < resamples; b++) {
    counts.fill(0);
    for (let i = 0; i < count; i++) counts[Math.floor(random() * count)] += 1;
    const draw = scoreResample(counts);
    for (const name of names) if (!Number.isNaN(draw[name])) draws[name].push(draw[name]);
  }
  return Object.fromEntries(
    names.map((name) => [name, percentileInterval(name.toUpperCase(), estimates[name], draws[name], level, resamples)]),
  ) as Record<Name, Interval>;
}

/**
 * Percentile bootstrap intervals of ACC, AUC and QWK, which share the same resamples. Resamples
 * lacking one of `options.classes` (default: all) are skipped for AUC (it is undefined there), and those with undefined QWK for
 * QWK. Deterministic for a given seed. Throws as multiclassAuc does if AUC is undefined on the
 * full data.
 */
export function bootstrapMetrics(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  options: BootstrapOptions = {},
): BootstrapIntervals {
  checkedOptions(options);
  const input = checkInputs(labels, probs, numClasses);
  const { scores } = input;
  const preds = argmaxRows(input);
  const classes = options.classes ?? Array.from({ length: numClasses }, (_, cls) => cls);
  const orders = classes.map((cls) => orderByClassScore(scores, numClasses, cls));
  // multiclassAuc throws, naming the class, when AUC is undefined on the full data.
  const estimates = {
    acc: accuracy(labels, probs, numClasses),
    auc: multiclassAuc(labels, probs, numClasses, classes),
    qwk: quadraticWeightedKappa(labels, probs, numClasses),
  };
  return bootstrapStatistics(
    input.count,
    estimates,
    (counts) => {
      const confusion = confusionCounts(input.labels, preds, numClasses, counts);
      const aucs = orders.map((order, k) => oneVsRestAuc(input.labels, scores, numClasses, classes[k]!, order, counts));
      return {
        acc: accuracyFromConfusion(confusion),
        auc: aucs.reduce((a, b) => a + b, 0) / classes.length,
        qwk: qwkFromConfusion(confusion),
      };
    },
    options,
  );
}

/** One grade's figures with their intervals. */
export interface GradeIntervals {
  /** Sensitivity: the fraction of the grade's samples predicted as it. */
  recall: Interval;
  /** The fraction of the grade's predictions that are right (0 when it is never predicted, as sklearn's zero_division=0). */
  precision: Interval;
  /** One-vs-rest ROC AUC of the grade's probability. */
  auc: Interval;
}

/**
 * Per grade: percentile bootstrap intervals of recall, precision and one-vs-rest AUC, all on the
 * same resamples. A resample lacking the grade is skipped for its recall and AUC (undefined
 * there). The estimates are those of computeMetrics' `per_class` and perClassAuc. A grade the
 * data lack altogether gets `undefined`: its recall and AUC are undefined on every resample.
 */
export function bootstrapPerGrade(
  labels: ArrayLike<number>,
  probs: Scores,
  numClasses: number,
  options: BootstrapOptions = {},
): (GradeIntervals | undefined)[] {
  checkedOptions(options);
  const input = checkInputs(labels, probs, numClasses);
  const preds = argmaxRows(input);
  const present = Array.from({ length: numClasses }, (_, g) => Array.prototype.includes.call(input.labels, g));
  const orders = Array.from({ length: numClasses }, (_, cls) => orderByClassScore(input.scores, numClasses, cls));
  const figures = (counts?: Float64Array): Record<string, number> => {
    const perClass = classMetricsFromConfusion(confusionCounts(input.labels, preds, numClasses, counts));
    return Object.fromEntries(
      perClass.flatMap((c, g): [string, number][] =>
        present[g]
          ? [
              [`recall ${g}`, c.support > 0 ? c.recall : Number.NaN],
              [`precision ${g}`, c.precision],
              [`auc ${g}`, oneVsRestAuc(input.labels, input.scores, numClasses, g, orders[g]!, counts)],
            ]
          : [],
      ),
    );
  };
  const intervals = bootstrapStatistics(input.count, figures(), figures, options);
  return Array.from({ length: numClasses }, (_, g) =>
    present[g] ? { recall: intervals[`recall ${g}`]!, precision: intervals[`precision ${g}`]!, auc: intervals[`auc ${g}`]! } : undefined,
  );
}
