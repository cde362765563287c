// Batched inference: model outputs -> class probabilities, without autograd.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { withEval, type FeatureClassifier, type Module, type Objective } from '../nn/index.js';
import { classesPresent, computeMetrics, type EvalMetrics } from '../eval/index.js';
import { type SplitSource, takeRange } from '../data/training-data.js';
import { ModelOutputError } from '../errors.js';

/** How far a row of probabilities may sum from 1 (float32 softmax is within 1e-6). */
const SUM_TOLERANCE = 1e-3;

/** Throws a ModelOutputError unless every row of `probs` (N x numClasses) is a distribution. */
export function checkProbabilities(probs: Float32Array, numClasses: number): void {
  for (let row = 0; row * numClasses < probs.length; row++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = probs[row * numClasses + k]!;
      if (!(p >= 0 && p <= 1)) {
        throw new ModelOutputError(
          `the model gave ${p} as the probability of grade ${k} for image ${row + 1}: ` +
            'its weights are damaged or diverged (retrain, or restore the run)',
        );
      }
      sum += p;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) {
      throw new ModelOutputError(
        `the model's probabilities for image ${row + 1} sum to ${sum}, not 1: its weights are damaged or diverged`,
      );
    }
  }
}

export interface InferenceOptions {
  batchSize?: number;
  /** Test-time augmentation: average the probabilities of the image and its mirror. */
  tta?: boolean;
}

/** Row-major N x K probabilities for the images `x` (N,C,H,W float32 in [-1,1]); a ModelOutputError when they are not. */
export function predictProbabilities(model: Module, objective: Objective, x: Tensor, options: InferenceOptions = {}): Float32Array {
  return predictRows(model, objective, x.shape[0]!, (start, end) => x.slice(0, start, end), options);
}

/** Probabilities of `n` images handed over a batch at a time by `rows` (images start..end-1). */
function predictRows(
  model: Module,
  objective: Objective,
  n: number,
  rows: (start: number, end: number) => Tensor,
  options: InferenceOptions,
): Float32Array {
  const { batchSize = 256, tta = false } = options;
  const chunks: Float32Array[] = [];
  withEval(model, () =>
    torch.noGrad(() => {
      for (let start = 0; start < n; start += batchSize) {
        const chunk = torch.tidy(() => {
          const batch = rows(start, Math.min(n, start + batchSize));
          const probs = objective.probabilities(model.forward(batch));
          if (!tta) return probs.data() as Float32Array;
          const mirrored = objective.probabilities(model.forward(batch.flip([3])));
          return probs.add(mirrored).div(2).data() as Float32Array;
        });
        chunks.push(chunk);
      }
    }),
  );
  const out = new Float32Array(chunks.reduce((s, c) => s + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  if (n > 0) checkProbabilities(out, out.length / n);
  return out;
}

/** Row-major N x K probabilities from the model's `features(x)` (already computed, the model in eval mode). */
export function probabilitiesOfFeatures(model: FeatureClassifier, objective: Objective, features: Tensor): Float32Array {
  const probs = torch.tidy(() => torch.noGrad(() => objective.probabilities(model.classify(features))).data() as Float32Array);
  checkProbabilities(probs, probs.length / features.shape[0]!);
  return probs;
}

export interface SplitEvaluation {
  probs: Float32Array;
  metrics: EvalMetrics;
  /** Mean negative log-likelihood of the true grade. */
  loss: number;
}

/** Probabilities of every image of a split, read a batch at a time. */
export function predictSplit(model: Module, objective: Objective, split: SplitSource, options: InferenceOptions = {}): Float32Array {
  const probs = predictRows(model, objective, split.count, (start, end) => takeRange(split, start, end), options);
  // The blocks freed by a split's batches are of sizes training's steps do not ask for: give them back.
  torch.emptyCpuCache();
  return probs;
}

/** Probabilities, metrics and NLL of a model on one split. */
export function evaluateSplit(model: Module, objective: Objective, split: SplitSource, options: InferenceOptions = {}): SplitEvaluation {
  const probs = predictSplit(model, objective, split, options);
  const numClasses = probs.length / split.count;
  // Over the grades the split has: a small or 0-3 graded validation split still selects epochs.
  const metrics = computeMetrics(split.labels, probs, numClasses, classesPresent(split.labels, numClasses));
  let nll = 0;
  split.labels.forEach((label, i) => {
    nll -= Math.log(Math.max(1e-12, probs[i * numClasses + label]));
  });
  return { probs, metrics, loss: nll / split.count };
}
