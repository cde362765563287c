// Builds the optimizer and learning-rate schedule a run config asks for.
import type { Tensor } from '../torch/index.js';
import { AdamW, Adam, SGD, cosineWarmupLr, multiStepLr, oneCycleLr, type LrSchedule, type Optimizer } from '../optim/index.js';
import type { RunConfig } from './config.js';

export type { Optimizer };

export function createOptimizer(options: RunConfig['optimizer'], params: Tensor[]): Optimizer {
  const { lr, weightDecay } = options;
  switch (options.name) {
    case 'adamw':
      return new AdamW(params, { lr, weightDecay });
    case 'adam':
      return new Adam(params, { lr, weightDecay });
    case 'sgd':
      return new SGD(params, { lr, momentum: options.momentum, nesterov: options.momentum > 0, weightDecay });
  }
}

/** The learning rate for each optimizer step of the run (schedules count steps, not epochs). */
export function createSchedule(config: RunConfig, stepsPerEpoch: number): LrSchedule {
  const { schedule, optimizer, epochs } = config;
  const totalSteps = epochs * stepsPerEpoch;
  switch (schedule.name) {
    case 'constant':
      return () => optimizer.lr;
    case 'cosine':
      return cosineWarmupLr({
        baseLr: optimizer.lr,
        totalSteps,
        warmupSteps: Math.min(totalSteps, Math.round(schedule.warmupEpochs * stepsPerEpoch)),
      });
    case 'multistep':
      return multiStepLr({
        baseLr: optimizer.lr,
        milestones: schedule.milestones.map((fraction) => Math.round(fraction * totalSteps)),
        gamma: schedule.gamma,
      });
    case 'onecycle':
      return oneCycleLr({ maxLr: optimizer.lr, totalSteps: Math.max(2, totalSteps) });
  }
}
