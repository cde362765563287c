// What a finished run leaves behind: metrics.json (val and test, with bootstrap intervals on test)
// and predictions.csv (one row per test image), written by `train` at the end of a run.
import { bootstrapMetrics, type EvalMetrics } from '../eval/index.js';
import type { ModelConfig, Module } from '../nn/index.js';
import type { RunConfig } from './config.js';
import type { PreparedData } from './dataset.js';
import { evaluateSplit, type InferenceOptions, type SplitEvaluation } from './inference.js';
import type { Objective } from './losses.js';
import { writeFileAtomic } from '../io/atomic.js';
import { modelCard } from './model-card.js';
import type { RunDir } from './run-dir.js';

export const GRADE_NAMES = ['No DR', 'Mild', 'Moderate', 'Severe', 'Proliferative DR'] as const;
export const NOT_FOR_CLINICAL_USE = 'Research software: not a medical device and not for clinical use.';

export interface RunMetrics {
  val: EvalMetrics;
  test: EvalMetrics & { ci95: ReturnType<typeof bootstrapMetrics> };
  /** The selected epoch; for an ensemble, each member's. */
  best_epoch: number | number[];
  /** Epochs trained (fewer than configured after an early stop); for an ensemble, each member's. */
  epochs_run: number | number[];
  /** Training time, summed over an ensemble's members. */
  seconds: number;
  /** An ensemble's members, each as it validated alone. */
  members?: MemberSummary[];
  data: PreparedData['source'];
  /** The model as built: the config's, with the stem stride it implies at this size. */
  model: RunConfig['model'] & { size: number; ensemble: number };
  tta: boolean;
  disclaimer: string;
}

export interface MemberSummary {
  seed: number;
  best_epoch: number;
  epochs_run: number;
  seconds: number;
  val: Pick<EvalMetrics, 'acc' | 'auc' | 'qwk'>;
}

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
  data: PreparedData,
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
