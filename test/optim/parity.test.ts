// Optimizers, gradient clipping and schedules against PyTorch's own (values written by
// test/fixtures/torch/make_fixtures.py).
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import { clipGradNorm, multiStepLr, oneCycleLr } from '../../src/optim/index.js';
import { expectClose, fromRef, reference } from '../torch/reference.js';
import { makeOptimizer, makeParams, trainStep } from './problem.js';

describe('optimizers follow torch.optim step by step (float64)', () => {
  it.each(reference.optim.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const params = makeParams();
    const optimizer = makeOptimizer(c.kind, params, c.options);
    for (const expected of c.trajectory) {
      trainStep(optimizer);
      const [p0, p1] = params.map((p) => p.toArray());
      p0!.forEach((v, i) => expect(v).toBeCloseTo(expected.p0[i]!, 12));
      p1!.forEach((v, i) => expect(v).toBeCloseTo(expected.p1[i]!, 12));
    }
    optimizer.dispose();
    for (const p of params) p.dispose();
  });
});

describe('clipGradNorm matches torch.nn.utils.clip_grad_norm_', () => {
  it.each(reference.clip_grad_norm.map((c) => [c.max_norm, c] as const))('maxNorm %d', (_maxNorm, c) =>
    torch.tidy(() => {
      const params = c.grads.map((g) => torch.zeros(g.shape));
      params.forEach((p, i) => {
        p.requiresGrad = true;
        // The gradient of sum(p * g) with respect to p is g.
        p.mul(fromRef(c.grads[i]!)).sum().backward();
      });
      expect(clipGradNorm(params, c.max_norm)).toBeCloseTo(c.total_norm, 5);
      params.forEach((p, i) => expectClose(p.grad!, c.clipped[i]!, 1e-6));
    }),
  );

  it('returns 0 and changes nothing when no parameter has a gradient', () =>
    torch.tidy(() => {
      const p = torch.ones([3]);
      p.requiresGrad = true;
      expect(clipGradNorm([p], 1)).toBe(0);
      expect(p.grad).toBeUndefined();
    }));
});

describe('schedules match torch.optim.lr_scheduler', () => {
  it('multiStepLr equals MultiStepLR (with a repeated milestone)', () => {
    const { options, lrs } = reference.schedules.multistep;
    const schedule = multiStepLr(options);
    lrs.forEach((lr, step) => expect(schedule(step)).toBeCloseTo(lr, 15));
  });

  it.each(reference.schedules.one_cycle.map((c) => [JSON.stringify(c.options), c] as const))(
    'oneCycleLr equals OneCycleLR %s',
    (_name, c) => {
      const schedule = oneCycleLr(c.options);
      c.lrs.forEach((lr, step) => expect(schedule(step)).toBeCloseTo(lr, 15));
    },
  );
});
