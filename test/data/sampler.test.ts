import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { ShuffleSampler, WeightedRandomSampler, classCounts, classWeights } from '../../src/data/sampler.js';

// RetinaMNIST's train histogram over grades 0..4.
const TRAIN_COUNTS = [486, 128, 206, 194, 66];
const trainLabels = TRAIN_COUNTS.flatMap((count, grade) => new Array<number>(count).fill(grade));

describe('WeightedRandomSampler', () => {
  it('balances the classes when weighted by inverse class frequency', () => {
    const sampler = WeightedRandomSampler.balanced(trainLabels, 5, 100_000);
    const indices = sampler.epoch(new torch.Generator(0));
    expect(indices.length).toBe(100_000);
    const drawn = classCounts(
      Array.from(indices, (i) => trainLabels[i]!),
      5,
    );
    for (const count of drawn) expect(Math.abs(count / 100_000 - 0.2)).toBeLessThan(0.01);
  });

  it('draws each index in proportion to its weight', () => {
    const indices = new WeightedRandomSampler([1, 0, 3, 6], 50_000).epoch(new torch.Generator(1));
    const frequency = classCounts(indices, 4).map((n) => n / 50_000);
    expect(frequency[1]).toBe(0);
    [0.1, 0, 0.3, 0.6].forEach((p, i) => expect(Math.abs(frequency[i]! - p)).toBeLessThan(0.01));
  });

  it('is reproducible from the seed and differs between epochs', () => {
    const sampler = WeightedRandomSampler.balanced(trainLabels, 5);
    expect(sampler.epoch(new torch.Generator(4))).toEqual(sampler.epoch(new torch.Generator(4)));
    const gen = new torch.Generator(4);
    expect(sampler.epoch(gen)).not.toEqual(sampler.epoch(gen));
  });

  it('rejects unusable weights', () => {
    expect(() => new WeightedRandomSampler([0, 0])).toThrow(/all weights are zero/);
    expect(() => new WeightedRandomSampler([1, -1])).toThrow(/weight 1 is -1/);
    expect(() => WeightedRandomSampler.balanced([0, 5], 5)).toThrow(/label 1 is 5/);
  });
});

describe('ShuffleSampler', () => {
  it('visits every index once per epoch in a seeded random order', () => {
    const sampler = new ShuffleSampler(1080);
    const gen = new torch.Generator(2);
    const first = sampler.epoch(gen);
    expect(Array.from(first).sort((a, b) => a - b)).toEqual(Array.from({ length: 1080 }, (_, i) => i));
    expect(first).not.toEqual(sampler.epoch(gen));
    expect(first).toEqual(sampler.epoch(new torch.Generator(2)));
  });
});

describe('classWeights', () => {
  const mean = (w: number[]): number => w.reduce((a, b) => a + b, 0) / w.length;

  it('weights classes by inverse frequency, normalized to mean 1', () => {
    const weights = classWeights(trainLabels, 5, 'inverse');
    expect(mean(weights)).toBeCloseTo(1, 12);
    // Inverse frequency: weight times count is the same for every class.
    weights.forEach((w, k) => expect(w * TRAIN_COUNTS[k]!).toBeCloseTo(weights[0]! * TRAIN_COUNTS[0]!, 9));
  });

  it('weights by the inverse square root of the frequency', () => {
    const weights = classWeights(trainLabels, 5, 'sqrt-inverse');
    expect(mean(weights)).toBeCloseTo(1, 12);
    expect(weights[4]! / weights[0]!).toBeCloseTo(Math.sqrt(486 / 66), 9);
  });

  it('weights by the effective number of samples, between equal (beta 0) and inverse (beta -> 1)', () => {
    expect(classWeights(trainLabels, 5, 'effective-number', 0)).toEqual([1, 1, 1, 1, 1]);
    const weights = classWeights(trainLabels, 5, 'effective-number', 0.999);
    expect(mean(weights)).toBeCloseTo(1, 12);
    const effective = TRAIN_COUNTS.map((n) => (1 - 0.999 ** n) / (1 - 0.999));
    expect(weights[4]! / weights[0]!).toBeCloseTo(effective[0]! / effective[4]!, 9);
    const inverse = classWeights(trainLabels, 5, 'inverse');
    expect(weights[4]! / weights[0]!).toBeLessThan(inverse[4]! / inverse[0]!);
    expect(weights[4]! / weights[0]!).toBeGreaterThan(1);
  });

  it('refuses a class with no samples', () => {
    expect(() => classWeights([0, 1, 1], 3, 'inverse')).toThrow(/class 2 has no samples/);
  });
});
