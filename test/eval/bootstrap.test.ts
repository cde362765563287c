import { describe, expect, it } from 'vitest';
import { bootstrapMetrics, bootstrapPerGrade, computeMetrics, perClassAuc } from '../../src/eval/index.js';
import { sklearnCases } from './fixture.js';

// Labels skewed like RetinaMNIST's, scores informative: intervals of a realistic width.
const { labels, probs, num_classes: K } = sklearnCases.find((c) => c.name === 'imbalanced_informative')!;
const METRICS = ['acc', 'auc', 'qwk'] as const;

describe('bootstrapMetrics', () => {
  it('is deterministic for a seed and changes with it', () => {
    const first = bootstrapMetrics(labels, probs, K, { resamples: 200, seed: 7 });
    expect(bootstrapMetrics(labels, probs, K, { resamples: 200, seed: 7 })).toEqual(first);
    expect(bootstrapMetrics(labels, probs, K, { resamples: 200, seed: 8 }).acc).not.toEqual(first.acc);
  });

  it('brackets the point estimate with a 95% interval', () => {
    const intervals = bootstrapMetrics(labels, probs, K);
    const point = computeMetrics(labels, probs, K);
    for (const name of METRICS) {
      const { estimate, mean, lo, hi, resamplesUsed } = intervals[name];
      expect(estimate).toBe(point[name]);
      expect(lo).toBeLessThan(estimate);
      expect(hi).toBeGreaterThan(estimate);
      expect(mean).toBeGreaterThan(lo);
      expect(mean).toBeLessThan(hi);
      expect(resamplesUsed).toBe(1000);
    }
    // ACC's sampling sd at N = 200 is sqrt(p(1-p)/N) ~ 0.034, so the 95% interval is ~0.13 wide.
    expect(intervals.acc.hi - intervals.acc.lo).toBeGreaterThan(0.09);
    expect(intervals.acc.hi - intervals.acc.lo).toBeLessThan(0.18);
  });

  it('narrows with more data', () => {
    // The same sample repeated 16 times: same estimates, widths shrink about 4-fold (1/sqrt(16)).
    const times = 16;
    const bigLabels = Array.from({ length: times }, () => labels).flat();
    const bigProbs = Array.from({ length: times }, () => probs).flat();
    const small = bootstrapMetrics(labels, probs, K, { resamples: 300 });
    const big = bootstrapMetrics(bigLabels, bigProbs, K, { resamples: 300 });
    for (const name of METRICS) {
      expect(big[name].estimate).toBeCloseTo(small[name].estimate, 12);
      expect(big[name].hi - big[name].lo).toBeLessThan((small[name].hi - small[name].lo) / 2.5);
    }
  });

  it('skips resamples that miss a class for AUC only', () => {
    // Class 2 has one sample in 20: about (19/20)^20 = 36% of resamples miss it.
    const rareLabels = Array.from({ length: 20 }, (_, i) => (i === 0 ? 2 : i % 2));
    // Every third sample scored towards its own class, the rest towards the next class.
    const rareProbs = rareLabels.map((label, i) => {
      const row = [0.2, 0.2, 0.2];
      row[i % 3 === 0 ? label : (label + 1) % 3] = 0.6;
      return row;
    });
    const intervals = bootstrapMetrics(rareLabels, rareProbs, 3, { resamples: 400, seed: 1 });
    expect(intervals.acc.resamplesUsed).toBe(400);
    expect(intervals.auc.resamplesUsed).toBeGreaterThan(200);
    expect(intervals.auc.resamplesUsed).toBeLessThan(320);
  });

  it('rejects bad options and undefined AUC', () => {
    expect(() => bootstrapMetrics(labels, probs, K, { resamples: 0 })).toThrow(/resamples must be a positive integer, got 0/);
    expect(() => bootstrapMetrics(labels, probs, K, { level: 95 })).toThrow(/level must lie strictly between 0 and 1, got 95/);
    expect(() => bootstrapMetrics(labels, probs, K, { seed: -1 })).toThrow(/seed must be an integer in 0..4294967295, got -1/);
    expect(() =>
      bootstrapMetrics(
        [0, 0],
        [
          [1, 0],
          [1, 0],
        ],
        2,
      ),
    ).toThrow(/AUC is undefined: every sample is labelled class 0/);
  });
});

describe('bootstrapPerGrade', () => {
  it("brackets each grade's recall, precision and AUC, estimated as computeMetrics and perClassAuc have them", () => {
    const grades = bootstrapPerGrade(labels, probs, K, { resamples: 400 });
    const point = computeMetrics(labels, probs, K);
    const aucs = perClassAuc(labels, probs, K);
    expect(grades).toHaveLength(K);
    for (const [g, intervals = expect.unreachable()] of grades.entries()) {
      expect(intervals.recall.estimate).toBe(point.per_class[g]!.recall);
      expect(intervals.precision.estimate).toBe(point.per_class[g]!.precision);
      expect(intervals.auc.estimate).toBe(aucs[g]);
      for (const { estimate, lo, hi } of Object.values(intervals)) {
        expect(lo).toBeLessThanOrEqual(estimate);
        expect(hi).toBeGreaterThanOrEqual(estimate);
      }
    }
    // 200 samples: each AUC's interval spans several points (a grade never predicted has recall 0 on every resample).
    for (const grade of grades) expect(grade!.auc.hi - grade!.auc.lo).toBeGreaterThan(0.03);
  });

  it('gives no intervals for a grade the data lack, and still brackets the others', () => {
    // Grades 0 and 1 only, scored over three: grade 2 has no sample (a split graded 0-1).
    const twoGrades = Array.from({ length: 30 }, (_, i) => i % 2);
    const twoGradeProbs = twoGrades.map((label, i) => (i % 5 === 0 ? [0.3, 0.5, 0.2] : label === 0 ? [0.7, 0.2, 0.1] : [0.2, 0.7, 0.1]));
    const [zero, one, absent] = bootstrapPerGrade(twoGrades, twoGradeProbs, 3, { resamples: 200 });
    expect(absent).toBeUndefined();
    for (const grade of [zero, one]) expect(grade!.auc.resamplesUsed).toBe(200);
  });

  it("skips the resamples that miss a grade for that grade's recall and AUC, not its precision", () => {
    // As above: class 2 is one sample in 20, missing from about 36% of resamples.
    const rareLabels = Array.from({ length: 20 }, (_, i) => (i === 0 ? 2 : i % 2));
    const rareProbs = rareLabels.map((label, i) => {
      const row = [0.2, 0.2, 0.2];
      row[i % 3 === 0 ? label : (label + 1) % 3] = 0.6;
      return row;
    });
    const [, common, rare] = bootstrapPerGrade(rareLabels, rareProbs, 3, { resamples: 400, seed: 1 });
    expect(common!.recall.resamplesUsed).toBe(400);
    expect(rare!.precision.resamplesUsed).toBe(400);
    for (const interval of [rare!.recall, rare!.auc]) {
      expect(interval.resamplesUsed).toBeGreaterThan(200);
      expect(interval.resamplesUsed).toBeLessThan(320);
    }
  });
});
