// The fused Adam update (native/src/adam.cc) against the same update written as ATen ops, one op
// per line as torch.optim.Adam's single-tensor path writes it. Where ATen runs its AVX2 or AVX-512
// kernels, which fuse multiply-adds, the two must agree to the bit: the fused kernel then trains
// the same weights as the ops. (ATen's baseline kernels, on older CPUs or with
// ATEN_CPU_CAPABILITY=default, round each product on its own: there they agree to float32's
// precision.)
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

const cpuFlags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
const atenFusesMultiplyAdd = cpuFlags.includes('avx2') && cpuFlags.includes('fma') && process.env.ATEN_CPU_CAPABILITY !== 'default';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  step: number;
}

/** One Adam/AdamW step as separate ATen ops, on copies; returns [param, expAvg, expAvgSq]. */
function composedStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, h: Hyper): Tensor[] {
  const [p, m, v] = [param.clone(), expAvg.clone(), expAvgSq.clone()];
  let g = grad;
  if (h.weightDecay !== 0) {
    if (h.decoupled) p.mulInPlace(1 - h.lr * h.weightDecay);
    else g = g.add(p, h.weightDecay);
  }
  m.lerpInPlace(g, 1 - h.beta1);
  torch.addcmul(v.mulInPlace(h.beta2), g, g, v, 1 - h.beta2);
  const denominator = v
    .sqrt()
    .div(Math.sqrt(1 - h.beta2 ** h.step))
    .add(h.eps);
  torch.addcdiv(p, m, denominator, p, -h.lr / (1 - h.beta1 ** h.step));
  return [p, m, v];
}

function fusedStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, h: Hyper): Tensor[] {
  const [p, m, v] = [param.clone(), expAvg.clone(), expAvgSq.clone()];
  torch.adamStep(p, grad, m, v, {
    l2Decay: h.decoupled ? 0 : h.weightDecay,
    decayFactor: h.decoupled ? 1 - h.lr * h.weightDecay : 1,
    beta1: h.beta1,
    beta2: h.beta2,
    biasCorrection2Sqrt: Math.sqrt(1 - h.beta2 ** h.step),
    eps: h.eps,
    stepSize: -h.lr / (1 - h.beta1 ** h.step),
  });
  return [p, m, v];
}

/** Elements where two float tensors differ at all, and the largest difference relative to b's largest magnitude. */
function compare(a: Tensor, b: Tensor): { differing: number; worstRelative: number } {
  const [x, y] = [a.toArray(), b.toArray()];
  const scale = Math.max(...y.map(Math.abs));
  let differing = 0;
  let worst = 0;
  x.forEach((value, i) => {
    if (value === y[i]) return;
    differing++;
    worst = Math.max(worst, Math.abs(value - y[i]!));
  });
  return { differing, worstRelative: worst / scale };
}

const decays = [
  { name: 'no decay', weightDecay: 0, decoupled: false, beta1: 0.9 },
  { name: 'L2 decay (Adam)', weightDecay: 0.01, decoupled: false, beta1: 0.9 },
  { name: 'decoupled decay (AdamW)', weightDecay: 0.01, decoupled: true, beta1: 0.9 },
  // 1 - beta1 >= 0.5 takes lerp's other formula.
  { name: 'beta1 0.4', weightDecay: 0, decoupled: false, beta1: 0.4 },
];

describe('the fused Adam step', () => {
  // 5: shorter than a vector; 70_001: several parallel chunks and a ragged tail.
  it.each(decays.flatMap((d) => [5, 2560, 70_001].map((n) => [d.name, n, d] as const)))(
    '%s, %i elements, float32: equals the op-by-op update',
    (_name, n, decay) =>
      torch.tidy(() => {
        const gen = new torch.Generator(n);
        const param = gen.normal([n]);
        const grad = gen.normal([n]).mul(0.01);
        const expAvg = gen.normal([n]).mul(1e-3);
        const expAvgSq = gen.normal([n]).abs().mul(1e-5);
        const h: Hyper = { lr: 1e-3, beta2: 0.999, eps: 1e-8, step: 7, ...decay };
        const expected = composedStep(param, grad, expAvg, expAvgSq, h);
        const actual = fusedStep(param, grad, expAvg, expAvgSq, h);
        expected.forEach((e, i) => {
          const { differing, worstRelative } = compare(e, actual[i]!);
          if (atenFusesMultiplyAdd) expect(differing).toBe(0);
          else expect(worstRelative).toBeLessThan(1e-6);
        });
      }),
  );

  it('float64 and a first step (no history) agree with the op-by-op update', () =>
    torch.tidy(() => {
      const gen = new torch.Generator(1);
      const param = gen.normal([100]).to('float64');
      const grad = gen.normal([100]).to('float64');
      const zeros = torch.zeros([100], 'float64');
      const h: Hyper = { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0, decoupled: false, step: 1 };
      const expected = composedStep(param, grad, zeros, zeros, h);
      const actual = fusedStep(param, grad, zeros, zeros, h);
      expected.forEach((e, i) => expect(compare(e, actual[i]!).worstRelative).toBeLessThan(1e-15));
      // The first step moves every weight by lr against its gradient's sign (Adam's signature).
      const moved = actual[0]!.sub(param).toArray();
      grad.toArray().forEach((g, i) => expect(moved[i]).toBeCloseTo(-0.1 * Math.sign(g), 3));
    }));

  it('refuses a gradient or moment whose dtype or shape is not the parameter’s, and both kinds of decay at once', () =>
    torch.tidy(() => {
      const scalars = { l2Decay: 0, decayFactor: 1, beta1: 0.9, beta2: 0.999, biasCorrection2Sqrt: 1, eps: 1e-8, stepSize: -1e-3 };
      const p = torch.zeros([4]);
      expect(() => torch.adamStep(p, torch.zeros([5]), torch.zeros([4]), torch.zeros([4]), scalars)).toThrow(/dtype and shape/);
      expect(() => torch.adamStep(p, torch.zeros([4]), torch.zeros([4], 'float64'), torch.zeros([4]), scalars)).toThrow(/dtype and shape/);
      expect(() =>
        torch.adamStep(p, torch.zeros([4]), torch.zeros([4]), torch.zeros([4]), { ...scalars, l2Decay: 0.1, decayFactor: 0.9 }),
      ).toThrow(/not both/);
      expect(() =>
        torch.adamStep(torch.zeros([4], 'int64'), torch.zeros([4], 'int64'), torch.zeros([4], 'int64'), torch.zeros([4], 'int64'), scalars),
      ).toThrow(/adamStep/);
      expect(p.toArray()).toEqual([0, 0, 0, 0]);
    }));

  it('counts as an in-place change of the parameter: a graph that saved it refuses to backpropagate', () =>
    torch.tidy(() => {
      const scalars = { l2Decay: 0, decayFactor: 1, beta1: 0.9, beta2: 0.999, biasCorrection2Sqrt: 1, eps: 1e-8, stepSize: -1e-3 };
      const p = torch.ones([4]);
      p.requiresGrad = true;
      const loss = p.mul(p).sum(); // saves p for its gradient
      torch.noGrad(() => torch.adamStep(p, torch.ones([4]), torch.zeros([4]), torch.zeros([4]), scalars));
      expect(() => loss.backward()).toThrow(/modified by an inplace operation/);
    }));

  it('takes a non-contiguous gradient and refuses a non-contiguous parameter', () =>
    torch.tidy(() => {
      const scalars = { l2Decay: 0, decayFactor: 1, beta1: 0.9, beta2: 0.999, biasCorrection2Sqrt: 1, eps: 1e-8, stepSize: -1 };
      const grad = torch.tensor([1, 2, 3, 4, 5, 6], [2, 3]).transpose(0, 1);
      const p = torch.zeros([3, 2]);
      torch.adamStep(p, grad, torch.zeros([3, 2]), torch.zeros([3, 2]), scalars);
      // With no history and no bias correction each weight moves by 0.1 / sqrt(0.001) against the gradient's sign.
      for (const value of p.toArray()) expect(value).toBeCloseTo(-0.1 / Math.sqrt(0.001), 3);
      const transposed = torch.zeros([2, 3]).transpose(0, 1);
      expect(() => torch.adamStep(transposed, grad, torch.zeros([3, 2]), torch.zeros([3, 2]), scalars)).toThrow(/contiguous/);
    }));
});
