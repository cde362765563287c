// Recipe selection on the validation split. Trains each candidate recipe for several seeds and
// prints ACC/AUC/QWK as mean ± std over seeds: validation by default, which is what recipes are
// chosen on; `--report test` prints the test split, for the final table of the chosen recipe.
//
//   npx tsx bench/quality/sweep.ts --candidates cnn28-light,cnn64-light --seeds 0,1,2 --out runs/sweep
//   npx tsx bench/quality/sweep.ts --candidates default-28 --report test
//
// Each run is a normal run directory (runs/sweep/<candidate>-s<seed>), so any can be inspected
// or re-evaluated with the CLI. Finished runs are reused, so an interrupted sweep continues.
import { parseArgs } from 'node:util';
import { CANDIDATES } from './candidates.js';
import { candidateRuns } from './runs.js';
import { fractionSpread, mean, percentSpread } from './spread.js';

const { values } = parseArgs({
  options: {
    candidates: { type: 'string', default: Object.keys(CANDIDATES).join(',') },
    seeds: { type: 'string', default: '0,1,2' },
    out: { type: 'string', default: 'runs/sweep' },
    'data-dir': { type: 'string' },
    report: { type: 'string', default: 'val' },
  },
});

const split = values.report === 'test' ? 'test' : 'val';
const seeds = values.seeds.split(',').map(Number);
const rows: string[] = [`| candidate | ${split} ACC | ${split} AUC | ${split} QWK | s/run |`, '| --- | --- | --- | --- | --- |'];
for (const name of values.candidates.split(',')) {
  const results = (await candidateRuns(name, seeds, values.out, values['data-dir'])).map((run) => run.metrics);
  const metric = (key: 'acc' | 'auc' | 'qwk'): number[] => results.map((r) => r[split][key]);
  const secondsPerRun = mean(results.map((r) => r.seconds)).toFixed(0);
  rows.push(
    `| ${name} | ${percentSpread(metric('acc'))} | ${percentSpread(metric('auc'))} | ${fractionSpread(metric('qwk'))} | ${secondsPerRun} |`,
  );
  process.stdout.write(`${rows.at(-1)}\n`);
}
process.stdout.write(`\n${rows.join('\n')}\n`);
