// Optimizers, gradient clipping and learning-rate schedules.
export { Optimizer, type OptimizerKind, type OptimizerMeta, type OptimizerStateDict, type ParamState } from './optimizer.js';
export { SGD, type SgdOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { clipGradNorm } from './clip.js';
export {
  multiStepLr,
  cosineWarmupLr,
  oneCycleLr,
  type LrSchedule,
  type MultiStepOptions,
  type CosineWarmupOptions,
  type OneCycleOptions,
} from './schedules.js';
export {
  OptimizerConfigSchema,
  ScheduleConfigSchema,
  createOptimizer,
  createSchedule,
  type OptimizerConfig,
  type ScheduleConfig,
} from './config.js';
