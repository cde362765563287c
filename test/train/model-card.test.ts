import { describe, expect, it } from 'vitest';
import { bootstrapMetrics, computeMetrics } from '../../src/eval/index.js';
import { RunConfigSchema, type RunConfig } from '../../src/train/config.js';
import { modelCard } from '../../src/train/model-card.js';
import type { RunMetrics } from '../../src/model/run-metrics.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';

/** metrics.json of a run with made-up but well-formed results. */
function metricsOf(config: RunConfig, extra: Pick<RunMetrics, 'best_epoch' | 'epochs_run'> & { stemStride?: 1 | 2 }): RunMetrics {
  const labels = Uint8Array.from({ length: 400 }, (_, i) => i % 5);
  const probs = Float32Array.from({ length: 400 * 5 }, (_, j) => ((j * 7919) % 97) + 1);
  for (let i = 0; i < 400; i++) {
    const row = probs.subarray(i * 5, i * 5 + 5);
    const sum = row.reduce((a, b) => a + b, 0);
    row.forEach((v, c) => (row[c] = v / sum));
  }
  const evaluated = computeMetrics(labels, probs, 5);
  return {
    val: evaluated,
    test: { ...evaluated, ci95: bootstrapMetrics(labels, probs, 5, { resamples: 20 }) },
    best_epoch: extra.best_epoch,
    epochs_run: extra.epochs_run,
    seconds: 12,
    data: { file: 'retinamnist.npz', md5: 'bd4c0672f1bba3e3a89f0e4e876791e4', size: 28, upsampled_from: config.size === 28 ? null : 28 },
    model: { ...config.model, ...(extra.stemStride ? { stemStride: extra.stemStride } : {}), size: config.size, ensemble: config.ensemble },
    tta: false,
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
}

describe('modelCard', () => {
  it('states the epochs configured when the run trained them all', () => {
    const config = RunConfigSchema.parse({ ensemble: 1, epochs: 10 });
    const card = modelCard(metricsOf(config, { best_epoch: 7, epochs_run: 10 }), config);
    expect(card).toContain('cosine learning-rate schedule with 1 warm-up epoch, 10 epochs, batch 64');
    expect(card).toContain('the weights of the epoch with the best validation AUC were kept\n  (epoch 7)');
    expect(card).toContain(NOT_FOR_CLINICAL_USE);
  });

  it('says when early stopping ended training, per member of an ensemble', () => {
    const config = RunConfigSchema.parse({ ensemble: 2, epochs: 10, patience: 3 });
    const card = modelCard(metricsOf(config, { best_epoch: [4, 10], epochs_run: [7, 10] }), config);
    expect(card).toContain('up to 10 epochs, stopped early after 3 epochs without improvement (epochs run: 7, 10)');
  });

  it('names the EMA, a schedule without warm-up, no augmentation, and a stride-2 first convolution', () => {
    const config = RunConfigSchema.parse({ ensemble: 1, size: 64, epochs: 60, ema: 0.99, augment: false, schedule: { name: 'multistep' } });
    const card = modelCard(metricsOf(config, { best_epoch: 3, epochs_run: 60, stemStride: 2 }), config);
    expect(card).toContain('an exponential moving average (decay 0.99) of the weights of the epoch');
    expect(card).toContain('augmentation: none; adamw (lr 0.001), multistep learning-rate schedule, 60 epochs');
    expect(card).toContain('cnn, stride-2 first convolution, 64x64 RGB input');
  });
});
