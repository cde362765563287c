// Layers with PyTorch's parameter names, shapes, defaults and initializations.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { recordMacs } from './flops.js';
import { defaultWeight } from './init.js';
import { Module } from './module.js';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  /** Stride, padding, dilation and groups as used (exporters read them). */
  readonly options: Readonly<Required<Omit<Conv2dOptions, 'bias'>>>;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dOptions = {},
  ) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true } = options;
    if (inChannels % groups || outChannels % groups) {
      throw new Error(`Conv2d: channels ${inChannels}->${outChannels} are not divisible by groups ${groups}`);
    }
    const [kh, kw] = pair(kernelSize);
    const fanIn = (inChannels / groups) * kh * kw;
    this.weight = this.parameter('weight', defaultWeight([outChannels, inChannels / groups, kh, kw], fanIn));
    this.bias = bias ? this.parameter('bias', defaultWeight([outChannels], fanIn)) : undefined;
    this.options = { stride, padding, dilation, groups };
  }

  forward(x: Tensor): Tensor {
    const y = torch.conv2d(x, this.weight, this.bias, this.options);
    recordMacs(() => (y.numel * this.weight.numel) / this.outChannels);
    return y;
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    this.weight = this.parameter('weight', defaultWeight([outFeatures, inFeatures], inFeatures));
    this.bias = bias ? this.parameter('bias', defaultWeight([outFeatures], inFeatures)) : undefined;
  }

  forward(x: Tensor): Tensor {
    const y = torch.linear(x, this.weight, this.bias);
    recordMacs(() => y.numel * this.inFeatures);
    return y;
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly #batchesTracked: Tensor;

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super();
    this.weight = this.parameter('weight', torch.ones([channels]));
    this.bias = this.parameter('bias', torch.zeros([channels]));
    this.runningMean = this.buffer('running_mean', torch.zeros([channels]));
    this.runningVar = this.buffer('running_var', torch.ones([channels]));
    this.#batchesTracked = this.buffer('num_batches_tracked', torch.zeros([], 'int64'));
  }

  /**
   * Set while data-parallel ranks train with synchronized batch norm (distributed/data-parallel.ts
   * `synchronizeBatchNorm`): sums a per-channel statistic over the ranks, differentiably, so that
   * training normalizes by the global batch's statistics instead of this rank's shard's.
   */
  sumOverRanks: ((t: Tensor) => Tensor) | undefined;

  forward(x: Tensor): Tensor {
    if (this.training) torch.noGrad(() => this.#batchesTracked.addInPlace(1));
    if (this.training && this.sumOverRanks) return this.#normalizeOverRanks(x, this.sumOverRanks);
    return torch.batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }

  /**
   * Training-mode batch norm with statistics of the global batch: the mean from the summed channel
   * sums and image counts, then the (biased) variance from the summed squared deviations from it,
   * two passes as at::batch_norm computes them. The running statistics take the unbiased variance.
   */
  #normalizeOverRanks(x: Tensor, sumOverRanks: (t: Tensor) => Tensor): Tensor {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const channels = [1, c, 1, 1];
    const sums = sumOverRanks(torch.cat([x.sum([0, 2, 3]), torch.full([1], n * h * w)]));
    const count = sums.slice(0, c, c + 1).item();
    const mean = sums.slice(0, 0, c).div(count);
    const centered = x.sub(mean.reshape(channels));
    const variance = sumOverRanks(centered.mul(centered).sum([0, 2, 3])).div(count);
    torch.noGrad(() => {
      this.runningMean.lerpInPlace(mean, this.momentum);
      this.runningVar.lerpInPlace(variance.mul(count / (count - 1)), this.momentum);
    });
    const scale = this.weight.div(variance.add(this.eps).sqrt());
    return centered.mul(scale.reshape(channels)).add(this.bias.reshape(channels));
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.p > 0 && this.training ? torch.dropout(x, this.p, true) : x;
  }
}

/**
 * Applies `steps` in order, freeing each intermediate result as soon as the next step has
 * consumed it (never `x` itself). Autograd holds its own references to what backward needs, so
 * this only drops ours: peak memory then follows PyTorch's instead of holding every activation
 * until the enclosing scope ends.
 */
export function pipe(x: Tensor, steps: readonly ((h: Tensor) => Tensor)[]): Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x && next !== h) h.dispose();
    h = next;
  }
  return h;
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((layer, i) => this.child(String(i), layer));
  }
  forward(x: Tensor): Tensor {
    return pipe(
      x,
      this.layers.map((layer) => (h: Tensor) => layer.forward(h)),
    );
  }
}

/** A parameter-free layer defined by a function of its input. */
export class Lambda extends Module {
  constructor(
    readonly name: string,
    readonly fn: (x: Tensor) => Tensor,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

export const ReLU = (): Lambda => new Lambda('ReLU', (x) => x.relu());
export const LeakyReLU = (slope = 0.01): Lambda => new Lambda('LeakyReLU', (x) => x.leakyRelu(slope));
export const GELU = (): Lambda => new Lambda('GELU', (x) => x.gelu());
export const SiLU = (): Lambda => new Lambda('SiLU', (x) => x.silu());
export const Sigmoid = (): Lambda => new Lambda('Sigmoid', (x) => x.sigmoid());
export const Tanh = (): Lambda => new Lambda('Tanh', (x) => x.tanh());
export const Identity = (): Lambda => new Lambda('Identity', (x) => x);
export const Flatten = (): Lambda => new Lambda('Flatten', (x) => x.flatten(1));
export const MaxPool2d = (kernel: number, stride = kernel, padding = 0): Lambda =>
  new Lambda('MaxPool2d', (x) => torch.maxPool2d(x, kernel, { stride, padding }));
export const GlobalAvgPool = (): Lambda => new Lambda('GlobalAvgPool', (x) => torch.adaptiveAvgPool2d(x, 1).flatten(1));
