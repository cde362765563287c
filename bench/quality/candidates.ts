// The recipes compared on validation (RESULTS.md). Each is a set of `train` flags.
import type { TrainFlags } from '../../src/cli/train-config.js';

export const CANDIDATES: Record<string, TrainFlags> = {
  // The two references.
  'datasheet-resnet18-28': { recipe: 'datasheet', model: 'resnet18', size: 28, epochs: 30 },
  'medmnist-resnet18-28': { recipe: 'medmnist', model: 'resnet18', size: 28, epochs: 30 },
  // Datasheet preprocessing and augmentation, imbalance handling varied, compact CNN.
  'cnn28-ce': { model: 'cnn', size: 28, epochs: 60 },
  'cnn28-ce-noaug': { model: 'cnn', size: 28, epochs: 60, augment: false },
  'cnn28-ce-sqrtw': { model: 'cnn', size: 28, epochs: 60, classWeights: 'sqrt-inverse' },
  'cnn28-ordinal': { model: 'cnn', size: 28, epochs: 60, loss: 'ordinal' },
  'cnn28-focal-weighted': { model: 'cnn', size: 28, epochs: 60, recipe: 'datasheet' },
  'cnn64-ce': { model: 'cnn', size: 64, epochs: 60 },
  'cnn64-ordinal': { model: 'cnn', size: 64, epochs: 60, loss: 'ordinal' },
  'resnet18-28-ce': { model: 'resnet18', size: 28, epochs: 30 },
  'resnet18-64-ce': { model: 'resnet18', size: 64, epochs: 40 },
  'resnet18-64-ordinal': { model: 'resnet18', size: 64, epochs: 40, loss: 'ordinal' },
};
