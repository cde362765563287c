// Does temperature scaling (src/model/run-calibration.ts: one temperature fitted on validation NLL)
// make the probabilities better calibrated? ECE (15 bins) and NLL before and after, as mean ± std
// over seeds of one candidate (trained into <out>/<candidate>-s<seed> when missing):
// - val: the run's metrics.json (the temperature was fitted on these very images, so NLL can only drop);
// - val, out of fold: the validation images split in two halves (even and odd rows), each tempered
//   with the temperature fitted on the other half: validation's estimate of the effect on new images;
// - test: the run's metrics.json, for the final numbers only.
//
//   RETINAGRADE_THREADS=1 npx tsx bench/quality/temperature.ts --candidate single-28 --seeds 0,1,2
import { parseArgs } from 'node:util';
import { NUM_GRADES } from '../../src/data/grades.js';
import { loadRetinaTensors } from '../../src/data/retinamnist.js';
import { releaseTrainingData } from '../../src/data/training-data.js';
import { applyTemperature, expectedCalibrationError, fitTemperature, negativeLogLikelihood } from '../../src/eval/index.js';
import { predictSplit } from '../../src/model/inference.js';
import { openRun } from '../../src/model/open-run.js';
import type { CalibrationChange } from '../../src/model/run-metrics.js';
import { candidateRuns } from './runs.js';
import { fractionSpread, mean } from './spread.js';

const { values } = parseArgs({
  options: {
    candidate: { type: 'string', default: 'single-28' },
    seeds: { type: 'string', default: '0,1,2' },
    out: { type: 'string', default: 'runs/sweep' },
    'data-dir': { type: 'string' },
  },
});

/** Each half of validation tempered with the temperature fitted on the other half. */
function outOfFold(labels: Uint8Array, probs: Float32Array): CalibrationChange {
  const k = NUM_GRADES;
  const folds = [0, 1].map((parity) => Array.from(labels.keys()).filter((i) => i % 2 === parity));
  const rows = (indices: number[]) => Float32Array.from(indices.flatMap((i) => Array.from(probs.subarray(i * k, (i + 1) * k))));
  const after = new Float64Array(probs.length);
  for (const [f, fold] of folds.entries()) {
    const other = folds[1 - f]!;
    const temperature = fitTemperature(
      other.map((i) => labels[i]!),
      rows(other),
      k,
    );
    const tempered = applyTemperature(rows(fold), k, temperature);
    fold.forEach((i, j) => after.set(tempered.subarray(j * k, (j + 1) * k), i * k));
  }
  return {
    ece_before: expectedCalibrationError(labels, probs, k),
    ece_after: expectedCalibrationError(labels, after, k),
    nll_before: negativeLogLikelihood(labels, probs, k),
    nll_after: negativeLogLikelihood(labels, after, k),
  };
}

const runs = await candidateRuns(values.candidate, values.seeds.split(',').map(Number), values.out, values['data-dir']);
const rows: { split: string; changes: CalibrationChange[] }[] = [
  { split: 'val (fitted there)', changes: [] },
  { split: 'val, out of fold', changes: [] },
  { split: 'test', changes: [] },
];
for (const run of runs) {
  const opened = openRun(run.dir);
  const data = loadRetinaTensors({ dataDir: values['data-dir'], size: opened.modelConfig.inputSize });
  try {
    const raw = predictSplit(opened.model, opened.objective, data.val);
    rows[0]!.changes.push(run.metrics.calibration.val);
    rows[1]!.changes.push(outOfFold(data.val.labels, raw));
    rows[2]!.changes.push(run.metrics.calibration.test);
  } finally {
    releaseTrainingData(data);
    opened.model.dispose();
  }
}

const temperatures = runs.map((r) => r.metrics.calibration.temperature);
const perSeed = temperatures.map((t) => t.toFixed(3)).join(' / ');
process.stdout.write(`${values.candidate}, seeds ${values.seeds}: temperature ${fractionSpread(temperatures)} (per seed ${perSeed})\n\n`);
process.stdout.write(
  '| split | ECE before | ECE after | NLL before | NLL after | ECE lower after, seeds |\n| --- | --- | --- | --- | --- | --- |\n',
);
for (const { split, changes } of rows) {
  const column = (key: keyof CalibrationChange) => fractionSpread(changes.map((c) => c[key]));
  const better = changes.filter((c) => c.ece_after < c.ece_before).length;
  const figures = (['ece_before', 'ece_after', 'nll_before', 'nll_after'] as const).map(column);
  process.stdout.write(`| ${split} | ${figures.join(' | ')} | ${better} of ${changes.length} |\n`);
}
const oof = rows[1]!.changes;
const change = (key: 'ece' | 'nll') => mean(oof.map((c) => c[`${key}_after`] - c[`${key}_before`]));
process.stdout.write(`\nval out of fold, mean change after - before: ECE ${change('ece').toFixed(4)}, NLL ${change('nll').toFixed(4)}\n`);
