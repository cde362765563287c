import { describe, expect, it } from 'vitest';
import { cosineWarmupLr, multiStepLr, oneCycleLr } from '../../src/optim/index.js';

describe('cosineWarmupLr', () => {
  const schedule = cosineWarmupLr({ baseLr: 0.1, totalSteps: 14, warmupSteps: 4, minLr: 0.01 });

  it('warms up linearly, reaching baseLr on the last warm-up step', () => {
    [0.025, 0.05, 0.075, 0.1].forEach((lr, step) => expect(schedule(step)).toBeCloseTo(lr, 15));
  });
  it('then follows half a cosine down to minLr and stays there', () => {
    expect(schedule(4)).toBeCloseTo(0.1, 15);
    expect(schedule(9)).toBeCloseTo(0.055, 15); // halfway: the mean of baseLr and minLr
    expect(schedule(6)).toBeCloseTo(0.01 + 0.09 * 0.5 * (1 + Math.cos(Math.PI * 0.2)), 15);
    expect(schedule(14)).toBeCloseTo(0.01, 15);
    expect(schedule(100)).toBeCloseTo(0.01, 15);
  });
  it('without warm-up starts at baseLr', () => {
    expect(cosineWarmupLr({ baseLr: 0.2, totalSteps: 10 })(0)).toBe(0.2);
  });
  it('rejects bad options and steps', () => {
    expect(() => cosineWarmupLr({ baseLr: 0.1, totalSteps: 10, warmupSteps: 11 })).toThrow(/warmupSteps/);
    expect(() => cosineWarmupLr({ baseLr: 0.1, totalSteps: 10, minLr: 0.2 })).toThrow(/minLr/);
    expect(() => cosineWarmupLr({ baseLr: 0, totalSteps: 10 })).toThrow(/baseLr/);
    expect(() => schedule(-1)).toThrow(RangeError);
    expect(() => schedule(1.5)).toThrow(RangeError);
  });
});

describe('multiStepLr and oneCycleLr arguments', () => {
  it('multiStepLr multiplies by gamma (default 0.1) at each milestone', () => {
    const schedule = multiStepLr({ baseLr: 1, milestones: [2, 4] });
    expect([0, 1, 2, 3, 4, 9].map(schedule)).toEqual([1, 1, 0.1, 0.1, 1 * 0.1 ** 2, 1 * 0.1 ** 2]);
    expect(() => multiStepLr({ baseLr: 1, milestones: [-1] })).toThrow(RangeError);
  });
  it('oneCycleLr peaks at maxLr and accepts steps up to totalSteps only', () => {
    const schedule = oneCycleLr({ maxLr: 1, totalSteps: 10, pctStart: 0.5 });
    expect(schedule(4)).toBe(1);
    expect(schedule(0)).toBeCloseTo(1 / 25, 15);
    expect(schedule(9)).toBeCloseTo(1 / 25 / 1e4, 15);
    expect(() => schedule(11)).toThrow(RangeError);
    expect(() => oneCycleLr({ maxLr: 1, totalSteps: 10, pctStart: 1 })).toThrow(/pctStart/);
  });
});
