// The training loop's rules, without training: which epoch is selected, when early stopping ends a
// run, and the exponential moving average of the weights.
import { describe, expect, it } from 'vitest';
import { BatchNorm2d } from '../../src/nn/index.js';
import * as torch from '../../src/torch/index.js';
import { FRESH_STATE } from '../../src/train/checkpoint.js';
import { emaDecay, selectsEpoch, stopsEarly, updateEma } from '../../src/train/loop.js';

describe('selectsEpoch', () => {
  it('always keeps the first epoch, whatever it scores', () => {
    for (const score of [NaN, -Infinity, 0, 0.3, 1]) expect(selectsEpoch(FRESH_STATE, score)).toBe(true);
  });

  it('selects a strictly better score only: a tie keeps the earlier epoch', () => {
    const state = { bestEpoch: 2, bestScore: 0.5 };
    expect(selectsEpoch(state, 0.6)).toBe(true);
    expect(selectsEpoch(state, 0.5)).toBe(false);
    expect(selectsEpoch(state, 0.4)).toBe(false);
  });

  it('ranks NaN lowest: below any number, and never above a kept NaN epoch', () => {
    expect(selectsEpoch({ bestEpoch: 3, bestScore: 0 }, NaN)).toBe(false);
    expect(selectsEpoch({ bestEpoch: 3, bestScore: -1 }, NaN)).toBe(false);
    // A first epoch that scored NaN is stored as -Infinity (the loop does so): a later number beats it, a later NaN does not.
    const afterNaN = { bestEpoch: 1, bestScore: -Infinity };
    expect(selectsEpoch(afterNaN, -0.5)).toBe(true);
    expect(selectsEpoch(afterNaN, NaN)).toBe(false);
  });

  it('selects any score once the selection was reset (bestEpoch -1, as resumeFrom does in the crash window)', () => {
    expect(selectsEpoch({ bestEpoch: -1, bestScore: -Infinity }, NaN)).toBe(true);
  });
});

describe('stopsEarly', () => {
  it('stops once `patience` epochs passed without a new best', () => {
    expect(stopsEarly(1, 1, 1)).toBe(false);
    expect(stopsEarly(1, 2, 1)).toBe(true);
    expect(stopsEarly(3, 4, 2)).toBe(false);
    expect(stopsEarly(3, 5, 2)).toBe(true);
    expect(stopsEarly(3, 5, 5)).toBe(false);
  });

  it('never stops with patience 0', () => {
    for (const [done, best] of [
      [1, 1],
      [10, 1],
      [100, -1],
      [1000, 0],
    ] as const)
      expect(stopsEarly(0, done, best)).toBe(false);
  });
});

describe('emaDecay', () => {
  it('warms up as (1+t)/(10+t) and is capped by the configured decay', () => {
    expect(emaDecay(0.999, 0)).toBeCloseTo(0.1, 12);
    expect(emaDecay(0.999, 10)).toBeCloseTo(11 / 20, 12);
    expect(emaDecay(0.999, 990)).toBeCloseTo(991 / 1000, 12);
    expect(emaDecay(0.9, 80)).toBeCloseTo(0.9, 12); // 81/90 reaches the cap exactly
    expect(emaDecay(0.9, 10_000)).toBe(0.9);
    expect(emaDecay(0.05, 0)).toBe(0.05); // a decay below the warm-up's start is used from step 0
  });

  it('never decreases from step to step and never exceeds the decay', () => {
    let previous = 0;
    for (let t = 0; t < 1000; t++) {
      const d = emaDecay(0.99, t);
      expect(d).toBeGreaterThanOrEqual(previous);
      expect(d).toBeLessThanOrEqual(0.99);
      previous = d;
    }
    expect(previous).toBe(0.99); // reached at t = 881
  });
});

describe('updateEma', () => {
  /** A batch-norm layer: float parameters and running statistics, and an int64 num_batches_tracked. */
  function layer(fill: { weight: number; bias: number; mean: number; variance: number }): BatchNorm2d {
    const bn = new BatchNorm2d(3);
    torch.noGrad(() => {
      bn.weight.fillInPlace(fill.weight);
      bn.bias.fillInPlace(fill.bias);
      bn.runningMean.fillInPlace(fill.mean);
      bn.runningVar.fillInPlace(fill.variance);
    });
    return bn;
  }
  const values = (t: torch.Tensor): number[] => Array.from(t.data() as Float32Array);

  it('moves float tensors to decay*ema + (1-decay)*model and copies integer buffers', () => {
    const ema = layer({ weight: 0, bias: 2, mean: 1, variance: 1 });
    const model = layer({ weight: 1, bias: -2, mean: 5, variance: 3 });
    // Three training-mode forwards: the model's num_batches_tracked becomes 3 (the EMA's stays 0).
    torch.tidy(() => {
      const x = new torch.Generator(1).normal([4, 3, 2, 2]);
      for (let i = 0; i < 3; i++) model.forward(x);
    });
    torch.noGrad(() => {
      model.runningMean.fillInPlace(5);
      model.runningVar.fillInPlace(3);
    });
    updateEma(ema, model, 0.9);

    const state = ema.stateDict();
    for (const v of values(state.get('weight')!)) expect(v).toBeCloseTo(0.1, 6);
    for (const v of values(state.get('bias')!)) expect(v).toBeCloseTo(0.9 * 2 + 0.1 * -2, 6);
    for (const v of values(state.get('running_mean')!)) expect(v).toBeCloseTo(0.9 * 1 + 0.1 * 5, 6);
    for (const v of values(state.get('running_var')!)) expect(v).toBeCloseTo(0.9 * 1 + 0.1 * 3, 6);
    const tracked = state.get('num_batches_tracked')!;
    expect(tracked.dtype).toBe('int64');
    expect(tracked.data()[0]).toBe(3n); // copied, not interpolated to 0.3 (or truncated to 0)

    // The model itself is left as it was.
    for (const v of values(model.weight)) expect(v).toBe(1);
    expect(model.stateDict().get('num_batches_tracked')!.data()[0]).toBe(3n);
    ema.dispose();
    model.dispose();
  });

  it('repeated updates converge geometrically toward the model', () => {
    const ema = layer({ weight: 0, bias: 0, mean: 0, variance: 1 });
    const model = layer({ weight: 1, bias: 0, mean: 0, variance: 1 });
    for (let i = 0; i < 5; i++) updateEma(ema, model, 0.5);
    for (const v of values(ema.weight)) expect(v).toBeCloseTo(1 - 0.5 ** 5, 6);
    updateEma(ema, model, 0); // decay 0: the model's values exactly
    expect(values(ema.weight)).toEqual([1, 1, 1]);
    ema.dispose();
    model.dispose();
  });
});
