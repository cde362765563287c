import { describe, expect, it } from 'vitest';
import {
  applyTemperature,
  expectedCalibrationError,
  fitTemperature,
  negativeLogLikelihood,
  reliabilityBins,
} from '../../src/eval/index.js';

/** A small seeded generator (the tests need no statistical quality beyond uniformity). */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/**
 * Labels drawn from softmax(logits / trueT) while the model reports softmax(logits): a model
 * overconfident by a known temperature.
 */
function overconfident(trueT: number, count: number, K = 5) {
  const random = generator(42);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const labels: number[] = [];
  const reported: number[] = [];
  for (let i = 0; i < count; i++) {
    const logits = Array.from({ length: K }, () => 3 * gaussian());
    const softmax = (t: number) => {
      const e = logits.map((z) => Math.exp(z / t));
      const sum = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / sum);
    };
    const truth = softmax(trueT);
    let u = random();
    let label = 0;
    while (label < K - 1 && u >= truth[label]) u -= truth[label++];
    labels.push(label);
    reported.push(...softmax(1));
  }
  return { labels, reported, K };
}

describe('temperature scaling', () => {
  it('T = 1 changes nothing; T = 2 is the square root renormalized', () => {
    const p = [0.5, 0.25, 0.25, 0.64, 0.36, 0];
    expect(Array.from(applyTemperature(p.slice(0, 3), 3, 1))).toEqual([0.5, 0.25, 0.25].map((v) => expect.closeTo(v, 12)));
    const sqrt = [Math.sqrt(0.5), 0.5, 0.5];
    const sum = sqrt.reduce((a, b) => a + b, 0);
    expect(Array.from(applyTemperature(p.slice(0, 3), 3, 2))).toEqual(sqrt.map((v) => expect.closeTo(v / sum, 12)));
    expect(() => applyTemperature(p, 3, 0)).toThrow(/temperature must be a positive number, got 0/);
  });

  it('recovers a known temperature from synthetic logits, and lowers NLL and ECE', () => {
    for (const trueT of [0.5, 2.5]) {
      const { labels, reported, K } = overconfident(trueT, 4000);
      const fitted = fitTemperature(labels, reported, K);
      expect(fitted).toBeGreaterThan(trueT * 0.9);
      expect(fitted).toBeLessThan(trueT * 1.1);
      const scaled = applyTemperature(reported, K, fitted);
      expect(negativeLogLikelihood(labels, scaled, K)).toBeLessThan(negativeLogLikelihood(labels, reported, K));
      expect(expectedCalibrationError(labels, scaled, K)).toBeLessThan(expectedCalibrationError(labels, reported, K) / 2);
      expect(expectedCalibrationError(labels, scaled, K)).toBeLessThan(0.03);
    }
  });

  it('reliability bins count every sample and match ECE', () => {
    const { labels, reported, K } = overconfident(2.5, 500);
    const bins = reliabilityBins(labels, reported, K);
    expect(bins.reduce((n, b) => n + b.count, 0)).toBe(500);
    const ece = bins.reduce((sum, b) => (b.count ? sum + (b.count / 500) * Math.abs(b.accuracy - b.confidence) : sum), 0);
    expect(ece).toBeCloseTo(expectedCalibrationError(labels, reported, K), 12);
  });
});
