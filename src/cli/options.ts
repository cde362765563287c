// Flag parsers and options shared by the subcommands.
import { InvalidArgumentError, Option } from 'commander';

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
