// How many members should an ensemble have? Answered on the validation split from finished
// single-model runs: member k of `--ensemble K --seed s` is exactly the single run with seed
// s*K+k (src/train/ensemble.ts, memberSeed), so averaging the probabilities of runs 0..K-1,
// K..2K-1, ... gives the validation metrics those ensembles would have, without retraining.
//
//   npx tsx bench/quality/ensemble-size.ts --runs runs/sweep/default-28-s0,...,runs/ens/d28-s9 --sizes 1,2,3,5
//
// Runs are taken in the order given (seed order): groups of K consecutive runs form ensembles.
import { parseArgs } from 'node:util';
import { openRun } from '../../src/model/open-run.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { takeRange } from '../../src/data/training-data.js';
import { predictProbabilities } from '../../src/model/inference.js';
import { NUM_GRADES } from '../../src/data/grades.js';
import { computeMetrics } from '../../src/eval/index.js';
import { fractionSpread, mean, percentSpread } from './spread.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    sizes: { type: 'string', default: '1,2,3,5' },
    'data-dir': { type: 'string' },
  },
});
if (!values.runs) throw new Error('--runs DIR,DIR,... is required');

const runDirs = values.runs.split(',');
const saved = runDirs.map((dir) => openRun(dir));
const size = saved[0]!.modelConfig.inputSize;
if (saved.some((s) => s.modelConfig.inputSize !== size)) throw new Error('all runs must have the same input size');
const val = loadRetinaTensors({ dataDir: values['data-dir'], size }).val;
const probabilities = saved.map((s) => predictProbabilities(s.model, s.objective, takeRange(val, 0, val.count)));

process.stdout.write('| members | ensembles | val ACC | val AUC | val QWK |\n| ---: | ---: | --- | --- | --- |\n');
for (const k of values.sizes.split(',').map(Number)) {
  const groups = Math.floor(runDirs.length / k);
  if (groups === 0) continue;
  const metrics = Array.from({ length: groups }, (_, g) => {
    const members = probabilities.slice(g * k, (g + 1) * k);
    const averaged = members[0]!.map((_, i) => mean(members.map((p) => p[i]!)));
    return computeMetrics(val.labels, averaged, NUM_GRADES);
  });
  const column = (key: 'acc' | 'auc' | 'qwk'): number[] => metrics.map((m) => m[key]);
  process.stdout.write(
    `| ${k} | ${groups} | ${percentSpread(column('acc'))} | ${percentSpread(column('auc'))} | ${fractionSpread(column('qwk'))} |\n`,
  );
}
