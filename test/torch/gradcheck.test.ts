// Autograd check: for every differentiable op, libtorch's backward must match central finite
// differences in float64. Each case projects the op's output onto fixed random weights, so the
// check covers the whole vector-Jacobian product (a plain sum would hide softmax's gradient).
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

interface InputSpec {
  shape: number[];
  /** Draw from [0.5, 2] instead of N(0, 1), for log, sqrt, pow and divisors. */
  positive?: boolean;
}
interface GradCase {
  name: string;
  inputs: InputSpec[];
  fn: (xs: Tensor[]) => Tensor;
}

const EPS = 1e-6;
const any = (...shape: number[]): InputSpec => ({ shape });
const positive = (...shape: number[]): InputSpec => ({ shape, positive: true });
const long = (values: number[], shape = [values.length]): Tensor => torch.tensor(BigInt64Array.from(values, BigInt), shape);
const mask = (values: number[], shape: number[]): Tensor => torch.tensor(Uint8Array.from(values), shape, 'bool');

/** Returns, per input, the largest gap between analytic and numeric gradients (relative above 1). */
function gradientErrors(c: GradCase, seed: number): number[] {
  return torch.tidy(() => {
    const gen = new torch.Generator(seed);
    const values = c.inputs.map(
      (spec) =>
        (spec.positive ? gen.uniform(spec.shape, 0.5, 2, 'float64') : gen.normal(spec.shape, 0, 1, 'float64')).data() as Float64Array,
    );
    const build = (vals: Float64Array[]): Tensor[] => vals.map((v, i) => torch.tensor(v, c.inputs[i]!.shape, 'float64'));
    const projection = gen.normal(c.fn(build(values)).shape, 0, 1, 'float64');
    const loss = (xs: Tensor[]): Tensor => c.fn(xs).mul(projection).sum();

    const leaves = build(values);
    for (const leaf of leaves) leaf.requiresGrad = true;
    loss(leaves).backward();

    return values.map((v, i) => {
      const analytic = leaves[i]!.grad?.toArray() ?? new Array<number>(v.length).fill(0);
      let worst = 0;
      for (let j = 0; j < v.length; j++) {
        const lossWith = (delta: number): number =>
          torch.tidy(() => {
            const shifted = values.map((w) => Float64Array.from(w));
            shifted[i]![j]! += delta;
            return torch.noGrad(() => loss(build(shifted)).item());
          });
        const numeric = (lossWith(EPS) - lossWith(-EPS)) / (2 * EPS);
        worst = Math.max(worst, Math.abs(analytic[j]! - numeric) / Math.max(1, Math.abs(numeric)));
      }
      return worst;
    });
  });
}

const cases: GradCase[] = [
  // elementwise
  { name: 'add with broadcasting and alpha', inputs: [any(2, 3), any(3)], fn: ([a, b]) => a!.add(b!, 0.7) },
  { name: 'sub', inputs: [any(2, 3), any(2, 1)], fn: ([a, b]) => a!.sub(b!) },
  { name: 'mul', inputs: [any(2, 3), any(2, 3)], fn: ([a, b]) => a!.mul(b!) },
  { name: 'div', inputs: [any(2, 3), positive(3)], fn: ([a, b]) => a!.div(b!) },
  { name: 'pow (scalar exponent)', inputs: [positive(5)], fn: ([a]) => a!.pow(2.5) },
  { name: 'pow (tensor exponent)', inputs: [positive(4), any(4)], fn: ([a, b]) => a!.pow(b!) },
  { name: 'exp', inputs: [any(5)], fn: ([a]) => a!.exp() },
  { name: 'log', inputs: [positive(5)], fn: ([a]) => a!.log() },
  { name: 'sqrt', inputs: [positive(5)], fn: ([a]) => a!.sqrt() },
  { name: 'abs', inputs: [any(6)], fn: ([a]) => a!.abs() },
  { name: 'clamp', inputs: [any(8)], fn: ([a]) => a!.clamp(-0.5, 0.5) },
  { name: 'clamp (min only)', inputs: [any(8)], fn: ([a]) => a!.clamp(0.2) },
  { name: 'relu', inputs: [any(8)], fn: ([a]) => a!.relu() },
  { name: 'leakyRelu', inputs: [any(8)], fn: ([a]) => a!.leakyRelu(0.1) },
  { name: 'gelu', inputs: [any(8)], fn: ([a]) => a!.gelu() },
  { name: 'gelu (tanh approximation)', inputs: [any(8)], fn: ([a]) => a!.gelu('tanh') },
  { name: 'silu', inputs: [any(8)], fn: ([a]) => a!.silu() },
  { name: 'sigmoid', inputs: [any(8)], fn: ([a]) => a!.sigmoid() },
  { name: 'tanh', inputs: [any(8)], fn: ([a]) => a!.tanh() },
  { name: 'softmax', inputs: [any(3, 4)], fn: ([a]) => a!.softmax(1) },
  { name: 'logSoftmax', inputs: [any(3, 4)], fn: ([a]) => a!.logSoftmax(-1) },
  { name: 'where', inputs: [any(2, 3), any(2, 3)], fn: ([a, b]) => torch.where(mask([1, 0, 1, 0, 0, 1], [2, 3]), a!, b!) },
  { name: 'maskedFill', inputs: [any(2, 3)], fn: ([a]) => a!.maskedFill(mask([1, 0, 0, 1, 0, 1], [2, 3]), 3) },

  // linear algebra and neural-network kernels
  { name: 'matmul (batched, broadcast)', inputs: [any(2, 3, 4), any(4, 2)], fn: ([a, b]) => a!.matmul(b!) },
  { name: 'linear', inputs: [any(3, 4), any(2, 4), any(2)], fn: ([x, w, b]) => torch.linear(x!, w!, b!) },
  { name: 'conv2d', inputs: [any(1, 2, 5, 5), any(3, 2, 3, 3), any(3)], fn: ([x, w, b]) => torch.conv2d(x!, w!, b!) },
  {
    name: 'conv2d stride 2 padding 1',
    inputs: [any(1, 2, 5, 5), any(2, 2, 3, 3)],
    fn: ([x, w]) => torch.conv2d(x!, w!, undefined, { stride: 2, padding: 1 }),
  },
  {
    name: 'conv2d dilation 2 asymmetric padding',
    inputs: [any(1, 1, 6, 6), any(2, 1, 3, 3), any(2)],
    fn: ([x, w, b]) => torch.conv2d(x!, w!, b!, { dilation: 2, padding: [1, 2] }),
  },
  {
    name: 'conv2d groups 2',
    inputs: [any(2, 4, 4, 4), any(4, 2, 2, 2), any(4)],
    fn: ([x, w, b]) => torch.conv2d(x!, w!, b!, { groups: 2, stride: [1, 2] }),
  },
  {
    name: 'batchNorm (training, batch statistics)',
    inputs: [any(3, 2, 2, 2), any(2), any(2)],
    fn: ([x, weight, bias]) => torch.batchNorm(x!, { weight, bias, training: true }),
  },
  {
    name: 'batchNorm (eval, running statistics)',
    inputs: [any(3, 2, 2, 2), any(2), any(2)],
    fn: ([x, weight, bias]) =>
      torch.batchNorm(x!, {
        weight,
        bias,
        runningMean: torch.tensor([0.1, -0.2], [2], 'float64'),
        runningVar: torch.tensor([0.5, 2], [2], 'float64'),
        training: false,
      }),
  },
  { name: 'maxPool2d', inputs: [any(1, 2, 5, 5)], fn: ([x]) => torch.maxPool2d(x!, 3, { stride: 2, padding: 1 }) },
  {
    name: 'maxPool2d dilation, ceil mode',
    inputs: [any(1, 1, 6, 6)],
    fn: ([x]) => torch.maxPool2d(x!, 2, { stride: 2, dilation: 2, ceilMode: true }),
  },
  { name: 'avgPool2d', inputs: [any(1, 2, 5, 5)], fn: ([x]) => torch.avgPool2d(x!, 3, { stride: 2, padding: 1, countIncludePad: false }) },
  { name: 'adaptiveAvgPool2d', inputs: [any(1, 2, 5, 5)], fn: ([x]) => torch.adaptiveAvgPool2d(x!, [2, 3]) },
  { name: 'interpolate bilinear', inputs: [any(1, 2, 3, 4)], fn: ([x]) => torch.interpolate(x!, [5, 7]) },
  {
    name: 'interpolate bilinear alignCorners',
    inputs: [any(1, 1, 3, 4)],
    fn: ([x]) => torch.interpolate(x!, [4, 6], { alignCorners: true }),
  },
  {
    name: 'interpolate bilinear antialiased downscale',
    inputs: [any(1, 1, 6, 6)],
    fn: ([x]) => torch.interpolate(x!, [3, 2], { antialias: true }),
  },
  { name: 'interpolate nearest', inputs: [any(1, 2, 3, 4)], fn: ([x]) => torch.interpolate(x!, [5, 7], { mode: 'nearest' }) },
  {
    name: 'gridSample bilinear (input and grid)',
    inputs: [any(1, 2, 4, 5), any(1, 3, 3, 2)],
    fn: ([x, grid]) => torch.gridSample(x!, grid!.mul(0.8)),
  },
  {
    name: 'gridSample bilinear border, alignCorners',
    inputs: [any(1, 1, 4, 4), any(1, 2, 3, 2)],
    fn: ([x, grid]) => torch.gridSample(x!, grid!, { paddingMode: 'border', alignCorners: true }),
  },
  {
    name: 'gridSample nearest reflection',
    inputs: [any(1, 1, 4, 4), any(1, 2, 3, 2)],
    fn: ([x, grid]) => torch.gridSample(x!, grid!, { mode: 'nearest', paddingMode: 'reflection' }),
  },
  { name: 'affineGrid', inputs: [any(2, 2, 3)], fn: ([theta]) => torch.affineGrid(theta!, [2, 1, 3, 4]) },
  {
    name: 'affineGrid into gridSample',
    inputs: [any(1, 1, 4, 4), any(1, 2, 3)],
    fn: ([x, theta]) => torch.gridSample(x!, torch.affineGrid(theta!.mul(0.5), [1, 1, 3, 3], true), { alignCorners: true }),
  },

  // shapes and indexing
  { name: 'reshape and permute', inputs: [any(2, 3, 4)], fn: ([a]) => a!.permute([2, 0, 1]).reshape([4, -1]) },
  { name: 'cat', inputs: [any(2, 3), any(1, 3)], fn: ([a, b]) => torch.cat([a!, b!], 0) },
  { name: 'stack', inputs: [any(2, 3), any(2, 3)], fn: ([a, b]) => torch.stack([a!, b!], 1) },
  { name: 'slice with step', inputs: [any(2, 6)], fn: ([a]) => a!.slice(1, 1, 6, 2) },
  { name: 'indexSelect (repeated index)', inputs: [any(3, 4)], fn: ([a]) => a!.indexSelect(1, long([2, 0, 2])) },
  { name: 'gather', inputs: [any(2, 4)], fn: ([a]) => a!.gather(1, long([3, 0, 1, 1, 2, 2], [2, 3])) },
  { name: 'flip', inputs: [any(2, 3, 2)], fn: ([a]) => a!.flip([0, 2]) },
  { name: 'pad constant', inputs: [any(1, 2, 3)], fn: ([a]) => a!.pad([1, 2, 0, 1], 'constant', 0.5) },
  { name: 'pad reflect', inputs: [any(1, 1, 3, 4)], fn: ([a]) => a!.pad([2, 1, 1, 2], 'reflect') },
  { name: 'pad replicate', inputs: [any(1, 1, 3, 3)], fn: ([a]) => a!.pad([1, 2, 2, 0], 'replicate') },

  // reductions
  { name: 'sum over dims, keepdim', inputs: [any(2, 3, 4)], fn: ([a]) => a!.sum([0, 2], true) },
  { name: 'sum of all', inputs: [any(2, 3)], fn: ([a]) => a!.sum() },
  { name: 'mean', inputs: [any(2, 3, 4)], fn: ([a]) => a!.mean(1) },
  { name: 'max over a dim', inputs: [any(3, 4)], fn: ([a]) => a!.max(1) },
  { name: 'min of all', inputs: [any(3, 4)], fn: ([a]) => a!.min() },
  { name: 'var (unbiased) over a dim', inputs: [any(3, 4)], fn: ([a]) => a!.var(1, true, true) },
  { name: 'var (biased) of all', inputs: [any(3, 4)], fn: ([a]) => a!.var(undefined, false) },
  { name: 'logsumexp', inputs: [any(3, 4)], fn: ([a]) => a!.logsumexp(1) },
  { name: 'cumsum', inputs: [any(3, 4)], fn: ([a]) => a!.cumsum(1) },
];

describe('gradients match central finite differences (float64)', () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', (_name, c, i) => {
    const errors = gradientErrors(c, 100 + i);
    for (const error of errors) expect(error).toBeLessThan(1e-6);
  });

  it('the check is sharp: a wrong gradient is caught', () => {
    // x * detach(x) has derivative x, not 2x: finite differences see 2x, so the error is large.
    const wrong: GradCase = { name: 'x * detach(x)', inputs: [any(4)], fn: ([a]) => a!.mul(a!.detach()) };
    expect(Math.max(...gradientErrors(wrong, 1))).toBeGreaterThan(0.1);
  });
});
