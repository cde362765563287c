// The gradability gate's margins (src/model/gradability.ts, GATE_MARGINS), chosen without the test
// split: for each seed, a short run (the configuration test/model/gradability.test.ts trains) is
// fitted a gate per candidate margin pair, and the negative set built from the VALIDATION images
// (test/helpers/negatives.ts with the val split as its source) is graded with crop disc and crop
// none. A gate admits every validation image it was fitted with, so the rate at which real images
// are refused is estimated out of fold: the gate fitted with one half of validation checks the
// other half, and the other way round. The choice, among the pairs refusing at least 99% of those
// negatives in both crop modes for every seed: the fewest validation images refused out of fold,
// then the most negatives refused, then the larger OOD margin, then the smaller range margin.
//
//   npx tsx bench/quality/gate-margins.ts                      # seeds 1,2,3: the choice table
//   npx tsx bench/quality/gate-margins.ts --measure-test       # then, for GATE_MARGINS only: test figures
//
// `--measure-test` grades the 400 test images, the sample photographs and the negative set built
// from the test images (as the test does) with the margins in the code; run it after the choice.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadMedMNIST, type SplitData } from '../../src/data/medmnist.js';
import { loadRetinaTensors, type SplitTensors } from '../../src/data/retinamnist.js';
import { takeRange } from '../../src/data/training-data.js';
import { checkGradability, fitGradabilityGate, GATE_MARGINS, type GateMargins } from '../../src/model/gradability.js';
import { predictImage } from '../../src/model/grade-photo.js';
import { openRun, type OpenedModel } from '../../src/model/open-run.js';
import { RunConfigSchema } from '../../src/train/config.js';
import { train } from '../../src/train/run.js';
import { negativeSet, type NamedImage } from '../../test/helpers/negatives.js';
import { mean } from './spread.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    'range-margins': { type: 'string', default: '0.25,0.5,1' },
    'ood-margins': { type: 'string', default: '1.1,1.25,1.5,2' },
    'measure-test': { type: 'boolean', default: false },
    'data-dir': { type: 'string', default: resolve(import.meta.dirname, '../../../shared/data') },
  },
});
const dataDir = values['data-dir'];
const samplesDir = resolve(dataDir, '../samples');
const samples = readdirSync(samplesDir)
  .sort()
  .map((name) => join(samplesDir, name));
const raw = loadMedMNIST(join(dataDir, 'retinamnist.npz'), 'retinamnist');
const negativesOf = (split: SplitData): Promise<NamedImage[]> =>
  negativeSet({ images: split.images, count: split.count, side: raw.size }, samples);

/**
 * Fraction of the images not graded (refused, or an error such as a montage that is not square
 * with crop none); the names of those graded go to stderr.
 */
async function refused(opened: OpenedModel, images: NamedImage[], crop: 'disc' | 'none'): Promise<number> {
  const graded: string[] = [];
  for (const image of images) {
    const record = await predictImage(opened, image, { crop });
    if (record.grade !== undefined) graded.push(image.name);
  }
  if (graded.length > 0) process.stderr.write(`  crop ${crop}, graded: ${graded.join(', ')}\n`);
  return 1 - graded.length / images.length;
}

/** The test's configuration, trained per seed (a few seconds each). */
function trainRun(seed: number): Promise<OpenedModel> {
  const outDir = join(mkdtempSync(join(tmpdir(), 'retinagrade-gate-margins-')), 'run');
  const config = RunConfigSchema.parse({ model: { width: 16 }, epochs: 3, ensemble: 1, seed });
  return train({ config, outDir, dataDir }).then(() => openRun(outDir));
}

/** Rows start..end-1 of a split. */
const rowsOf = (split: SplitTensors, start: number, end: number): SplitTensors => ({
  pixels: split.pixels.slice(0, start, end),
  size: split.size,
  y: split.y.slice(0, start, end),
  labels: split.labels.subarray(start, end),
  count: end - start,
});

/** Validation images refused by the gate fitted with the other half of validation, out of all of them. */
function refusedOutOfFold(opened: OpenedModel, train: SplitTensors, val: SplitTensors, margins: GateMargins): number {
  const half = Math.floor(val.count / 2);
  const halves = [rowsOf(val, 0, half), rowsOf(val, half, val.count)];
  let refusedCount = 0;
  for (const [h, checked] of halves.entries()) {
    const gate = fitGradabilityGate(opened.model, train, halves[1 - h]!, margins);
    refusedCount += checkGradability(opened.model, gate, takeRange(checked, 0, checked.count)).filter((c) => c.reasons.length > 0).length;
    for (const t of [gate.bank, gate.mean, gate.std]) t.dispose();
  }
  return refusedCount / val.count;
}

const seeds = values.seeds.split(',').map(Number);
const percent = (x: number): string => (100 * x).toFixed(1);

if (values['measure-test']) {
  const testNegatives = await negativesOf(raw.test);
  process.stdout.write(`GATE_MARGINS ${JSON.stringify(GATE_MARGINS)}\n`);
  process.stdout.write('| seed | test images refused | samples refused | test negatives refused, crop disc | crop none |\n');
  process.stdout.write('| ---: | ---: | ---: | ---: | ---: |\n');
  for (const seed of seeds) {
    process.stderr.write(`seed ${seed}\n`);
    const opened = await trainRun(seed);
    const tensors = loadRetinaTensors({ dataDir, size: opened.modelConfig.inputSize });
    const testRefused = checkGradability(opened.model, opened.gradability, takeRange(tensors.test, 0, tensors.test.count)).filter(
      (c) => c.reasons.length > 0,
    ).length;
    const photographs = samples.map((path) => ({ name: path, bytes: readFileSync(path) }));
    const samplesRefused = (await refused(opened, photographs, 'disc')) * photographs.length;
    const [disc, none] = [await refused(opened, testNegatives, 'disc'), await refused(opened, testNegatives, 'none')];
    const counts = `${testRefused} / ${tensors.test.count} | ${samplesRefused} / ${samples.length}`;
    process.stdout.write(`| ${seed} | ${counts} | ${percent(disc)}% | ${percent(none)}% |\n`);
  }
} else {
  const valNegatives = await negativesOf(raw.val);
  const candidates: GateMargins[] = values['range-margins']
    .split(',')
    .flatMap((range) => values['ood-margins'].split(',').map((ood) => ({ range: Number(range), ood: Number(ood) })));
  // Per candidate, per seed: fractions of the validation negatives refused [crop disc, crop none],
  // and of the validation images refused out of fold.
  const results = candidates.map(() => [] as [number, number, number][]);
  for (const seed of seeds) {
    const opened = await trainRun(seed);
    const tensors = loadRetinaTensors({ dataDir, size: opened.modelConfig.inputSize });
    for (const [c, margins] of candidates.entries()) {
      process.stderr.write(`seed ${seed}, margins ${JSON.stringify(margins)}\n`);
      const gate = fitGradabilityGate(opened.model, tensors.train, tensors.val, margins);
      const withGate = { ...opened, gradability: gate };
      const [disc, none] = [await refused(withGate, valNegatives, 'disc'), await refused(withGate, valNegatives, 'none')];
      results[c]!.push([disc, none, refusedOutOfFold(opened, tensors.train, tensors.val, margins)]);
      for (const t of [gate.bank, gate.mean, gate.std]) t.dispose();
    }
  }
  process.stdout.write(`${valNegatives.length} validation negatives, seeds ${seeds.join(',')}: % refused, mean (lowest seed)\n`);
  process.stdout.write(
    '| range margin | OOD margin | negatives, crop disc | negatives, crop none | val refused out of fold, mean (highest seed) | ' +
      'negatives >= 99% every seed |\n| ---: | ---: | ---: | ---: | ---: | --- |\n',
  );
  const meets = results.map((perSeed) => perSeed.every(([disc, none]) => disc >= 0.99 && none >= 0.99));
  const meanOf = (c: number, k: 0 | 1 | 2) => mean(results[c]!.map((r) => r[k]));
  for (const [c, { range, ood }] of candidates.entries()) {
    const lowest = (k: 0 | 1) => `${percent(meanOf(c, k))} (${percent(Math.min(...results[c]!.map((r) => r[k])))})`;
    const falseRefusals = `${percent(meanOf(c, 2))} (${percent(Math.max(...results[c]!.map((r) => r[2])))})`;
    process.stdout.write(`| ${range} | ${ood} | ${lowest(0)} | ${lowest(1)} | ${falseRefusals} | ${meets[c] ? 'yes' : 'no'} |\n`);
  }
  const chosen = candidates
    .map((margins, c) => ({ margins, c }))
    .filter(({ c }) => meets[c])
    .sort(
      (a, b) =>
        meanOf(a.c, 2) - meanOf(b.c, 2) ||
        meanOf(b.c, 0) + meanOf(b.c, 1) - meanOf(a.c, 0) - meanOf(a.c, 1) ||
        b.margins.ood - a.margins.ood ||
        a.margins.range - b.margins.range,
    )[0];
  process.stdout.write(`chosen: ${chosen ? JSON.stringify(chosen.margins) : 'none meets 99%'}\n`);
}
