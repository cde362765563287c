// What a finished run leaves behind, written by `train` at the end of a run: calibration.json
// (temperature, operating points and uncertainty threshold, all fitted on validation), then from
// the calibrated probabilities metrics.json (val and test) and predictions.csv (one row per test
// image), and MODEL_CARD.md.
import { NUM_GRADES, REFERABLE_GRADE } from '../data/grades.js';
import type { RetinaTensors } from '../data/retinamnist.js';
import { coverageAt, coverageCurve, expectedCalibrationError, negativeLogLikelihood, probabilityAtLeast } from '../eval/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { predictProbabilities, type InferenceOptions } from '../model/inference.js';
import { saveSafetensors } from '../io/safetensors.js';
import { fitGradabilityGate, gradabilityTensors } from '../model/gradability.js';
import { calibrated, fitRunCalibration } from '../model/run-calibration.js';
import type { RunDir } from '../model/run-dir.js';
import type { CalibrationChange, MemberSummary, RunMetrics } from '../model/run-metrics.js';
import { splitFigures } from '../model/split-figures.js';
import type { FeatureClassifier, ModelConfig, Objective } from '../nn/index.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { VERSION } from '../version.js';
import type { RunConfig } from './config.js';
import { modelCard } from './model-card.js';

export function predictionsCsv(labels: Uint8Array, probs: Float64Array): string {
  const k = NUM_GRADES;
  const header = ['index', 'label', 'predicted', ...Array.from({ length: k }, (_, c) => `p${c}`), 'p_referable'].join(',');
  const rows = Array.from(labels, (label, i) => {
    const p = Array.from(probs.subarray(i * k, (i + 1) * k));
    const predicted = p.indexOf(Math.max(...p));
    return [i, label, predicted, ...p.map((v) => v.toFixed(6)), probabilityAtLeast(p, REFERABLE_GRADE).toFixed(6)].join(',');
  });
  return `${header}\n${rows.join('\n')}\n`;
}

function calibrationChange(labels: Uint8Array, before: Float32Array, after: Float64Array): CalibrationChange {
  return {
    ece_before: expectedCalibrationError(labels, before, NUM_GRADES),
    ece_after: expectedCalibrationError(labels, after, NUM_GRADES),
    nll_before: negativeLogLikelihood(labels, before, NUM_GRADES),
    nll_after: negativeLogLikelihood(labels, after, NUM_GRADES),
  };
}

export function writeRunOutputs(
  run: RunDir,
  model: FeatureClassifier,
  objective: Objective,
  data: RetinaTensors,
  info: {
    bestEpoch: number | number[];
    epochsRun: number | number[];
    seconds: number;
    config: RunConfig;
    /** The model config the run built (modelConfigOf). */
    modelConfig: ModelConfig;
    members?: MemberSummary[];
  },
  inference: InferenceOptions = {},
): RunMetrics {
  const rawVal = predictProbabilities(model, objective, data.val.x, inference);
  const rawTest = predictProbabilities(model, objective, data.test.x, inference);
  const calibration = fitRunCalibration(data.val.labels, rawVal);
  run.writeJson('calibration', calibration);
  const gate = fitGradabilityGate(model, data.train.x, data.val.x);
  const { tensors, metadata } = gradabilityTensors(gate);
  saveSafetensors(run.file('gradability'), tensors, metadata);
  for (const t of tensors.values()) t.dispose();
  const val = calibrated(rawVal, calibration);
  const test = calibrated(rawTest, calibration);
  const uncertain = calibration.uncertainty;
  const metrics: RunMetrics = {
    val: splitFigures(data.val.labels, val, calibration),
    test: splitFigures(data.test.labels, test, calibration),
    calibration: {
      temperature: calibration.temperature,
      min_sensitivity: calibration.referable.minSensitivity,
      val: calibrationChange(data.val.labels, rawVal, val),
      test: calibrationChange(data.test.labels, rawTest, test),
    },
    uncertainty: {
      threshold: uncertain.threshold,
      refer_fraction: uncertain.referFraction,
      val: coverageAt(data.val.labels, val, NUM_GRADES, uncertain.threshold),
      test: coverageAt(data.test.labels, test, NUM_GRADES, uncertain.threshold),
      test_curve: coverageCurve(data.test.labels, test, NUM_GRADES),
    },
    best_epoch: info.bestEpoch,
    epochs_run: info.epochsRun,
    seconds: info.seconds,
    data: data.source,
    model: {
      ...info.config.model,
      ...(info.modelConfig.stemStride === undefined ? {} : { stemStride: info.modelConfig.stemStride }),
      size: info.config.size,
      ensemble: info.config.ensemble,
    },
    ...(info.members ? { members: info.members } : {}),
    tta: inference.tta ?? false,
    version: VERSION,
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
  run.writeJson('metrics', metrics);
  writeFileAtomic(run.file('predictions'), predictionsCsv(data.test.labels, test));
  writeFileAtomic(run.file('card'), modelCard(metrics, info.config));
  return metrics;
}
