// One seeded generator for everything that must draw the same numbers from the same seed
// (prepare's split shuffles, bootstrap resamples, the fuzz harness).

/** mulberry32: a small, fast 32-bit generator; uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
