// What a finished run's metrics.json holds: written by train, read by evaluate's callers and the server.
import type { DataSource } from '../data/retinamnist.js';
import type { BootstrapIntervals, EvalMetrics } from '../eval/index.js';
import type { ModelConfig } from '../nn/index.js';

export interface RunMetrics {
  val: EvalMetrics;
  test: EvalMetrics & { ci95: BootstrapIntervals };
  /** The selected epoch; for an ensemble, each member's. */
  best_epoch: number | number[];
  /** Epochs trained (fewer than configured after an early stop); for an ensemble, each member's. */
  epochs_run: number | number[];
  /** Training time, summed over an ensemble's members. */
  seconds: number;
  /** An ensemble's members, each as it validated alone. */
  members?: MemberSummary[];
  data: DataSource;
  /** The model as built, with the stem stride it implies at this size. */
  model: Pick<ModelConfig, 'name' | 'width' | 'dropout' | 'stemStride'> & { size: number; ensemble: number };
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
