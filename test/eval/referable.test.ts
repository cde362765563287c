import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseThreshold, cutoffMetrics, probabilityAtLeast, rocCurve } from '../../src/eval/index.js';

interface Split {
  labels: number[];
  probs: number[][];
}
interface Figures {
  auc: number;
  sensitivity: number;
  specificity: number;
  positives: number;
  negatives: number;
}
const fixture: {
  min_sensitivity: number;
  cases: {
    name: string;
    num_classes: number;
    val: Split;
    test: Split;
    expected: Record<string, { cut: number; threshold: number; val: Figures; test: Figures }>;
  }[];
} = JSON.parse(readFileSync(new URL('../fixtures/eval/sklearn_referable.json', import.meta.url), 'utf8'));

describe('hand-worked referable figures', () => {
  // Grades and P(grade >= 2) = p2 + p3 + p4 (binary fractions, so the sums are exact):
  //   grade  0      1     2    3     0    4
  //   score  0.125  0.25  0.5  0.75  0.5  0.875
  const labels = [0, 1, 2, 3, 0, 4];
  const probs = [
    [0.875, 0, 0.125, 0, 0],
    [0.5, 0.25, 0.25, 0, 0],
    [0.25, 0.25, 0.5, 0, 0],
    [0, 0.25, 0.25, 0.5, 0],
    [0.5, 0, 0.25, 0.25, 0],
    [0, 0.125, 0, 0, 0.875],
  ];

  it('sums the probabilities of the grades at or above the cut', () => {
    expect(probabilityAtLeast(probs[3], 2)).toBe(0.75);
    expect(probabilityAtLeast(probs[3], 3)).toBe(0.5);
    expect(() => probabilityAtLeast(probs[3], 5)).toThrow(/cutGrade must be an integer in 1..4, got 5/);
  });

  it('traces the ROC curve and picks the operating point', () => {
    const positive = labels.map((g) => g >= 2);
    const scores = probs.map((p) => probabilityAtLeast(p, 2));
    // 3 positives (0.5, 0.75, 0.875), 3 negatives (0.125, 0.25, 0.5); 0.5 is a tie across the classes.
    expect(rocCurve(positive, scores)).toEqual([
      { threshold: 0.875, fpr: 0, tpr: 1 / 3 },
      { threshold: 0.75, fpr: 0, tpr: 2 / 3 },
      { threshold: 0.5, fpr: 1 / 3, tpr: 1 },
      { threshold: 0.25, fpr: 2 / 3, tpr: 1 },
      { threshold: 0.125, fpr: 1, tpr: 1 },
    ]);
    // Sensitivity 0.9 is first reached at 0.5 (specificity 2/3); 0.6 is reached at 0.75.
    expect(chooseThreshold(positive, scores, 0.9)).toBe(0.5);
    expect(chooseThreshold(positive, scores, 0.6)).toBe(0.75);
  });

  it('reports AUC, sensitivity and specificity with intervals', () => {
    const report = cutoffMetrics(labels, probs, 5, 2, { bootstrap: { resamples: 200 } });
    // Pairs (positive, negative): 9, of which the tie at 0.5 counts one half: AUC = 8.5 / 9.
    expect(report.auc).toBeCloseTo(8.5 / 9, 12);
    expect(report.threshold).toBe(0.5);
    expect(report.sensitivity).toBe(1);
    expect(report.specificity).toBeCloseTo(2 / 3, 12);
    expect([report.positives, report.negatives]).toEqual([3, 3]);
    expect(report.ci95.specificity.lo).toBeLessThan(2 / 3);
    expect(report.ci95.specificity.hi).toBeGreaterThanOrEqual(2 / 3);
    // A fixed threshold from elsewhere is applied, not re-chosen.
    const fixed = cutoffMetrics(labels, probs, 5, 2, { threshold: 0.8, bootstrap: { resamples: 50 } });
    expect([fixed.threshold, fixed.sensitivity, fixed.specificity]).toEqual([0.8, 1 / 3, 1]);
  });
});

describe('referable figures against scikit-learn', () => {
  for (const c of fixture.cases) {
    for (const [name, expected] of Object.entries(c.expected)) {
      it(`${c.name}: ${name} (grade >= ${expected.cut}), threshold chosen on val, applied to test`, () => {
        const val = cutoffMetrics(c.val.labels, c.val.probs, c.num_classes, expected.cut, {
          minSensitivity: fixture.min_sensitivity,
          bootstrap: { resamples: 20 },
        });
        expect(val.threshold).toBeCloseTo(expected.threshold, 12);
        const test = cutoffMetrics(c.test.labels, c.test.probs, c.num_classes, expected.cut, {
          threshold: val.threshold,
          bootstrap: { resamples: 20 },
        });
        for (const [got, want] of [
          [val, expected.val],
          [test, expected.test],
        ] as const) {
          expect(got.auc).toBeCloseTo(want.auc, 12);
          expect(got.sensitivity).toBeCloseTo(want.sensitivity, 12);
          expect(got.specificity).toBeCloseTo(want.specificity, 12);
          expect([got.positives, got.negatives]).toEqual([want.positives, want.negatives]);
        }
        expect(val.sensitivity).toBeGreaterThanOrEqual(fixture.min_sensitivity);
      });
    }
  }
});
