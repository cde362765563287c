// Seeded generators: the same seed gives the same numbers, and the numbers are PyTorch's
// (torch.Generator().manual_seed(seed) and torch.manual_seed, from torch_reference.json).
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { expectClose, fromRef, reference } from './reference.js';

const ref = reference.random;

/** Draws from `gen` in the order of make_fixtures.py's random_cases(). */
function drawSequence(gen: torch.Generator): Record<string, Tensor> {
  return {
    rand: gen.uniform([5]),
    randn: gen.normal([5]),
    randn_vectorized: gen.normal([20]),
    normal_2_3: gen.normal([4], 2, 3),
    randint_0_10: gen.randint(0, 10, [6]),
    randperm_10: gen.randperm(10),
    multinomial_3_with_replacement: gen.multinomial(fromRef(ref.weights), 3, true),
    bernoulli: gen.bernoulli(fromRef(ref.probs)),
  };
}

describe('seeded random numbers', () => {
  it('equal PyTorch generator draws for the same seed', () =>
    torch.tidy(() => {
      const drawn = drawSequence(new torch.Generator(ref.seed));
      expect(Object.keys(drawn)).toEqual(Object.keys(ref.sequence));
      for (const [name, t] of Object.entries(drawn)) {
        const expected = ref.sequence[name]!;
        if (t.dtype === 'int64') expect({ name, values: t.toArray() }).toEqual({ name, values: expected.data });
        else expectClose(t, expected, 1e-6);
      }
    }));

  it('repeat exactly for the same seed and differ for another', () =>
    torch.tidy(() => {
      const [a, b, c] = [1, 1, 2].map((seed) => drawSequence(new torch.Generator(seed)));
      for (const name of Object.keys(a!)) expect(b![name]!.data()).toEqual(a![name]!.data());
      expect(c!.randn_vectorized!.data()).not.toEqual(a!.randn_vectorized!.data());
    }));

  it('independent generators do not disturb each other', () =>
    torch.tidy(() => {
      const alone = new torch.Generator(5).normal([8]).data();
      const interleaved = new torch.Generator(5);
      const other = new torch.Generator(5);
      const first = interleaved.normal([4]);
      other.normal([100]);
      const second = interleaved.normal([4]);
      expect(Float32Array.from([...first.data(), ...second.data()] as number[])).toEqual(alone);
    }));

  it('manualSeed seeds the global generator as torch.manual_seed does (dropout)', () =>
    torch.tidy(() => {
      torch.manualSeed(ref.global_seed);
      expect(torch.dropout(torch.ones([16]), 0.5, true).toArray()).toEqual(ref.dropout_ones_16_p05.data);
    }));
});
