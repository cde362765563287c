import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { CrossEntropy, CumulativeOrdinal, FocalLoss } from '../../src/nn/losses.js';

// Values from PyTorch 1.13 (test/fixtures/nn/make_loss_fixture.py).
const ref = JSON.parse(readFileSync(new URL('../fixtures/nn/losses.json', import.meta.url), 'utf8')) as Record<string, number> & {
  logits: number[][];
  labels: number[];
  weights: number[];
};
const logits = torch.tensor(ref.logits.flat(), [6, 5], 'float64');
const labels = torch.tensor(ref.labels, [6], 'int64');

describe('losses match PyTorch', () => {
  it.each([
    ['plain cross-entropy', new CrossEntropy(5), ref.ce],
    ['class-weighted cross-entropy', new CrossEntropy(5, ref.weights), ref.ce_weighted],
    ['label smoothing 0.1', new CrossEntropy(5, undefined, 0.1), ref.ce_smoothed],
    ['weighted and smoothed', new CrossEntropy(5, ref.weights, 0.1), ref.ce_weighted_smoothed],
    ['focal gamma 4, datasheet alpha', new FocalLoss(5, 4, ref.weights), ref.focal_gamma4_alpha],
    ['focal gamma 0 is cross-entropy', new FocalLoss(5, 0), ref.focal_gamma0],
  ])('%s', (_name, objective, expected) => {
    expect(objective.loss(logits, labels).item()).toBeCloseTo(expected, 10);
  });

  it('focal loss down-weights confident correct predictions relative to cross-entropy', () => {
    const confident = torch.tensor([8, 0, 0, 0, 0], [1, 5], 'float64');
    const label = torch.tensor([0], [1], 'int64');
    expect(new FocalLoss(5, 4).loss(confident, label).item()).toBeLessThan(1e-6 * new CrossEntropy(5).loss(confident, label).item());
  });

  it('keeps gradients finite for gamma below 1 on a certain, correct prediction', () => {
    // p = 1 exactly in float32: (1 - p)^0.5 has an infinite derivative at 0.
    const logits = torch.tensor([120, 0, 0, 0, 0, 0, 3, 0, 0, 0], [2, 5]);
    logits.requiresGrad = true;
    new FocalLoss(5, 0.5).loss(logits, torch.tensor([0, 1], [2], 'int64')).backward();
    const grad = logits.grad!.toArray();
    expect(grad.every(Number.isFinite)).toBe(true);
    expect(grad.some((g) => g !== 0)).toBe(true);
  });
});

describe('cumulative ordinal objective', () => {
  const objective = new CumulativeOrdinal(5);

  it('has K-1 outputs and gives K probabilities that sum to one', () => {
    expect(objective.outputs).toBe(4);
    const out = torch.tensor([2, 1, -1, -3, -1, 0.5, 0.7, 2, 0, 0, 0, 0], [3, 4]);
    const p = objective.probabilities(out);
    expect(p.shape).toEqual([3, 5]);
    const rows = p.sum(1).toArray();
    for (const s of rows) expect(s).toBeCloseTo(1, 6);
    expect(Math.min(...p.toArray())).toBeGreaterThanOrEqual(0);
  });

  it('turns cumulative probabilities into class probabilities', () => {
    // P(>0)=0.9, P(>1)=0.6, P(>2)=0.3, P(>3)=0.1 -> classes 0.1, 0.3, 0.3, 0.2, 0.1
    const logit = (p: number): number => Math.log(p / (1 - p));
    const p = objective.probabilities(torch.tensor([0.9, 0.6, 0.3, 0.1].map(logit), [1, 4])).toArray();
    [0.1, 0.3, 0.3, 0.2, 0.1].forEach((expected, k) => expect(p[k]).toBeCloseTo(expected, 5));
  });

  it('loss is binary cross-entropy on the thresholds a grade exceeds', () => {
    // Zero logits: every threshold has p = 0.5, so the loss is 4 * ln 2 whatever the grade.
    const loss = objective.loss(torch.zeros([2, 4]), torch.tensor([0, 4], [2], 'int64')).item();
    expect(loss).toBeCloseTo(4 * Math.log(2), 6);
    // Confidently right (grade 2: exceeds thresholds 0 and 1 only) costs almost nothing.
    const right = objective.loss(torch.tensor([20, 20, -20, -20], [1, 4]), torch.tensor([2], [1], 'int64')).item();
    expect(right).toBeLessThan(1e-6);
  });
});
