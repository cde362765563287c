// A finished run's outputs with made-up but well-formed results, for tests of what reads them
// (the model card, the report) without training.
import { writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SplitTensors } from '../../src/data/retinamnist.js';
import { coverageAt, coverageCurve } from '../../src/eval/index.js';
import { calibrated, fitRunCalibration } from '../../src/model/run-calibration.js';
import { RunDir } from '../../src/model/run-dir.js';
import type { RunMetrics } from '../../src/model/run-metrics.js';
import { splitFigures } from '../../src/model/split-figures.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import type { RunConfig } from '../../src/train/config.js';
import { modelCard } from '../../src/train/model-card.js';
import { predictionsCsv } from '../../src/train/outputs.js';
import * as torch from '../../src/torch/index.js';
import { syntheticSplit } from './synthetic-split.js';
import { untrainedRun } from './untrained-run.js';

const labels = Uint8Array.from({ length: 400 }, (_, i) => i % 5);
/** Scores that lean towards the label, so the figures are those of a (poor) classifier. */
const probs = Float32Array.from({ length: 400 * 5 }, (_, j) => ((j * 7919) % 97) + 1 + (j % 5 === labels[Math.floor(j / 5)]! ? 40 : 0));
for (let i = 0; i < 400; i++) {
  const row = probs.subarray(i * 5, i * 5 + 5);
  const sum = row.reduce((a, b) => a + b, 0);
  row.forEach((v, c) => (row[c] = v / sum));
}
const calibration = fitRunCalibration(labels, probs);
const tempered = calibrated(probs, calibration);

/** metrics.json of a run with made-up but well-formed results. */
export function syntheticMetrics(
  config: RunConfig,
  extra: Pick<RunMetrics, 'best_epoch' | 'epochs_run'> & { stemStride?: 1 | 2 },
): RunMetrics {
  const labels = Uint8Array.from({ length: 400 }, (_, i) => i % 5);
  const probs = Float32Array.from({ length: 400 * 5 }, (_, j) => ((j * 7919) % 97) + 1);
  for (let i = 0; i < 400; i++) {
    const row = probs.subarray(i * 5, i * 5 + 5);
    const sum = row.reduce((a, b) => a + b, 0);
    row.forEach((v, c) => (row[c] = v / sum));
  }
  const figures = splitFigures(labels, tempered, calibration);
  const change = { ece_before: 0.2, ece_after: 0.05, nll_before: 1.4, nll_after: 1.3 };
  const coverage = coverageAt(labels, tempered, 5, calibration.uncertainty.threshold);
  return {
    val: figures,
    test: figures,
    calibration: { temperature: calibration.temperature, min_sensitivity: 0.9, val: change, test: change },
    uncertainty: { threshold: 0.9, refer_fraction: 0.1, val: coverage, test: coverage, test_curve: coverageCurve(labels, tempered, 5) },
    best_epoch: extra.best_epoch,
    epochs_run: extra.epochs_run,
    seconds: 12,
    data: {
      file: join(homedir(), '.medmnist', 'retinamnist.npz'), // a full path: the card must show its base name only
      md5: 'bd4c0672f1bba3e3a89f0e4e876791e4',
      size: 28,
      upsampled_from: config.size === 28 ? null : 28,
    },
    model: { ...config.model, ...(extra.stemStride ? { stemStride: extra.stemStride } : {}), size: config.size, ensemble: config.ensemble },
    tta: false,
    version: '9.9.9',
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
}

/**
 * A run directory holding the outputs a finished run writes, with untrained weights (an ensemble
 * of `config.ensemble` small CNNs at 28 px), and test images whose grades are the made-up ones.
 */
export function syntheticRunDir(config: RunConfig): { path: string; metrics: RunMetrics; testImages: SplitTensors } {
  const run = new RunDir(untrainedRun(config.ensemble));
  const metrics = syntheticMetrics(config, { best_epoch: [2, 3], epochs_run: [3, 3] });
  run.writeJson('metrics', metrics);
  run.writeJson('calibration', calibration);
  const log = [0, 1].flatMap((member) =>
    [1, 2, 3].map((epoch) => ({
      member,
      epoch,
      train_loss: 1.5 - 0.1 * epoch,
      val_loss: 1.4 - 0.05 * epoch - 0.01 * member,
      val_auc: 0.6 + 0.05 * epoch,
    })),
  );
  writeFileSync(run.file('log'), log.map((l) => `${JSON.stringify(l)}\n`).join(''));
  writeFileSync(run.file('predictions'), predictionsCsv(labels, tempered));
  writeFileSync(run.file('card'), modelCard(metrics, config));
  const testImages = syntheticSplit(new torch.Generator(5), labels.length, labels);
  return { path: run.path, metrics, testImages };
}
