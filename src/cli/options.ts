// Flag parsers and options shared by the subcommands.
import { InvalidArgumentError, Option } from 'commander';
import { PRECISIONS } from '../torch/index.js';

export const parseInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return n;
};
/** An integer flag that must be at least `min`. */
export const integerAtLeast =
  (min: number) =>
  (value: string): number => {
    const n = parseInteger(value);
    if (n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
    return n;
  };
/** An integer flag that must be from `min` to `max`. */
export const integerBetween =
  (min: number, max: number) =>
  (value: string): number => {
    const n = parseInteger(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got '${value}'`);
    return n;
  };
/** An integer flag that must be one of `choices`. */
export const integerChoice =
  (choices: readonly number[]) =>
  (value: string): number => {
    const n = Number(value);
    if (!choices.includes(n)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}, got '${value}'`);
    return n;
  };
export const parseNumber = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
};
export const dataDirOption = (): Option =>
  new Option('--data-dir <dir>', 'folder holding the MedMNIST .npz files (else $MEDMNIST_DIR, else ~/.medmnist)');
/** `--precision`: train's sets the run's precision; evaluate's, predict's and serve's override the run's. */
export const precisionOption = (command: 'train' | 'inference'): Option =>
  new Option(
    '--precision <p>',
    command === 'train'
      ? 'bf16: convolutions and matrix products in bfloat16 (CPUs with AVX512-BF16 or AMX; fp32 elsewhere) ' +
          '(default: bf16 for the default recipe where the CPU has it, else fp32)'
      : 'compute precision, bf16 only on CPUs with AVX512-BF16 or AMX (default: the one the run was trained at)',
  ).choices(PRECISIONS);
export const allowUnfinishedOption = (): Option =>
  new Option('--allow-unfinished', "use an unfinished run's best epoch so far (said in every output) instead of refusing it");

/** Edit distance (insertions, deletions, substitutions), for suggesting what a typo meant. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate nearest to `word` when it is a plausible typo of it (case ignored), else undefined. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= Math.max(2, Math.floor(candidate.length / 3)) && (!best || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}
