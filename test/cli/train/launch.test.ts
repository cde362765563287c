import { describe, expect, it } from 'vitest';
import { defaultProcessCount } from '../../../src/cli/train/launch.js';

describe('defaultProcessCount (train without --nproc)', () => {
  it('gives every ensemble member its own process when there are cores to share', () => {
    expect(defaultProcessCount(5, 2, undefined)).toBe(5);
    expect(defaultProcessCount(2, 16, undefined)).toBe(2);
  });

  it('keeps one process for a single model, a single core, or a thread count the user chose', () => {
    expect(defaultProcessCount(1, 8, undefined)).toBe(1);
    expect(defaultProcessCount(5, 1, undefined)).toBe(1);
    expect(defaultProcessCount(5, 2, 2)).toBe(1);
  });
});
