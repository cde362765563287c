import { describe, expect, it } from 'vitest';
import {
  accuracy,
  balancedAccuracy,
  computeMetrics,
  confusionMatrix,
  expectedCalibrationError,
  macroF1,
  multiclassAuc,
  perClassAuc,
  perClassMetrics,
  quadraticWeightedKappa,
} from '../../src/eval/index.js';
import { sklearnCases } from './fixture.js';

// Hand-worked case, K = 3. Row 1 ties classes 0 and 1: argmax takes the lower, 0.
//   labels  0    0    0    1    1    2
//   preds   0    0    1    1    2    2
const labels = [0, 0, 0, 1, 1, 2];
const probs = [
  [0.6, 0.3, 0.1],
  [0.5, 0.5, 0.0],
  [0.2, 0.7, 0.1],
  [0.3, 0.6, 0.1],
  [0.1, 0.2, 0.7],
  [0.1, 0.1, 0.8],
];
const K = 3;

describe('hand-worked metrics', () => {
  it('accuracy: 4 of 6 predictions right', () => {
    expect(accuracy(labels, probs, K)).toBeCloseTo(4 / 6, 12);
  });

  it('confusion matrix has true classes as rows', () => {
    expect(confusionMatrix(labels, probs, K)).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [0, 0, 1],
    ]);
  });

  it('per-class precision, recall, F1 and support', () => {
    // class 0: tp 2, predicted 2, support 3 -> P 1,   R 2/3, F1 2*2/(3+2) = 0.8
    // class 1: tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 2/(2+2)   = 0.5
    // class 2: tp 1, predicted 2, support 1 -> P 1/2, R 1,   F1 2/(1+2)   = 2/3
    const expected = [
      { precision: 1, recall: 2 / 3, f1: 0.8, support: 3 },
      { precision: 0.5, recall: 0.5, f1: 0.5, support: 2 },
      { precision: 0.5, recall: 1, f1: 2 / 3, support: 1 },
    ];
    perClassMetrics(labels, probs, K).forEach((got, c) => {
      expect(got.support).toBe(expected[c].support);
      expect(got.precision).toBeCloseTo(expected[c].precision, 12);
      expect(got.recall).toBeCloseTo(expected[c].recall, 12);
      expect(got.f1).toBeCloseTo(expected[c].f1, 12);
    });
  });

  it('macro-F1 and balanced accuracy', () => {
    // macro-F1 = (0.8 + 0.5 + 2/3) / 3 = 59/90; balanced = (2/3 + 1/2 + 1) / 3 = 13/18
    expect(macroF1(labels, probs, K)).toBeCloseTo(59 / 90, 12);
    expect(balancedAccuracy(labels, probs, K)).toBeCloseTo(13 / 18, 12);
  });

  it('balanced accuracy skips classes absent from the labels, F1 counts them as 0', () => {
    // K = 3 but no label 2; one sample is predicted 2.
    // recalls: class 0 = 1/1, class 1 = 1/2 -> balanced (1 + 1/2) / 2 = 3/4
    // F1: class 0 = 2/(1+1) = 1, class 1 = 2/(2+1) = 2/3, class 2 = 0 -> macro 5/9
    const gapLabels = [0, 1, 1];
    const gapProbs = [
      [0.8, 0.1, 0.1],
      [0.1, 0.8, 0.1],
      [0.1, 0.1, 0.8],
    ];
    expect(balancedAccuracy(gapLabels, gapProbs, 3)).toBeCloseTo(3 / 4, 12);
    expect(macroF1(gapLabels, gapProbs, 3)).toBeCloseTo(5 / 9, 12);
  });

  it('quadratic weighted kappa', () => {
    // row sums r = [3, 2, 1], column sums c = [2, 2, 2], N = 6, weights (t - p)^2
    // observed = 1*C[0][1] + 1*C[1][2] = 2
    // expected = sum r_t c_p (t-p)^2 / N = (2/6) * (3*5 + 2*2 + 1*5) = 8
    // kappa = 1 - 2/8
    expect(quadraticWeightedKappa(labels, probs, K)).toBeCloseTo(0.75, 12);
  });

  it('quadratic weighted kappa penalises far misses more than near ones', () => {
    const truth = [0, 1, 2, 3, 4];
    const oneHot = (preds: number[]) => preds.map((p) => Array.from({ length: 5 }, (_, c) => (c === p ? 1 : 0)));
    const near = quadraticWeightedKappa(truth, oneHot([1, 1, 2, 3, 4]), 5);
    const far = quadraticWeightedKappa(truth, oneHot([4, 1, 2, 3, 4]), 5);
    expect(accuracy(truth, oneHot([1, 1, 2, 3, 4]), 5)).toBe(accuracy(truth, oneHot([4, 1, 2, 3, 4]), 5));
    expect(far).toBeLessThan(near);
  });

  it('quadratic weighted kappa is NaN when undefined, as sklearn returns', () => {
    // Labels and predictions all class 1: expected disagreement is 0.
    expect(
      quadraticWeightedKappa(
        [1, 1],
        [
          [0, 1, 0],
          [0, 1, 0],
        ],
        3,
      ),
    ).toBeNaN();
  });

  it('one-vs-rest AUC per class and their mean', () => {
    // class 0: positives {.6 .5 .2} vs negatives {.3 .1 .1}: 3 + 3 + 2 wins of 9 -> 8/9
    // class 1: positives {.6 .2} vs negatives {.3 .5 .7 .1}: 3 + 1 wins of 8     -> 1/2
    // class 2: positive {.8} beats all 5 negatives                               -> 1
    const aucs = perClassAuc(labels, probs, K);
    [8 / 9, 1 / 2, 1].forEach((want, c) => expect(aucs[c]).toBeCloseTo(want, 12));
    expect(multiclassAuc(labels, probs, K)).toBeCloseTo((8 / 9 + 1 / 2 + 1) / 3, 12);
  });

  it('AUC counts a tied positive/negative pair as one half', () => {
    // class 1: positives {.5 .9} vs negatives {.5 .2}: .5 vs .5 = 1/2, .5 vs .2 = 1, .9 wins both = 2
    // -> 3.5 / 4; class 0 is the mirror image, also 3.5 / 4.
    const tiedProbs = [
      [0.5, 0.5],
      [0.5, 0.5],
      [0.8, 0.2],
      [0.1, 0.9],
    ];
    expect(perClassAuc([0, 1, 0, 1], tiedProbs, 2)).toEqual([0.875, 0.875]);
  });

  it('expected calibration error over 15 bins', () => {
    // confidences .6 .5 .7 .6 .7 .8, correct 1 1 0 1 0 1; bins are (b/15, (b+1)/15]
    // bin 7 {.5 right} |1 - .5| = .5; bin 8 {.6, .6 both right} |2 - 1.2| = .8
    // bin 10 {.7, .7 both wrong} |0 - 1.4| = 1.4; bin 11 {.8 right} |1 - .8| = .2
    // ECE = (.5 + .8 + 1.4 + .2) / 6
    expect(expectedCalibrationError(labels, probs, K)).toBeCloseTo(2.9 / 6, 12);
  });

  it('expected calibration error puts a confidence on a bin edge in the lower bin', () => {
    // bins = 2: .5 (right) falls in (0, .5], .6 (wrong) in (.5, 1] -> (.5 + .6) / 2.
    // Were .5 binned with .6 the result would be |1 - 1.1| / 2 = .05.
    expect(
      expectedCalibrationError(
        [0, 1],
        [
          [0.5, 0.5],
          [0.6, 0.4],
        ],
        2,
        2,
      ),
    ).toBeCloseTo(0.55, 12);
  });

  it('expected calibration error is 0 for confident, correct predictions', () => {
    expect(
      expectedCalibrationError(
        [0, 1],
        [
          [1, 0],
          [0, 1],
        ],
        2,
      ),
    ).toBe(0);
  });

  it('computeMetrics returns every metric under its snake_case key', () => {
    const all = computeMetrics(labels, probs, K);
    expect(all).toEqual({
      acc: accuracy(labels, probs, K),
      auc: multiclassAuc(labels, probs, K),
      qwk: quadraticWeightedKappa(labels, probs, K),
      macro_f1: macroF1(labels, probs, K),
      balanced_acc: balancedAccuracy(labels, probs, K),
      ece: expectedCalibrationError(labels, probs, K),
      confusion: confusionMatrix(labels, probs, K),
      per_class: perClassMetrics(labels, probs, K),
    });
  });

  it('accepts a flat row-major array in place of rows', () => {
    const flat = Float64Array.from(probs.flat());
    expect(computeMetrics(Int32Array.from(labels), flat, K)).toEqual(computeMetrics(labels, probs, K));
  });
});

describe('input validation', () => {
  it.each([
    ['mismatched row count', () => accuracy([0, 1], [[1, 0]], 2), /labels has 2 entries but probs has 1 rows/],
    ['mismatched flat length', () => accuracy([0, 1], [1, 0, 0], 2), /probs has 3 values, expected .* 2 x 2 = 4/],
    ['a short row', () => accuracy([0, 1], [[1, 0], [1]], 2), /probs row 1 has 1 scores, expected 2/],
    [
      'a label too large',
      () =>
        accuracy(
          [0, 2],
          [
            [1, 0],
            [0, 1],
          ],
          2,
        ),
      /label at index 1 is 2, expected an integer in 0..1/,
    ],
    [
      'a negative label',
      () =>
        accuracy(
          [-1, 0],
          [
            [1, 0],
            [0, 1],
          ],
          2,
        ),
      /label at index 0 is -1/,
    ],
    [
      'a fractional label',
      () =>
        accuracy(
          [0, 0.5],
          [
            [1, 0],
            [0, 1],
          ],
          2,
        ),
      /label at index 1 is 0.5/,
    ],
    ['a NaN score', () => accuracy([0, 1], new Float32Array([1, 0, NaN, 1]), 2), /score at row 1, class 0 is NaN/],
    [
      'an infinite score',
      () =>
        accuracy(
          [0, 1],
          [
            [1, 0],
            [0, Infinity],
          ],
          2,
        ),
      /score at row 1, class 1 is Infinity/,
    ],
    ['no samples', () => accuracy([], [], 2), /labels is empty/],
    ['fewer than 2 classes', () => accuracy([0], [[1]], 1), /numClasses must be an integer >= 2, got 1/],
    [
      'a class absent from labels (AUC)',
      () =>
        multiclassAuc(
          [0, 0, 1],
          [
            [1, 0, 0],
            [1, 0, 0],
            [0, 1, 0],
          ],
          3,
        ),
      /AUC is undefined: no sample is labelled class 2/,
    ],
    [
      'logits given to ECE',
      () => expectedCalibrationError([0], [[3.2, -1]], 2),
      /needs probabilities in \[0, 1\], but row 0 has top score 3.2/,
    ],
  ])('rejects %s', (_, call, message) => {
    expect(call).toThrow(message);
  });
});

describe('parity with scikit-learn', () => {
  const close = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThan(1e-9);

  it('covers argmax ties, score ties and a never-predicted class', () => {
    const names = sklearnCases.map((c) => c.name);
    expect(names).toEqual(['dirichlet', 'ties', 'imbalanced_informative']);
    const tiedRows = sklearnCases[1].probs.filter((row) => row.filter((s) => s === Math.max(...row)).length > 1);
    expect(tiedRows.length).toBeGreaterThan(0);
    expect(sklearnCases[2].expected.confusion.every((row) => row[4] === 0)).toBe(true);
  });

  describe.each(sklearnCases)('$name', ({ labels: y, probs: p, num_classes: k, expected }) => {
    it('ACC and AUC (MedMNIST evaluator)', () => {
      close(accuracy(y, p, k), expected.accuracy);
      perClassAuc(y, p, k).forEach((auc, c) => close(auc, expected.auc_per_class[c]));
      close(multiclassAuc(y, p, k), expected.auc);
    });

    it('QWK, macro-F1, balanced accuracy', () => {
      close(quadraticWeightedKappa(y, p, k), expected.qwk);
      close(macroF1(y, p, k), expected.f1_macro);
      close(balancedAccuracy(y, p, k), expected.balanced_accuracy);
    });

    it('confusion matrix and per-class metrics', () => {
      expect(confusionMatrix(y, p, k)).toEqual(expected.confusion);
      perClassMetrics(y, p, k).forEach((got, c) => {
        close(got.precision, expected.precision[c]);
        close(got.recall, expected.recall[c]);
        close(got.f1, expected.f1[c]);
        expect(got.support).toBe(expected.support[c]);
      });
    });
  });
});
