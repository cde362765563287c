import { describe, expect, it } from 'vitest';
import { chooseUncertaintyThreshold, coverageAt, coverageCurve, normalizedEntropy } from '../../src/eval/index.js';

describe('uncertainty', () => {
  it('normalized entropy: 0 when certain, 1 when uniform', () => {
    expect(normalizedEntropy([1, 0, 0, 0])).toBe(0);
    expect(normalizedEntropy([0.25, 0.25, 0.25, 0.25])).toBeCloseTo(1, 12);
    expect(normalizedEntropy([0.5, 0.5, 0, 0])).toBeCloseTo(0.5, 12);
  });

  // Four images, K = 2: entropies rise down the rows; the two most certain are right.
  //   p        [1, 0]  [0.9, 0.1]  [0.3, 0.7]  [0.5, 0.5]
  //   label    0       0           0           1
  //   correct  yes     yes         no          no (argmax takes class 0 on the tie)
  const labels = [0, 0, 0, 1];
  const probs = [
    [1, 0],
    [0.9, 0.1],
    [0.3, 0.7],
    [0.5, 0.5],
  ];
  const h = probs.map(normalizedEntropy);

  it('coverage/accuracy curve from keeping all to keeping the most certain', () => {
    expect(coverageCurve(labels, probs, 2)).toEqual([
      { threshold: h[3], coverage: 1, accuracy: 0.5 },
      { threshold: h[2], coverage: 0.75, accuracy: 2 / 3 },
      { threshold: h[1], coverage: 0.5, accuracy: 1 },
      { threshold: 0, coverage: 0.25, accuracy: 1 },
    ]);
    expect(coverageAt(labels, probs, 2, (h[1] + h[2]) / 2)).toEqual({ threshold: (h[1] + h[2]) / 2, coverage: 0.5, accuracy: 1 });
  });

  it('the threshold refers the chosen fraction of images', () => {
    expect(chooseUncertaintyThreshold(probs, 2, 0.25)).toBe(h[2]);
    expect(chooseUncertaintyThreshold(probs, 2, 0.5)).toBe(h[1]);
    expect(chooseUncertaintyThreshold(probs, 2, 0)).toBe(1);
    expect(() => chooseUncertaintyThreshold(probs, 2, 1)).toThrow(/referFraction must lie in \[0, 1\), got 1/);
  });
});
