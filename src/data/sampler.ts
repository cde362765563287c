// Epoch orders for training (which sample indices to visit, in what order) and per-class loss
// weights. RetinaMNIST's train split is 486 / 128 / 206 / 194 / 66 over grades 0..4, so both the
// sampler and the loss have ways to correct the imbalance.
import * as torch from '../torch/index.js';

/** Produces one epoch's sample indices from a seeded generator. */
export interface EpochSampler {
  /** Indices drawn per epoch. */
  readonly length: number;
  epoch(gen: torch.Generator): Int32Array;
}

/** Every sample once per epoch, in a random order (randperm). */
export class ShuffleSampler implements EpochSampler {
  constructor(readonly length: number) {
    if (!Number.isInteger(length) || length < 1) throw new RangeError(`ShuffleSampler: size must be a positive integer, got ${length}`);
  }
  epoch(gen: torch.Generator): Int32Array {
    return torch.tidy(() => toInt32(gen.randperm(this.length)));
  }
}

/**
 * Draws `length` indices with replacement, index i with probability weights[i] / sum(weights),
 * like torch.utils.data.WeightedRandomSampler.
 */
export class WeightedRandomSampler implements EpochSampler {
  readonly weights: Float64Array;

  constructor(
    weights: ArrayLike<number>,
    readonly length: number = weights.length,
  ) {
    this.weights = Float64Array.from(weights);
    if (this.weights.length === 0) throw new RangeError('WeightedRandomSampler: no weights');
    const bad = this.weights.findIndex((w) => !(w >= 0 && Number.isFinite(w)));
    if (bad >= 0) throw new RangeError(`WeightedRandomSampler: weight ${bad} is ${this.weights[bad]}; weights must be finite and >= 0`);
    if (!this.weights.some((w) => w > 0)) throw new RangeError('WeightedRandomSampler: all weights are zero');
    if (!Number.isInteger(length) || length < 1)
      throw new RangeError(`WeightedRandomSampler: length must be a positive integer, got ${length}`);
  }

  /** Weights 1 / count(class of the sample): every class is drawn equally often on average. */
  static balanced(labels: ArrayLike<number>, numClasses: number, length: number = labels.length): WeightedRandomSampler {
    const counts = classCounts(labels, numClasses);
    return new WeightedRandomSampler(
      Array.from(labels, (label) => 1 / counts[label]),
      length,
    );
  }

  epoch(gen: torch.Generator): Int32Array {
    return torch.tidy(() => toInt32(gen.multinomial(torch.tensor(this.weights, [this.weights.length]), this.length, true)));
  }
}

export const CLASS_WEIGHT_MODES = ['inverse', 'sqrt-inverse', 'effective-number'] as const;
export type ClassWeightMode = (typeof CLASS_WEIGHT_MODES)[number];

/**
 * Per-class loss weights from the label histogram, scaled to mean 1 so that the loss keeps its
 * magnitude: 'inverse' 1/n_k, 'sqrt-inverse' 1/sqrt(n_k), 'effective-number' (1 - beta) /
 * (1 - beta^n_k) (Cui et al., CVPR 2019; beta -> 1 approaches inverse, beta = 0 gives equal weights).
 */
export function classWeights(labels: ArrayLike<number>, numClasses: number, mode: ClassWeightMode, beta = 0.999): number[] {
  if (mode === 'effective-number' && !(beta >= 0 && beta < 1)) throw new RangeError(`classWeights: beta must be in [0, 1), got ${beta}`);
  const counts = classCounts(labels, numClasses);
  const empty = counts.indexOf(0);
  if (empty >= 0) throw new RangeError(`classWeights: class ${empty} has no samples, so it has no weight`);
  const raw = counts.map((n) => (mode === 'inverse' ? 1 / n : mode === 'sqrt-inverse' ? 1 / Math.sqrt(n) : (1 - beta) / (1 - beta ** n)));
  const mean = raw.reduce((a, b) => a + b, 0) / numClasses;
  return raw.map((w) => w / mean);
}

/** How many labels fall in each class 0..numClasses-1. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      throw new RangeError(`label ${i} is ${label}; expected an integer class in [0, ${numClasses})`);
    }
    counts[label]++;
  }
  return counts;
}

const toInt32 = (indices: torch.Tensor): Int32Array => Int32Array.from(indices.data() as BigInt64Array, Number);
