// What a finished run's metrics.json holds: written by train, read by evaluate's callers, the
// server and the report.
import type { DataSource } from '../data/retinamnist.js';
import type { CoveragePoint, EvalMetrics } from '../eval/index.js';
import type { ModelConfig } from '../nn/index.js';
import type { SplitFigures } from './split-figures.js';

export interface RunMetrics {
  /** Every figure of a split is of the temperature-scaled probabilities (calibration.json). */
  val: SplitFigures;
  test: SplitFigures;
  /** Temperature scaling, fitted on validation: ECE and NLL of each split before and after. */
  calibration: {
    temperature: number;
    /** The operating points' rule: the highest validation specificity at sensitivity >= this. */
    min_sensitivity: number;
    val: CalibrationChange;
    test: CalibrationChange;
  };
  /** "Uncertain: refer for human grading" above the threshold chosen on validation. */
  uncertainty: {
    threshold: number;
    refer_fraction: number;
    val: CoveragePoint;
    test: CoveragePoint;
    /** Coverage against accuracy on test as the threshold is lowered. */
    test_curve: CoveragePoint[];
  };
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
  /** retinagrade's version that wrote the run. */
  version: string;
  disclaimer: string;
}

export interface CalibrationChange {
  ece_before: number;
  ece_after: number;
  nll_before: number;
  nll_after: number;
}

export interface MemberSummary {
  seed: number;
  best_epoch: number;
  epochs_run: number;
  seconds: number;
  val: Pick<EvalMetrics, 'acc' | 'auc' | 'qwk'>;
}
