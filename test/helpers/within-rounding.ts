// Grading records compared across batch sizes.
import { expect } from 'vitest';

/**
 * The records with every fraction (probabilities, P(referable), uncertainty, OOD score) matched to
 * 1e-6: a batch runs other convolution kernels than batch 1, so float32 sums round differently.
 */
export const withinRounding = (value: unknown): unknown => {
  if (typeof value === 'number') return Number.isInteger(value) ? value : expect.closeTo(value, 6);
  if (Array.isArray(value)) return value.map(withinRounding);
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, withinRounding(v)]));
  }
  return value;
};
