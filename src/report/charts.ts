// The report's charts as Vega-Lite specifications, compiled by vega-lite and rendered to SVG by
// vega in Node (no browser, no network): the report embeds the SVG text.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { GRADE_NAMES } from '../data/grades.js';
import { applyTemperature, reliabilityBins, rocCurve, type CoveragePoint, type RocPoint } from '../eval/index.js';

/** Renders a Vega-Lite specification to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const WIDTH = 320;
const HEIGHT = 240;

/** One log.jsonl line: an epoch of one model (`member` for an ensemble's). */
export interface LogLine {
  member?: number;
  epoch: number;
  train_loss: number;
  val_loss: number;
  val_auc: number;
}

/** Training and validation loss, and validation AUC, per epoch, one line per member. */
export function trainingCurves(log: LogLine[]): TopLevelSpec {
  const values = log.flatMap((l) => [
    { member: `member ${l.member ?? 0}`, epoch: l.epoch, measure: 'train loss', value: l.train_loss },
    { member: `member ${l.member ?? 0}`, epoch: l.epoch, measure: 'val loss', value: l.val_loss },
    { member: `member ${l.member ?? 0}`, epoch: l.epoch, measure: 'val AUC', value: l.val_auc },
  ]);
  return {
    data: { values },
    facet: { column: { field: 'measure', type: 'nominal', title: null, sort: ['train loss', 'val loss', 'val AUC'] } },
    spec: {
      width: 220,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: { field: 'member', type: 'nominal', title: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Confusion matrix heat map: rows true grade, columns predicted grade, counts in the cells. */
export function confusionHeatmap(confusion: number[][]): TopLevelSpec {
  const label = (g: number) => `${g} ${GRADE_NAMES[g]}`;
  const values = confusion.flatMap((row, t) => row.map((count, p) => ({ true: label(t), predicted: label(p), count })));
  const order = GRADE_NAMES.map((_, g) => label(g));
  return {
    data: { values },
    width: WIDTH,
    height: WIDTH,
    encoding: {
      x: { field: 'predicted', type: 'ordinal', sort: order, title: 'predicted grade' },
      y: { field: 'true', type: 'ordinal', sort: order, title: 'true grade' },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } } } },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${Math.max(...confusion.flat()) / 2}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

const rocValues = (name: string, points: RocPoint[]) => [
  { curve: name, fpr: 0, tpr: 0 },
  ...points.map(({ fpr, tpr }) => ({ curve: name, fpr, tpr })),
];

/**
 * One-vs-rest ROC of each grade and the referable ROC (P(grade >= 2)), with the operating point
 * chosen on validation marked on the referable curve. Grades the split lacks have no curve, and
 * without an operating point (no image on one side of the cut-off) neither has referable DR.
 */
export function rocChart(
  labels: number[],
  probs: number[][],
  referableGrade: number,
  operatingPoint: { sensitivity: number; specificity: number } | undefined,
): TopLevelSpec {
  const perGrade = GRADE_NAMES.flatMap((name, g) =>
    !labels.includes(g)
      ? []
      : rocValues(
          `${g} ${name}`,
          rocCurve(
            labels.map((l) => l === g),
            probs.map((p) => p[g]!),
          ),
        ),
  );
  const referable = operatingPoint
    ? rocValues(
        `referable (>= ${referableGrade})`,
        rocCurve(
          labels.map((l) => l >= referableGrade),
          probs.map((p) => p.slice(referableGrade).reduce((a, b) => a + b, 0)),
        ),
      )
    : [];
  return {
    width: WIDTH,
    height: WIDTH,
    layer: [
      {
        data: { values: [...perGrade, ...referable] },
        mark: { type: 'line', interpolate: 'step-after' },
        encoding: {
          x: { field: 'fpr', type: 'quantitative', title: '1 - specificity', scale: { domain: [0, 1] } },
          y: { field: 'tpr', type: 'quantitative', title: 'sensitivity', scale: { domain: [0, 1] } },
          color: { field: 'curve', type: 'nominal', title: null },
          strokeWidth: { condition: { test: "indexof(datum.curve, 'referable') === 0", value: 3 }, value: 1.2 },
        },
      },
      ...(operatingPoint
        ? [
            {
              data: { values: [{ fpr: 1 - operatingPoint.specificity, tpr: operatingPoint.sensitivity, label: 'operating point' }] },
              mark: { type: 'point' as const, shape: 'diamond', size: 140, filled: true, color: 'black' },
              encoding: { x: { field: 'fpr', type: 'quantitative' as const }, y: { field: 'tpr', type: 'quantitative' as const } },
            },
          ]
        : []),
    ],
  };
}

/**
 * Reliability diagram of the test split before and after temperature scaling. The probabilities
 * before are recovered exactly from the calibrated ones: temperature T maps p to p^(1/T)
 * renormalized, so p^T renormalized undoes it.
 */
export function reliabilityChart(labels: number[], calibratedProbs: number[][], temperature: number): TopLevelSpec {
  const k = GRADE_NAMES.length;
  const after = calibratedProbs.flat();
  const before = Array.from(applyTemperature(after, k, 1 / temperature));
  const bins = (name: string, probs: number[]) =>
    reliabilityBins(labels, probs, k, 10)
      .filter((b) => b.count > 0)
      .map((b) => ({ probabilities: name, confidence: b.confidence, accuracy: b.accuracy, count: b.count }));
  return {
    width: WIDTH,
    height: WIDTH,
    layer: [
      {
        data: {
          values: [
            { x: 0, y: 0 },
            { x: 1, y: 1 },
          ],
        },
        mark: { type: 'line', strokeDash: [4, 4], color: 'grey' },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: [...bins('before temperature', before), ...bins(`after (T = ${temperature.toFixed(2)})`, after)] },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'confidence', type: 'quantitative', title: 'confidence (top probability)', scale: { domain: [0, 1] } },
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
          color: { field: 'probabilities', type: 'nominal', title: null },
        },
      },
    ],
  };
}

/** Coverage against accuracy as uncertain predictions are referred, with the chosen threshold marked. */
export function coverageChart(curve: CoveragePoint[], chosen: CoveragePoint): TopLevelSpec {
  return {
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values: curve.map(({ coverage, accuracy }) => ({ coverage, accuracy })) },
        mark: 'line',
        encoding: {
          x: { field: 'coverage', type: 'quantitative', title: 'coverage (fraction graded, not referred)', scale: { domain: [0, 1] } },
          y: { field: 'accuracy', type: 'quantitative', title: 'ACC of the graded', scale: { zero: false } },
        },
      },
      {
        data: { values: [{ coverage: chosen.coverage, accuracy: chosen.accuracy }] },
        mark: { type: 'point', shape: 'diamond', size: 140, filled: true, color: 'black' },
        encoding: { x: { field: 'coverage', type: 'quantitative' }, y: { field: 'accuracy', type: 'quantitative' } },
      },
    ],
  };
}
