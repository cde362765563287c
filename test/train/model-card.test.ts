import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { RunConfigSchema } from '../../src/train/config.js';
import { modelCard } from '../../src/train/model-card.js';
import { syntheticMetrics as metricsOf } from '../helpers/synthetic-run.js';
import { NOT_FOR_CLINICAL_USE } from '../../src/notice.js';
import { GRADE_NAMES } from '../../src/data/grades.js';

describe('modelCard', () => {
  it('states the epochs configured when the run trained them all', () => {
    const config = RunConfigSchema.parse({ ensemble: 1, epochs: 10 });
    const card = modelCard(metricsOf(config, { best_epoch: 7, epochs_run: 10 }), config);
    expect(card).toContain('cosine learning-rate schedule with 1 warm-up epoch, 10 epochs, batch 64');
    expect(card).toContain('the weights of the epoch with the best validation AUC were kept\n  (epoch 7)');
    expect(card).toContain(NOT_FOR_CLINICAL_USE);
  });

  it('holds the confusion matrix, the referral figures, calibration, the resolution caveat, the version and no absolute path', () => {
    const config = RunConfigSchema.parse({ ensemble: 1, epochs: 10 });
    const metrics = metricsOf(config, { best_epoch: 7, epochs_run: 10 });
    const card = modelCard(metrics, config);
    const confusionRow = (t: number) => `| ${t} ${GRADE_NAMES[t]} | ${metrics.test.confusion[t]!.join(' | ')} |`;
    for (let t = 0; t < 5; t++) expect(card).toContain(confusionRow(t));
    const referable = metrics.test.referable!;
    const { auc, ci95 } = referable;
    expect(card).toContain(
      `| referable (grade >= 2) | test | ${referable.positives} / 400 | ${auc.toFixed(3)} [${ci95.auc.lo.toFixed(3)}, ` +
        `${ci95.auc.hi.toFixed(3)}] | ${referable.threshold.toFixed(3)} | ${referable.sensitivity.toFixed(3)} [`,
    );
    expect(card).toContain('| vision-threatening (grade >= 3) | validation |');
    expect(card).toContain('highest validation specificity with sensitivity >= 0.900');
    expect(card).toContain('ECE on test 0.200 before,\n  0.050 after');
    expect(card).toContain('shrunk to 28x28, the size the\n  model was trained at');
    expect(card).toContain('Written by retinagrade 9.9.9.');
    expect(card).toContain('File `retinamnist.npz`');
    expect(card).not.toContain(homedir());
    // Fractions, as MedMNIST reports them: no percentages.
    expect(card).toContain(`| test (400) | ${metrics.test.acc.toFixed(3)} [`);
  });

  it("describes a prepared dataset's photographs, not RetinaMNIST, and the lesions at its size", () => {
    const config = RunConfigSchema.parse({ ensemble: 1, epochs: 10, size: 224 });
    const metrics = metricsOf(config, { best_epoch: 7, epochs_run: 10 });
    metrics.data = {
      ...metrics.data,
      file: 'clinic-a/dataset.json',
      size: 224,
      upsampled_from: null,
      prepared: { name: 'clinic-a', layout: 'labels-csv', preprocessing: { crop: 'retina-disc', resize: 'sharp linear', decode: 'sharp' } },
    };
    const card = modelCard(metrics, config);
    expect(card).toContain('`clinic-a`, from photographs with a CSV labels file; images\n  cropped to the retina disc');
    expect(card).toContain('224x224 (sharp linear); 400 validation and 400 test images.');
    expect(card).toContain('File `dataset.json` (md5 `');
    expect(card).toContain('the smallest lesions (microaneurysms) span a few pixels');
    expect(card).toContain('Small and imbalanced data: the prepared training split;');
    for (const retinamnist of ['DeepDRiD', 'RetinaMNIST', 'a pixel or less']) expect(card).not.toContain(retinamnist);
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
