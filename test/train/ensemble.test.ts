import { describe, expect, it } from 'vitest';
import { memberSeed } from '../../src/train/ensemble.js';

describe('memberSeed', () => {
  it('gives the members of different ensemble seeds disjoint seeds', () => {
    const seeds = [0, 1, 2].flatMap((s) => [0, 1, 2, 3, 4].map((k) => memberSeed(s, k, 5)));
    expect(new Set(seeds).size).toBe(15);
    expect(memberSeed(0, 0, 1)).toBe(0);
    expect(memberSeed(7, 0, 1)).toBe(7);
  });
});
