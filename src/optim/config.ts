// The optimizer and learning-rate schedule as a run config names them, and the objects they build.
import { z } from 'zod';
import type { Tensor } from '../torch/index.js';
import { Adam, AdamW } from './adam.js';
import type { Optimizer } from './optimizer.js';
import { cosineWarmupLr, multiStepLr, oneCycleLr, type LrSchedule } from './schedules.js';
import { SGD } from './sgd.js';

export const OptimizerConfigSchema = z
  .object({
    name: z.enum(['adamw', 'adam', 'sgd']).default('adamw'),
    lr: z.number().positive().default(1e-3),
    weightDecay: z.number().min(0).default(1e-4),
    momentum: z.number().min(0).max(1).default(0.9),
  })
  .strict();
export type OptimizerConfig = z.infer<typeof OptimizerConfigSchema>;

export const ScheduleConfigSchema = z
  .object({
    name: z.enum(['cosine', 'multistep', 'onecycle', 'constant']).default('cosine'),
    /** Linear warm-up of the cosine schedule (the others have none). */
    warmupEpochs: z.number().min(0).default(1),
    /** Multistep milestones as fractions of the run, so they survive a change of epochs. */
    milestones: z.array(z.number().min(0).max(1)).default([0.5, 0.75]),
    gamma: z.number().positive().default(0.1),
  })
  .strict();
export type ScheduleConfig = z.infer<typeof ScheduleConfigSchema>;

export function createOptimizer(options: OptimizerConfig, params: Tensor[]): Optimizer {
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

/** The learning rate for each optimizer step of a run (schedules count steps, not epochs). */
export function createSchedule(schedule: ScheduleConfig, lr: number, epochs: number, stepsPerEpoch: number): LrSchedule {
  const totalSteps = epochs * stepsPerEpoch;
  switch (schedule.name) {
    case 'constant':
      return () => lr;
    case 'cosine':
      return cosineWarmupLr({
        baseLr: lr,
        totalSteps,
        warmupSteps: Math.min(totalSteps, Math.round(schedule.warmupEpochs * stepsPerEpoch)),
      });
    case 'multistep':
      return multiStepLr({
        baseLr: lr,
        milestones: schedule.milestones.map((fraction) => Math.round(fraction * totalSteps)),
        gamma: schedule.gamma,
      });
    case 'onecycle':
      return oneCycleLr({ maxLr: lr, totalSteps: Math.max(2, totalSteps) });
  }
}
