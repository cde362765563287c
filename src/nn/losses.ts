// Training objectives for K ordered grades. Each objective says how many outputs the model head
// needs and how to turn those outputs into K class probabilities (what metrics and predictions use).
import { z } from 'zod';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { CLASS_WEIGHT_MODES } from '../data/sampler.js';
import { NUM_GRADES } from '../data/grades.js';

export const LOSS_KINDS = ['ce', 'focal', 'ordinal'] as const;

/** A run's loss, as its config holds it. */
export const LossConfigSchema = z
  .object({
    kind: z.enum(LOSS_KINDS).default('ce'),
    gamma: z.number().min(0).default(4),
    alpha: z.array(z.number().positive()).length(NUM_GRADES).optional(),
    classWeights: z.enum(['none', ...CLASS_WEIGHT_MODES]).default('none'),
    labelSmoothing: z.number().min(0).max(0.5).default(0),
  })
  .strict();
export type LossConfig = z.infer<typeof LossConfigSchema>;

export interface Objective {
  /** Width of the model's final layer. */
  readonly outputs: number;
  /** Mean loss over the batch; `labels` are int64 grades 0..K-1. */
  loss(outputs: Tensor, labels: Tensor): Tensor;
  /** N x K class probabilities from the model's outputs. */
  probabilities(outputs: Tensor): Tensor;
}

/** Class weights as a tensor of the outputs' dtype. */
const weightTensor = (classWeights: number[], like: Tensor): Tensor => torch.tensor(classWeights, undefined, like.dtype);

/** Per-sample weights w[label]. */
function weightsOf(classWeights: number[], labels: Tensor, like: Tensor): Tensor {
  return weightTensor(classWeights, like).indexSelect(0, labels);
}

/**
 * Cross-entropy with PyTorch's semantics: optional class weights (the mean is normalized by the
 * sum of the weights of the batch's labels) and label smoothing (eps spread uniformly over K).
 */
export class CrossEntropy implements Objective {
  readonly outputs: number;
  constructor(
    readonly numClasses: number,
    readonly classWeights?: number[],
    readonly labelSmoothing = 0,
  ) {
    this.outputs = numClasses;
  }
  loss(logits: Tensor, labels: Tensor): Tensor {
    return torch.tidy(() => {
      const logp = logits.logSoftmax(1);
      const nll = logp.gather(1, labels.unsqueeze(1)).squeeze(1).neg();
      const eps = this.labelSmoothing;
      const w = this.classWeights;
      // Smoothing term: -(eps/K) * sum_k w_k log p_k, weighted per class as torch does.
      const smooth = eps > 0 ? (w ? logp.mul(weightTensor(w, logits)).sum(1) : logp.sum(1)).neg().div(this.numClasses) : undefined;
      if (!w) {
        const perSample = smooth ? nll.mul(1 - eps).add(smooth.mul(eps)) : nll;
        return perSample.mean();
      }
      const sampleWeights = weightsOf(w, labels, logits);
      const weightedNll = nll.mul(sampleWeights).sum().div(sampleWeights.sum());
      if (!smooth) return weightedNll;
      return weightedNll.mul(1 - eps).add(smooth.sum().div(sampleWeights.sum()).mul(eps));
    });
  }
  probabilities(logits: Tensor): Tensor {
    return logits.softmax(1);
  }
}

/**
 * Focal loss (Lin et al. 2017): -alpha_y (1 - p_y)^gamma log p_y, averaged over the batch.
 * The RetinaMNIST datasheet uses gamma 4 and alpha [0.2, 1, 1, 4, 4].
 */
export class FocalLoss implements Objective {
  readonly outputs: number;
  constructor(
    readonly numClasses: number,
    readonly gamma: number,
    readonly alpha?: number[],
  ) {
    this.outputs = numClasses;
  }
  loss(logits: Tensor, labels: Tensor): Tensor {
    return torch.tidy(() => {
      const logpTrue = logits.logSoftmax(1).gather(1, labels.unsqueeze(1)).squeeze(1);
      // (1 - p)^gamma, with 1 - p kept off 0: pow's gradient at 0 is infinite for gamma < 1,
      // which made whole rows of gradients NaN on confidently right samples.
      const focus = logpTrue.exp().neg().add(1).clamp(1e-12).pow(this.gamma);
      let perSample = focus.mul(logpTrue).neg();
      if (this.alpha) perSample = perSample.mul(weightsOf(this.alpha, labels, logits));
      return perSample.mean();
    });
  }
  probabilities(logits: Tensor): Tensor {
    return logits.softmax(1);
  }
}

/**
 * Ordinal regression by cumulative binary decomposition: K-1 outputs, output k is the logit of
 * P(grade > k), each trained with binary cross-entropy. Class probabilities are differences of
 * the cumulative ones after forcing them to be non-increasing in k.
 */
export class CumulativeOrdinal implements Objective {
  readonly outputs: number;
  constructor(readonly numClasses: number) {
    this.outputs = numClasses - 1;
  }
  loss(logits: Tensor, labels: Tensor): Tensor {
    return torch.tidy(() => {
      const thresholds = torch.arange(0, this.outputs).unsqueeze(0);
      const targets = labels.unsqueeze(1).gt(thresholds).float();
      // Numerically stable BCE with logits: max(x,0) - x*t + log(1 + exp(-|x|)).
      const bce = logits.relu().sub(logits.mul(targets)).add(logits.abs().neg().exp().add(1).log());
      return bce.sum(1).mean();
    });
  }
  probabilities(logits: Tensor): Tensor {
    return torch.tidy(() => {
      const k = this.outputs;
      const exceed = logits.sigmoid();
      // Running minimum along k, so that P(>k) never increases with k.
      const columns: Tensor[] = [exceed.slice(1, 0, 1)];
      for (let i = 1; i < k; i++) columns.push(columns[i - 1].minimum(exceed.slice(1, i, i + 1)));
      const n = logits.shape[0];
      const cumulative = torch.cat([torch.ones([n, 1]), ...columns, torch.zeros([n, 1])], 1);
      return cumulative.slice(1, 0, k + 1).sub(cumulative.slice(1, 1, k + 2));
    });
  }
}

/** The objective of a model that outputs log-probabilities (an ensemble): NLL, and softmax. */
export class LogProbabilityObjective implements Objective {
  constructor(readonly outputs: number) {}
  loss(logProbabilities: Tensor, labels: Tensor): Tensor {
    return torch.tidy(() => logProbabilities.gather(1, labels.unsqueeze(1)).mean().neg());
  }
  probabilities(logProbabilities: Tensor): Tensor {
    // softmax rather than exp: exactly normalized even after an ensemble's clamp of its mean.
    return logProbabilities.softmax(1);
  }
}

/**
 * The objective a loss config asks for. `classWeights` (src/data/sampler.ts) weight the loss per
 * grade; they change training only, so a saved model's probabilities can be rebuilt without them.
 */
export function createObjective(loss: LossConfig, numClasses: number, classWeights?: number[]): Objective {
  switch (loss.kind) {
    case 'ce':
      return new CrossEntropy(numClasses, classWeights, loss.labelSmoothing);
    case 'focal':
      return new FocalLoss(numClasses, loss.gamma, loss.alpha ?? classWeights);
    case 'ordinal':
      return new CumulativeOrdinal(numClasses);
  }
}
