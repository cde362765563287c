// Assigning photographs to train/val/test: the labels file's own split when it has one, else
// stratified by grade; photographs of one patient always land in the same split. Deterministic
// for a given seed, and independent of the order in which photographs are later decoded.
import type { Split } from '../registry.js';
import type { SourceEntry } from './source.js';
import { seededRandom } from '../../random.js';

export interface SplitFractions {
  val: number;
  test: number;
}

function shuffle<T>(items: T[], next: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * Groups (patients, or single photographs when there are none) are stratified by their highest
 * grade; within each stratum a shuffled round(n * test) go to test (at least one when n >= 3),
 * round(n * val) to val (likewise), the rest to train.
 */
function stratify(entries: readonly SourceEntry[], fractions: SplitFractions, seed: number): Map<string, Split> {
  const groups = new Map<string, SourceEntry[]>();
  for (const entry of entries) {
    const key = entry.group ?? `image:${entry.id}`;
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  const strata = new Map<number, string[]>();
  for (const [key, members] of groups) {
    const grade = Math.max(...members.map((m) => m.grade));
    strata.set(grade, [...(strata.get(grade) ?? []), key]);
  }
  const next = seededRandom(seed);
  const splitOf = new Map<string, Split>();
  for (const grade of [...strata.keys()].sort((a, b) => a - b)) {
    const keys = shuffle(strata.get(grade)!.sort(), next);
    // A grade with three or more groups has at least one in each split asked for: a split without
    // some grade leaves its one-vs-rest AUC undefined.
    const share = (fraction: number) => Math.max(fraction > 0 && keys.length >= 3 ? 1 : 0, Math.round(keys.length * fraction));
    const test = share(fractions.test);
    const val = share(fractions.val);
    keys.forEach((key, i) => {
      const split: Split = i < test ? 'test' : i < test + val ? 'val' : 'train';
      for (const member of groups.get(key)!) splitOf.set(member.id, split);
    });
  }
  return splitOf;
}

/**
 * The split of every entry, by id. A labels file's split column is kept as given; if it names no
 * validation photographs, validation is drawn from its training ones (stratified, by patient).
 */
export function assignSplits(entries: readonly SourceEntry[], fractions: SplitFractions, seed: number): Map<string, Split> {
  if (!entries.some((e) => e.split)) return stratify(entries, fractions, seed);
  const splitOf = new Map<string, Split>(entries.map((e) => [e.id, e.split!]));
  if (!entries.some((e) => e.split === 'val')) {
    const train = entries.filter((e) => e.split === 'train');
    for (const [id, split] of stratify(train, { val: fractions.val, test: 0 }, seed)) splitOf.set(id, split);
  }
  return splitOf;
}
