// report.html: one self-contained page about a finished run, to open from disk without a network:
// its figures with intervals, per-grade figures with intervals, charts rendered by vega (SVG
// inline), a gallery of test images with their Grad-CAM, and the model card. Written by `train` at
// the end of a run and by `retinagrade report RUN`.
import { readFileSync } from 'node:fs';
import { GRADE_NAMES, NUM_GRADES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import type { SplitSource } from '../data/training-data.js';
import { UserError } from '../errors.js';
import { bootstrapPerGrade, type Interval, type OperatingPointReport } from '../eval/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { openRun } from '../model/open-run.js';
import { RunDir } from '../model/run-dir.js';
import type { RunMetrics } from '../model/run-metrics.js';
import type { SplitFigures } from '../model/split-figures.js';
import { NOT_FOR_CLINICAL_USE } from '../notice.js';
import { confusionHeatmap, coverageChart, type LogLine, reliabilityChart, renderSvg, rocChart, trainingCurves } from './charts.js';
import { checkGalleryImages, galleryFigures, galleryPicks } from './gallery.js';
import { escapeHtml } from './html.js';

const fixed = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const withInterval = (x: number, ci: Interval): string => `${fixed(x)} [${fixed(ci.lo)}, ${fixed(ci.hi)}]`;
/** A table cell carrying its exact value, so tests can check the page against metrics.json. */
const cell = (key: string, text: string, value: number): string => `<td data-metric="${key}" data-value="${value}">${text}</td>`;
/** A figure with its bootstrap interval, the bounds in data attributes too. */
const intervalCell = (key: string, value: number, ci: Interval): string =>
  `<td data-metric="${key}" data-value="${value}" data-lo="${ci.lo}" data-hi="${ci.hi}">${withInterval(value, ci)}</td>`;

function splitRow(name: string, f: SplitFigures): string {
  return (
    `<tr><th scope="row">${name}</th>${cell(`${name}.acc`, withInterval(f.acc, f.ci95.acc), f.acc)}` +
    `${cell(`${name}.auc`, withInterval(f.auc, f.ci95.auc), f.auc)}${cell(`${name}.qwk`, withInterval(f.qwk, f.ci95.qwk), f.qwk)}` +
    `<td>${fixed(f.macro_f1)}</td><td>${fixed(f.balanced_acc)}</td><td>${fixed(f.ece)}</td></tr>`
  );
}

function operatingRow(name: string, split: string, key: string, p: OperatingPointReport | undefined): string {
  if (!p)
    return `<tr><th scope="row">${name}</th><td>${split}</td><td colspan="5">not reported: no image on one side of the cut-off</td></tr>`;
  return (
    `<tr><th scope="row">${name}</th><td>${split}</td><td>${p.positives} / ${p.positives + p.negatives}</td>` +
    `${cell(`${split}.${key}.auc`, withInterval(p.auc, p.ci95.auc), p.auc)}<td>${fixed(p.threshold)}</td>` +
    `${cell(`${split}.${key}.sensitivity`, withInterval(p.sensitivity, p.ci95.sensitivity), p.sensitivity)}` +
    `${cell(`${split}.${key}.specificity`, withInterval(p.specificity, p.ci95.specificity), p.specificity)}</tr>`
  );
}

function readTestPredictions(run: RunDir): { labels: number[]; probs: number[][] } {
  const rows = readFileSync(run.file('predictions'), 'utf8').trim().split('\n').slice(1);
  const parsed = rows.map((line) => line.split(',').map(Number));
  return {
    labels: parsed.map((r) => r[1]!),
    probs: parsed.map((r) => r.slice(3, 3 + GRADE_NAMES.length)),
  };
}

const STYLE = `
  :root { font-family: system-ui, sans-serif; line-height: 1.45; color: #1a1a1a; background: #fafafa; }
  body { max-width: 72rem; margin: 0 auto; padding: 1rem; }
  .notice { border: 3px solid #b00020; background: #fdecee; padding: 0.75rem 1rem; font-weight: 600; }
  table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
  td, th { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; font-variant-numeric: tabular-nums; }
  th[scope=row] { text-align: left; }
  .charts, .gallery { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  .gallery figcaption { max-width: 14rem; font-size: 0.9rem; }
  figure { margin: 0; }
  pre { white-space: pre-wrap; background: #fff; border: 1px solid #ddd; padding: 1rem; }
`;

/** metrics.json of a finished run this version can report on; a UserError saying what is missing otherwise. */
export function reportableMetrics(path: string): RunMetrics {
  const run = new RunDir(path);
  for (const name of ['metrics', 'log', 'predictions', 'card'] as const) {
    if (!run.has(name)) throw new UserError(`${path} is not a finished run: ${run.file(name)} is missing`);
  }
  const metrics = run.readJson<RunMetrics>('metrics');
  if (!metrics.val.referable || !metrics.calibration) {
    throw new UserError(`${run.file('metrics')} has no referable figures or calibration: retrain the run with this version to report it`);
  }
  return metrics;
}

/**
 * Writes report.html into the run directory and returns its path. `testImages`: the run's test
 * split (the images predictions.csv was written from), for the gallery's Grad-CAM pictures.
 */
export async function writeReport(path: string, testImages: SplitSource): Promise<string> {
  const run = new RunDir(path);
  const metrics = reportableMetrics(path);
  const log = readFileSync(run.file('log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);
  const { labels, probs } = readTestPredictions(run);
  checkGalleryImages(testImages, labels, run.file('predictions'));
  const { test, val, calibration, uncertainty, model } = metrics;
  const charts: [string, string, Promise<string>][] = [
    ['training', 'Training: loss and validation AUC per epoch, per member', renderSvg(trainingCurves(log))],
    ['confusion', 'Confusion matrix on test', renderSvg(confusionHeatmap(test.confusion))],
    [
      'roc',
      'ROC on test: each grade one-vs-rest, and referable DR with the operating point chosen on validation',
      renderSvg(rocChart(labels, probs, REFERABLE_GRADE, test.referable)),
    ],
    [
      'reliability',
      'Reliability on test, before and after temperature scaling',
      renderSvg(reliabilityChart(labels, probs, calibration.temperature)),
    ],
    [
      'coverage',
      `Coverage and accuracy on test as uncertain predictions are referred (diamond: the threshold chosen on validation)`,
      renderSvg(coverageChart(uncertainty.test_curve, uncertainty.test)),
    ],
  ];
  const figures = await Promise.all(
    charts.map(
      async ([id, caption, svg]) =>
        `<figure id="chart-${id}" class="chart">${await svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`,
    ),
  );
  // Intervals from predictions.csv's probabilities, around metrics.json's figures.
  const gradeIntervals = bootstrapPerGrade(labels, probs, NUM_GRADES);
  const gradeRows = test.per_class.map((c, g) => {
    const name = `<th scope="row">${g} ${escapeHtml(GRADE_NAMES[g]!)}</th><td>${c.support}</td>`;
    const intervals = gradeIntervals[g];
    // A grade the split lacks: its recall and one-vs-rest AUC are undefined (metrics.json has null).
    if (!intervals) return `<tr>${name}<td>-</td><td>${fixed(c.precision)}</td><td>${fixed(c.f1)}</td><td>-</td></tr>`;
    return (
      `<tr>${name}${intervalCell(`test.recall.${g}`, c.recall, intervals.recall)}` +
      `${intervalCell(`test.precision.${g}`, c.precision, intervals.precision)}` +
      `<td>${fixed(c.f1)}</td>${intervalCell(`test.auc.${g}`, test.auc_per_grade[g]!, intervals.auc)}</tr>`
    );
  });
  const picks = galleryPicks(labels, probs);
  const opened = openRun(path);
  let correctFigures: string[];
  let mistakeFigures: string[];
  try {
    correctFigures = await galleryFigures(opened, testImages, picks.correct);
    mistakeFigures = await galleryFigures(opened, testImages, picks.wrong);
  } finally {
    opened.model.dispose();
  }
  const screening = [
    [`referable (grade &ge; ${REFERABLE_GRADE})`, 'referable'] as const,
    [`vision-threatening (grade &ge; ${VISION_THREATENING_GRADE})`, 'vision_threatening'] as const,
  ].flatMap(([name, key]) => [operatingRow(name, 'val', key, val[key]), operatingRow(name, 'test', key, test[key])]);
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>retinagrade run report (research only)</title>
<style>${STYLE}</style>
</head>
<body>
<h1>retinagrade run report</h1>
<p class="notice" role="note">${NOT_FOR_CLINICAL_USE} Do not use it to diagnose, screen or treat anyone.</p>
<p>${escapeHtml(model.name)} at ${model.size}x${model.size}${model.ensemble > 1 ? `, ensemble of ${model.ensemble}` : ''};
written by retinagrade ${escapeHtml(metrics.version)}. Every figure is a fraction, of the temperature-scaled probabilities;
brackets are bootstrap 95% intervals. Thresholds were chosen on validation only.</p>
<h2>Results</h2>
<table id="splits"><thead><tr><th></th><th>ACC</th><th>AUC</th><th>QWK</th><th>macro-F1</th><th>balanced ACC</th><th>ECE</th></tr></thead>
<tbody>${splitRow('val', val)}${splitRow('test', test)}</tbody></table>
<h3>Referral</h3>
<table id="referral"><thead><tr><th></th><th>split</th><th>positives</th><th>AUC</th><th>threshold</th>
<th>sensitivity</th><th>specificity</th></tr></thead>
<tbody>${screening.join('')}</tbody></table>
<p>Temperature ${fixed(calibration.temperature)}: test ECE ${fixed(calibration.test.ece_before)} before,
${fixed(calibration.test.ece_after)} after. Uncertain above ${fixed(uncertainty.threshold)}:
test coverage ${fixed(uncertainty.test.coverage)}, ACC of the graded ${fixed(uncertainty.test.accuracy)}.</p>
<h3>Per grade on test</h3>
<table id="grades"><thead><tr><th></th><th>support</th><th>sensitivity (recall)</th><th>precision</th><th>F1</th>
<th>AUC (one-vs-rest)</th></tr></thead>
<tbody>${gradeRows.join('')}</tbody></table>
<h2>Charts</h2>
<div class="charts">${figures.join('\n')}</div>
<h2>Gallery of test images</h2>
<p>Each test image beside its Grad-CAM of the predicted grade (where the evidence for it lies, weak to strong), with
the predicted grade's temperature-scaled probability.</p>
<h3>Right: for each grade, the image predicted as it with the highest probability</h3>
<div class="gallery" id="gallery-correct">${correctFigures.join('\n')}</div>
<h3>Worst mistakes: the wrong predictions with the highest probability</h3>
<div class="gallery" id="gallery-mistakes">${mistakeFigures.join('\n')}</div>
<h2>Model card</h2>
<pre id="model-card">${escapeHtml(readFileSync(run.file('card'), 'utf8'))}</pre>
</body>
</html>
`;
  writeFileAtomic(run.file('report'), html);
  return run.file('report');
}
