// The fuzzing harness: seeded mutations of valid inputs, and the tally of what became of each.
// Every input must end in a correct result or a clean error (an error a user can act on, naming
// what was wrong): never a crash (any other exception), a hang (no answer within HANG_MS), or a
// silently wrong answer (a result that fails the target's checks).
import { seededRandom } from '../../src/random.js';

/** Seconds each target runs: two in CI, more with RETINAGRADE_FUZZ_SECONDS. */
export const FUZZ_SECONDS = Number(process.env.RETINAGRADE_FUZZ_SECONDS ?? 2);
/** The seed of every target's draws: the same seed and time budget try the same inputs in order. */
export const FUZZ_SEED = Number(process.env.RETINAGRADE_FUZZ_SEED ?? 1);
/** An input not answered within this is a hang. */
export const HANG_MS = 15_000;

export { seededRandom };

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
};

/** One random change of `bytes`: flips, a cut, an insertion, an overwritten run, a duplicated slice, or extreme integers. */
export function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const at = (n = bytes.length) => Math.floor(random() * n);
  const out = Uint8Array.from(bytes);
  switch (Math.floor(random() * 7)) {
    case 0: // a few flipped bits or bytes
    case 1: {
      const count = 1 + at(16);
      for (let i = 0; i < count; i++) out[at()] ^= random() < 0.5 ? 1 << at(8) : 1 + at(255);
      return out;
    }
    case 2: // truncated
      return out.subarray(0, at());
    case 3: {
      // random bytes inserted
      const start = at();
      const inserted = Uint8Array.from({ length: 1 + at(64) }, () => at(256));
      return concat(out.subarray(0, start), inserted, out.subarray(start));
    }
    case 4: {
      // a run overwritten with 0x00 or 0xff
      const start = at();
      out.fill(random() < 0.5 ? 0 : 0xff, start, start + 1 + at(256));
      return out;
    }
    case 5: {
      // a slice repeated
      const start = at();
      const slice = out.slice(start, start + 1 + at(512));
      return concat(out.subarray(0, start), slice, out.subarray(start));
    }
    default: {
      // little-endian 16/32-bit fields set to extremes (sizes, offsets, counts, dimensions)
      const view = new DataView(out.buffer);
      const offset = at(Math.max(1, out.length - 4));
      const extreme = [0, 1, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff][at(6)]!;
      if (random() < 0.5) view.setUint16(offset, extreme & 0xffff, random() < 0.5);
      else view.setUint32(offset, extreme >>> 0, random() < 0.5);
      return out;
    }
  }
}

export type Outcome = 'correct' | 'clean error' | 'crash' | 'hang' | 'silently wrong';

export interface Tally {
  target: string;
  seed: number;
  seconds: number;
  inputs: number;
  outcomes: Record<Outcome, number>;
  /** Peak RSS of this process while the target ran, MiB (sampled after each input). */
  peak_rss_mib: number;
  /** The first few inputs that crashed, hung or were answered wrongly: what went wrong. */
  failures: string[];
}

/**
 * Runs `attempt` on generated inputs for `seconds`. `attempt(i)` resolves to 'correct' or
 * 'clean error', or to a string saying what is wrong with the answer (silently wrong); any
 * exception it throws is a crash; no answer within HANG_MS is a hang (and ends the run).
 */
export async function fuzz(
  target: string,
  attempt: (i: number) => Promise<'correct' | 'clean error' | string>,
  seconds = FUZZ_SECONDS,
): Promise<Tally> {
  const tally: Tally = {
    target,
    seed: FUZZ_SEED,
    seconds,
    inputs: 0,
    outcomes: { correct: 0, 'clean error': 0, crash: 0, hang: 0, 'silently wrong': 0 },
    peak_rss_mib: 0,
    failures: [],
  };
  const fail = (outcome: Outcome, what: string) => {
    tally.outcomes[outcome]++;
    if (tally.failures.length < 5) tally.failures.push(`input ${tally.inputs - 1}: ${outcome}: ${what}`);
  };
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const i = tally.inputs++;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'hang'>((done) => {
      timer = setTimeout(() => done('hang'), HANG_MS);
    });
    try {
      const result = await Promise.race([attempt(i), timeout]);
      if (result === 'hang') {
        fail('hang', `no answer within ${HANG_MS} ms`);
        break;
      }
      if (result === 'correct' || result === 'clean error') tally.outcomes[result]++;
      else fail('silently wrong', result);
    } catch (error) {
      fail('crash', (error as Error).stack ?? String(error));
    } finally {
      clearTimeout(timer);
    }
    tally.peak_rss_mib = Math.max(tally.peak_rss_mib, Math.round(process.memoryUsage.rss() / 2 ** 20));
  }
  return tally;
}
