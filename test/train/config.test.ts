import { describe, expect, it } from 'vitest';
import { RunConfigSchema, modelConfigOf, savedConfigOf } from '../../src/train/config.js';
import { RECIPES } from '../../src/train/recipes.js';

describe('modelConfigOf', () => {
  it('gives the compact CNN a stride-2 stem above 32 px unless the config chooses', () => {
    expect(modelConfigOf(RunConfigSchema.parse({ size: 28 })).stemStride).toBeUndefined();
    expect(modelConfigOf(RunConfigSchema.parse({ size: 64 })).stemStride).toBe(2);
    expect(modelConfigOf(RunConfigSchema.parse({ size: 64, model: { stemStride: 1 } })).stemStride).toBe(1);
    expect(modelConfigOf(RunConfigSchema.parse({ size: 64, model: { name: 'resnet18' } })).stemStride).toBeUndefined();
  });

  it('sizes the head by the objective', () => {
    expect(modelConfigOf(RunConfigSchema.parse({})).outputs).toBe(5);
    expect(modelConfigOf(RunConfigSchema.parse({ loss: { kind: 'ordinal' } })).outputs).toBe(4);
  });

  it('refuses a stem stride for the ResNets, which set their stem by input size', () => {
    const parsed = RunConfigSchema.safeParse({ model: { name: 'resnet18', stemStride: 2 } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(/only the compact CNN has a stemStride/);
  });
});

describe('RunConfigSchema', () => {
  it('refuses a seed whose ensemble members would have seeds out of range', () => {
    expect(RunConfigSchema.safeParse({ seed: 2 ** 32 - 1, ensemble: 1 }).success).toBe(true);
    const parsed = RunConfigSchema.safeParse({ seed: 2 ** 32 - 1, ensemble: 5 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toBe('with an ensemble of 5, the seed must be at most 858993458');
    expect(RunConfigSchema.safeParse({ seed: 858993458, ensemble: 5 }).success).toBe(true);
  });
});

describe('savedConfigOf', () => {
  it('is what --config accepts: every recipe round-trips through config.json unchanged', () => {
    for (const recipe of Object.values(RECIPES)) {
      const config = RunConfigSchema.parse({ ...recipe, threads: 2 });
      const saved = JSON.parse(JSON.stringify(savedConfigOf(config)));
      expect(saved.threads).toBeUndefined();
      expect(RunConfigSchema.parse(saved)).toEqual({ ...config, threads: undefined });
    }
  });
});
