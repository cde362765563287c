// A split's figures as text for people (train's summary, evaluate): every metric a fraction, as
// MedMNIST reports them, each with its bootstrap 95% interval where there is one.
import { GRADE_NAMES, REFERABLE_GRADE, VISION_THREATENING_GRADE } from '../data/grades.js';
import type { Interval, OperatingPointReport } from '../eval/index.js';
import { type SplitFigures, straddles } from '../model/split-figures.js';

const fraction = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const withInterval = (x: number, ci: Interval): string => `${fraction(x)} [${fraction(ci.lo)}, ${fraction(ci.hi)}]`;

function operatingPointLine(label: string, cut: number, point: OperatingPointReport | undefined, f: SplitFigures): string {
  if (!point) {
    const present = GRADE_NAMES.flatMap((_, g) => (f.grades_absent?.includes(g) ? [] : [g]));
    const why = straddles(present, cut) ? 'the run has no calibration.json' : 'no image on one side of it in this split';
    return `  ${label} (grade >= ${cut}): not reported (${why})`;
  }
  return (
    `  ${label} (grade >= ${cut}, ${point.positives} of ${point.positives + point.negatives}): ` +
    `AUC ${withInterval(point.auc, point.ci95.auc)}  sensitivity ${withInterval(point.sensitivity, point.ci95.sensitivity)}  ` +
    `specificity ${withInterval(point.specificity, point.ci95.specificity)}  at P >= ${fraction(point.threshold)}`
  );
}

/** The headline line of a split: ACC, AUC, QWK with intervals, then the rest. */
export function headlineText(split: string, f: SplitFigures): string {
  return (
    `${split}: ACC ${withInterval(f.acc, f.ci95.acc)}  AUC ${withInterval(f.auc, f.ci95.auc)}  QWK ${withInterval(f.qwk, f.ci95.qwk)}  ` +
    `macro-F1 ${fraction(f.macro_f1)}  balanced ACC ${fraction(f.balanced_acc)}  ECE ${fraction(f.ece)}`
  );
}

/** Everything: headline, referable figures, per-grade table and the confusion matrix. */
export function splitFiguresText(split: string, f: SplitFigures): string {
  const nameWidth = Math.max(...GRADE_NAMES.map((name, g) => `${g} ${name}`.length));
  const cell = (v: string | number, width = 10) => String(v).padStart(width);
  const gradeLabel = (g: number) => `${g} ${GRADE_NAMES[g]}`.padEnd(nameWidth);
  const perGrade = f.per_class.map(
    (c, g) =>
      `  ${gradeLabel(g)}${cell(c.support)}${cell(fraction(c.precision))}${cell(fraction(c.recall))}${cell(fraction(c.f1))}` +
      cell(f.auc_per_grade[g] == null ? '-' : fraction(f.auc_per_grade[g])),
  );
  const confusion = f.confusion.map((row, t) => `  ${gradeLabel(t)}${row.map((n) => cell(n, 6)).join('')}`);
  return [
    headlineText(split, f),
    ...(f.note ? [`  note: ${f.note}`] : []),
    operatingPointLine('referable', REFERABLE_GRADE, f.referable, f),
    operatingPointLine('vision-threatening', VISION_THREATENING_GRADE, f.vision_threatening, f),
    `  ${''.padEnd(nameWidth)}${['support', 'precision', 'recall', 'F1', 'AUC'].map((h) => cell(h)).join('')}`,
    ...perGrade,
    `  confusion matrix (rows: true grade, columns: predicted grade)`,
    `  ${''.padEnd(nameWidth)}${GRADE_NAMES.map((_, g) => cell(g, 6)).join('')}`,
    ...confusion,
  ].join('\n');
}
