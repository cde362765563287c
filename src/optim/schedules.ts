// Learning-rate schedules as pure functions of the step (or epoch) index, starting at 0. Set the
// optimizer's lr from them before each step: `optimizer.lr = schedule(step)`.

export type LrSchedule = (step: number) => number;

function checkStep(step: number, last = Infinity): void {
  if (!Number.isInteger(step) || step < 0 || step > last) {
    throw new RangeError(`schedule step must be an integer in [0, ${last}], got ${step}`);
  }
}
function checkPositive(name: string, value: number): void {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number > 0, got ${value}`);
}

export interface MultiStepOptions {
  baseLr: number;
  /** Steps at which the rate is multiplied by gamma (a repeated milestone applies twice). */
  milestones: number[];
  gamma?: number;
}
/** PyTorch's MultiStepLR: baseLr * gamma ^ (number of milestones <= step). */
export function multiStepLr({ baseLr, milestones, gamma = 0.1 }: MultiStepOptions): LrSchedule {
  checkPositive('baseLr', baseLr);
  checkPositive('gamma', gamma);
  for (const m of milestones) checkStep(m);
  const ownMilestones = [...milestones];
  return (step) => {
    checkStep(step);
    return baseLr * gamma ** ownMilestones.filter((m) => m <= step).length;
  };
}

export interface CosineWarmupOptions {
  baseLr: number;
  totalSteps: number;
  /** Steps of linear warm-up: step s < warmupSteps gets baseLr * (s + 1) / warmupSteps. */
  warmupSteps?: number;
  minLr?: number;
}
/**
 * Linear warm-up to baseLr, then half a cosine from baseLr (at step warmupSteps) down to minLr
 * (at step totalSteps, and after).
 */
export function cosineWarmupLr({ baseLr, totalSteps, warmupSteps = 0, minLr = 0 }: CosineWarmupOptions): LrSchedule {
  checkPositive('baseLr', baseLr);
  checkPositive('totalSteps', totalSteps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new RangeError(`warmupSteps must be an integer in [0, totalSteps], got ${warmupSteps}`);
  }
  if (!(minLr >= 0 && minLr <= baseLr)) throw new RangeError(`minLr must be in [0, baseLr], got ${minLr}`);
  return (step) => {
    checkStep(step);
    if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

export interface OneCycleOptions {
  maxLr: number;
  totalSteps: number;
  pctStart?: number;
  divFactor?: number;
  finalDivFactor?: number;
}
/**
 * PyTorch's OneCycleLR (two phases, cosine annealing): from maxLr / divFactor up to maxLr over
 * the first pctStart of the steps, then down to maxLr / divFactor / finalDivFactor at the last
 * step. Only the rate: PyTorch's momentum cycling is not applied. Like PyTorch it accepts steps
 * up to totalSteps (the value a scheduler computes after the final update).
 */
export function oneCycleLr({ maxLr, totalSteps, pctStart = 0.3, divFactor = 25, finalDivFactor = 1e4 }: OneCycleOptions): LrSchedule {
  checkPositive('maxLr', maxLr);
  checkPositive('divFactor', divFactor);
  checkPositive('finalDivFactor', finalDivFactor);
  if (!Number.isInteger(totalSteps) || totalSteps < 2) throw new RangeError(`totalSteps must be an integer >= 2, got ${totalSteps}`);
  if (!(pctStart > 0 && pctStart < 1)) throw new RangeError(`pctStart must be in (0, 1), got ${pctStart}`);
  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  const peakStep = pctStart * totalSteps - 1;
  const lastStep = totalSteps - 1;
  // PyTorch's _annealing_cos: from `start` at pct 0 to `end` at pct 1.
  const anneal = (start: number, end: number, pct: number): number => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  return (step) => {
    checkStep(step, totalSteps);
    // (A peak at step 0 has no warm-up phase; PyTorch divides by zero there.)
    return step <= peakStep && peakStep > 0
      ? anneal(initialLr, maxLr, step / peakStep)
      : anneal(maxLr, minLr, (step - peakStep) / (lastStep - peakStep));
  };
}
