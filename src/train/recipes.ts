// Named recipes: partial run configs the user's flags are layered onto.
import { datasheetAugment } from '../data/augment/index.js';
import { cpuHasBf16 } from '../torch/index.js';
import type { RunConfigInput } from './config.js';

export const RECIPES = {
  /**
   * The RetinaMNIST datasheet exactly: [-1,1] inputs, its five augmentations, weighted sampling
   * AND focal loss (gamma 4, alpha [0.2,1,1,4,4]). Kept for reproducibility; measured, it corrects
   * the imbalance twice and collapses toward the severe grades (RESULTS.md).
   */
  datasheet: {
    ensemble: 1,
    sampler: 'weighted',
    loss: { kind: 'focal', gamma: 4, alpha: [0.2, 1, 1, 4, 4], classWeights: 'none', labelSmoothing: 0 },
    augment: datasheetAugment,
  },
  /** MedMNIST v2's official training: plain cross-entropy, no augmentation, no rebalancing. */
  medmnist: {
    ensemble: 1,
    sampler: 'shuffle',
    loss: { kind: 'ce', classWeights: 'none', labelSmoothing: 0 },
    augment: false,
  },
  /**
   * The default: RunConfigSchema's defaults (src/train/config.ts), chosen on the validation split,
   * in bf16 on a CPU with native bf16 (fp32 elsewhere): there it validates as fp32 does and trains
   * faster (RESULTS.md, "Time to quality"). It differs from the datasheet in RESULTS.md's terms: no
   * rebalancing (plain cross-entropy, shuffled epochs), milder augmentation, and an ensemble of 5
   * compact CNNs at 28x28.
   */
  default: cpuHasBf16() ? { precision: 'bf16' } : {},
} satisfies Record<string, RunConfigInput>;

export type RecipeName = keyof typeof RECIPES;
export const RECIPE_NAMES = Object.keys(RECIPES) as RecipeName[];
