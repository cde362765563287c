// What a finished run leaves behind: metrics.json (val and test, with bootstrap intervals on test)
// and predictions.csv (one row per test image), written by `train` at the end of a run.
import type { TrainingData } from '../data/training-data.js';
import { bootstrapMetrics } from '../eval/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { evaluateSplit, type InferenceOptions, type SplitEvaluation } from '../model/inference.js';
import type { RunDir } from '../model/run-dir.js';
import type { MemberSummary, RunMetrics } from '../model/run-metrics.js';
import type { ModelConfig, Module, Objective } from '../nn/index.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import type { RunConfig } from './config.js';
import { modelCard } from './model-card.js';

export function predictionsCsv(labels: Uint8Array, evaluation: SplitEvaluation): string {
  const k = evaluation.probs.length / labels.length;
  const header = ['index', 'label', 'predicted', ...Array.from({ length: k }, (_, c) => `p${c}`)].join(',');
  const rows = Array.from(labels, (label, i) => {
    const p = Array.from(evaluation.probs.subarray(i * k, (i + 1) * k));
    const predicted = p.indexOf(Math.max(...p));
    return [i, label, predicted, ...p.map((v) => v.toFixed(6))].join(',');
  });
  return `${header}\n${rows.join('\n')}\n`;
}

export function writeRunOutputs(
  run: RunDir,
  model: Module,
  objective: Objective,
  data: TrainingData,
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
  const val = evaluateSplit(model, objective, data.val, inference);
  const test = evaluateSplit(model, objective, data.test, inference);
  const numClasses = test.probs.length / data.test.count;
  const metrics: RunMetrics = {
    val: val.metrics,
    test: { ...test.metrics, ci95: bootstrapMetrics(data.test.labels, test.probs, numClasses, { seed: info.config.seed }) },
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
    disclaimer: NOT_FOR_CLINICAL_USE,
  };
  run.writeJson('metrics', metrics);
  writeFileAtomic(run.file('predictions'), predictionsCsv(data.test.labels, test));
  writeFileAtomic(run.file('card'), modelCard(metrics, info.config));
  return metrics;
}
