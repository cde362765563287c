// Starts an ensemble run from finished single-model runs, so that a sweep does not train them
// again: member k of `--ensemble K --seed s` is the single run with seed s*K+k and otherwise the
// same config (src/train/ensemble.ts, memberSeed). Each adopted run's config.json must equal the
// config the member would have; the ensemble's `--resume` then finds those members finished and
// trains only the rest. With the same thread count the result is the same as training them all.
//
//   npx tsx bench/quality/adopt-members.ts --candidate default-28 --seed 1 --out runs/sweep/default-28-s1 \
//     --runs runs/ens/d28-s5,runs/ens/d28-s6,...        # one run per member, in member order; an empty entry skips one
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveRunConfig } from '../../src/cli/train/config-flags.js';
import { RunDir } from '../../src/model/run-dir.js';
import { recordsConfig } from '../../src/train/checkpoint.js';
import { savedConfigOf } from '../../src/train/config.js';
import { memberSeed } from '../../src/train/ensemble.js';
import { CANDIDATES } from './candidates.js';

const { values } = parseArgs({
  options: {
    candidate: { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    runs: { type: 'string' },
  },
});
const flags = CANDIDATES[values.candidate ?? ''];
if (!flags || values.seed === undefined || !values.out || !values.runs) {
  throw new Error('usage: --candidate NAME --seed S --out DIR --runs DIR,DIR,... (see the header of this file)');
}
const config = resolveRunConfig({ ...flags, seed: Number(values.seed) });
const run = new RunDir(values.out);
if (run.has('config')) throw new Error(`${values.out} already holds a run`);

const adopted = values.runs.split(',').map((dir, k) => {
  if (dir === '') return undefined;
  const member = { ...config, ensemble: 1, seed: memberSeed(config.seed, k, config.ensemble) };
  const actual = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as object;
  if (!recordsConfig(actual, member)) throw new Error(`${dir} is not member ${k}: its config.json differs`);
  if (!existsSync(join(dir, 'checkpoint.safetensors'))) throw new Error(`${dir} has no checkpoint`);
  return dir;
});

run.create();
run.writeJson('config', savedConfigOf(config));
adopted.forEach((dir, k) => {
  if (!dir) return;
  for (const file of ['config.json', 'log.jsonl', 'checkpoint.safetensors', 'best.safetensors'])
    cpSync(join(dir, file), join(run.member(k).path, file));
  process.stderr.write(`member ${k}: ${dir}\n`);
});
