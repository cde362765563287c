// The recipes compared on validation (RESULTS.md). Each is a set of `train` flags; `config` names
// a JSON file in ./configs for what flags cannot say (augmentation parameters).
import { fileURLToPath } from 'node:url';
import type { TrainFlags } from '../../src/cli/train/config-flags.js';

const config = (name: string): string => fileURLToPath(new URL(`./configs/${name}.json`, import.meta.url));
// Spelled out, so a change of the schema's defaults cannot change what a finished sweep measured.
const light = config('light-augment');
const datasheetAugment = config('datasheet-augment');

/**
 * Every candidate but `default-28` in fp32 unless it says otherwise: all were compared at fp32
 * (the default recipe trains in bf16 on a CPU with native bf16).
 */
const atFp32 = (candidates: Record<string, TrainFlags>): Record<string, TrainFlags> =>
  Object.fromEntries(
    Object.entries(candidates).map(([name, flags]) => [name, name === 'default-28' ? flags : { precision: 'fp32', ...flags }]),
  );

export const CANDIDATES: Record<string, TrainFlags> = atFp32({
  // References: the datasheet's recipe and MedMNIST's official one.
  'datasheet-resnet18-28': { recipe: 'datasheet', arch: 'resnet18', size: 28, epochs: 30 },
  'medmnist-resnet18-28': { recipe: 'medmnist', arch: 'resnet18', size: 28, epochs: 30 },
  'datasheet-cnn28': { recipe: 'datasheet', arch: 'cnn', size: 28, epochs: 60 },
  // Datasheet augmentation (the five transforms at the datasheet's strengths).
  'cnn28-ce': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, config: datasheetAugment },
  'cnn28-ordinal': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, loss: 'ordinal', config: datasheetAugment },
  'resnet18-64-ce': { ensemble: 1, arch: 'resnet18', size: 64, epochs: 40, config: datasheetAugment },
  // Same five transforms, milder: no hue/saturation jitter, less crop and shift.
  'cnn28-light': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, config: light },
  'cnn28-light-ordinal': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, loss: 'ordinal', config: light },
  'cnn28-light-sqrtw': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, classWeights: 'sqrt-inverse', config: light },
  'cnn28-light-ema': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, ema: 0.99, config: light },
  'cnn64-light': { ensemble: 1, arch: 'cnn', size: 64, epochs: 40, config: light },
  'resnet18-64-light': { ensemble: 1, arch: 'resnet18', size: 64, epochs: 30, config: light },
  'resnet18-64-light-bf16': { ensemble: 1, arch: 'resnet18', size: 64, epochs: 30, config: light, precision: 'bf16' },
  // The default recipe (src/train/config.ts, 60 epochs), at 28 and upsampled to 64.
  'default-28': { epochs: 60 },
  // The default recipe, and the same in fp32 (bf16 is the default on a CPU with native bf16).
  'default-28-fp32': { epochs: 60 },
  'default-28-bf16': { epochs: 60, precision: 'bf16' },
  'default-64': { size: 64, epochs: 60 },
  // At 64 (upsampled from 28), a stride-2 first convolution: the rest of the net works at 32x32.
  'default-64-stem2': { size: 64, epochs: 60, config: config('stem-stride-2') },
  // No augmentation at all.
  'cnn28-noaug': { ensemble: 1, arch: 'cnn', size: 28, epochs: 60, augment: false },
  // Single models of the default recipe at 60 epochs and one change each, for more seeds than the
  // rows above: wider, label smoothing, longer, dropout before the classifier, no augmentation.
  'single-28': { ensemble: 1, epochs: 60 },
  'single-28-width48': { ensemble: 1, epochs: 60, width: 48 },
  'single-28-smooth0.1': { ensemble: 1, epochs: 60, labelSmoothing: 0.1 },
  'single-28-epochs100': { ensemble: 1, epochs: 100 },
  'single-28-dropout0.2': { ensemble: 1, epochs: 60, dropout: 0.2 },
  'single-28-noaug': { ensemble: 1, epochs: 60, augment: false },
  // The default recipe at 100 epochs; its members can be adopted from single-28-epochs100 runs
  // (adopt-members.ts).
  'default-28-epochs100': { epochs: 100 },
});
