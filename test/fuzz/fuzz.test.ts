// The fuzz suite: seeded mutations for FUZZ_SECONDS per target (RETINAGRADE_FUZZ_SECONDS, default 2;
// RETINAGRADE_FUZZ_SEED picks another sequence). scripts/reliability/fuzz.ts runs the same targets
// and prints their tallies (RELIABILITY.md).
import { describe, expect, it } from 'vitest';
import { FUZZ_SECONDS, type Tally } from './harness.js';
import { fuzzEvaluate, fuzzNpz, fuzzPredict, fuzzServer } from './targets.js';

const timeout = (FUZZ_SECONDS + 30) * 1000;

function expectNoFailure(tally: Tally): void {
  const { crash, hang, 'silently wrong': wrong } = tally.outcomes;
  expect({ crash, hang, wrong, failures: tally.failures }, JSON.stringify(tally)).toEqual({ crash: 0, hang: 0, wrong: 0, failures: [] });
  // Enough inputs to mean something, and both kinds of ending seen.
  expect(tally.inputs).toBeGreaterThan(10);
  expect(tally.outcomes['clean error']).toBeGreaterThan(0);
}

describe('fuzzing: every mutated input ends in a correct result or a clean error', () => {
  it('npz files through the dataset loader', { timeout }, async () => expectNoFailure(await fuzzNpz()));
  it('images through predict', { timeout }, async () => expectNoFailure(await fuzzPredict()));
  it('images and requests through the server', { timeout }, async () => expectNoFailure(await fuzzServer()));
  it('run directories through evaluate', { timeout }, async () => expectNoFailure(await fuzzEvaluate()));
});
