// Builds the training objective a run config asks for.
import type { RunConfig } from './config.js';
import { CrossEntropy, CumulativeOrdinal, FocalLoss, type Objective } from './losses.js';

/**
 * `classWeights` (from src/data/sampler.ts) weight the loss per grade; they change training only,
 * so a saved model's probabilities can be rebuilt without them.
 */
export function createObjective(loss: RunConfig['loss'], numClasses: number, classWeights?: number[]): Objective {
  switch (loss.kind) {
    case 'ce':
      return new CrossEntropy(numClasses, classWeights, loss.labelSmoothing);
    case 'focal':
      return new FocalLoss(numClasses, loss.gamma, loss.alpha ?? classWeights);
    case 'ordinal':
      return new CumulativeOrdinal(numClasses);
  }
}
