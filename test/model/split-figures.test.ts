// A split's figures when it lacks grades (a set graded 0-3, a small validation split): scored over
// the grades present, with a note, instead of refused.
import { describe, expect, it } from 'vitest';
import { NUM_GRADES } from '../../src/data/grades.js';
import { multiclassAuc, perClassAuc } from '../../src/eval/index.js';
import { calibrated, fitRunCalibration } from '../../src/model/run-calibration.js';
import { splitFigures } from '../../src/model/split-figures.js';

/** `count` images whose grades cycle through `grades`, with probabilities leaning towards the grade. */
function split(count: number, grades: number[]): { labels: Uint8Array; probs: Float32Array } {
  const labels = Uint8Array.from({ length: count }, (_, i) => grades[i % grades.length]!);
  const probs = Float32Array.from({ length: count * NUM_GRADES }, (_, j) => {
    const [i, g] = [Math.floor(j / NUM_GRADES), j % NUM_GRADES];
    return ((j * 7919) % 97) + 1 + (g === labels[i] ? 40 : 0);
  });
  for (let i = 0; i < count; i++) {
    const row = probs.subarray(i * NUM_GRADES, (i + 1) * NUM_GRADES);
    const sum = row.reduce((a, b) => a + b, 0);
    row.forEach((v, c) => (row[c] = v / sum));
  }
  return { labels, probs };
}

describe('splitFigures over the grades present', () => {
  const calibration = fitRunCalibration(...(Object.values(split(200, [0, 1, 2, 3, 4])) as [Uint8Array, Float32Array]));

  it('a set graded 0-3: AUC and macro F1 over grades 0-3, grade 4 null, both cut-offs reported, and a note', () => {
    const { labels, probs } = split(160, [0, 1, 2, 3]);
    const tempered = calibrated(probs, calibration);
    const f = splitFigures(labels, tempered, calibration);
    const present = [0, 1, 2, 3];
    expect(f.grades_absent).toEqual([4]);
    expect(f.auc).toBeCloseTo(multiclassAuc(labels, tempered, NUM_GRADES, present), 12);
    expect(f.auc_per_grade).toEqual([...perClassAuc(labels, tempered, NUM_GRADES, present), null]);
    expect(f.macro_f1).toBeCloseTo(present.reduce((sum, g) => sum + f.per_class[g]!.f1, 0) / present.length, 12);
    expect(f.ci95.auc.resamplesUsed).toBeGreaterThan(900); // resamples lacking grade 4 are not skipped
    expect(f.ci95.auc.lo).toBeLessThanOrEqual(f.auc);
    expect(f.referable?.positives).toBe(80);
    expect(f.vision_threatening?.positives).toBe(40);
    expect(f.note).toBe('no image of grade 4 in this split: AUC and macro F1 are means over grades 0, 1, 2, 3');
  });

  it('a small split with grades 0-2 only: the vision-threatening cut-off is not reported, and the note says so', () => {
    const { labels, probs } = split(30, [0, 1, 2]);
    const f = splitFigures(labels, calibrated(probs, calibration), calibration);
    expect(f.grades_absent).toEqual([3, 4]);
    expect(f.auc_per_grade.slice(3)).toEqual([null, null]);
    expect(f.referable).toBeDefined();
    expect(f.vision_threatening).toBeUndefined();
    expect(f.note).toBe(
      'no image of grade 3, 4 in this split: AUC and macro F1 are means over grades 0, 1, 2; ' +
        'vision-threatening DR (grade >= 3) not reported (no image on one side)',
    );
  });

  it('every grade present: no note, the same figures as MedMNIST over all grades', () => {
    const { labels, probs } = split(100, [0, 1, 2, 3, 4]);
    const tempered = calibrated(probs, calibration);
    const f = splitFigures(labels, tempered, calibration);
    expect(f.grades_absent).toEqual([]);
    expect(f.note).toBeUndefined();
    expect(f.auc).toBe(multiclassAuc(labels, tempered, NUM_GRADES));
  });

  it('a validation split with no image of grade >= 3 cannot choose that operating point: a clear error', () => {
    const { labels, probs } = split(30, [0, 1, 2]);
    expect(() => fitRunCalibration(labels, probs)).toThrow(
      'the validation split has no image of grade >= 3, so the operating point of that cut-off cannot be chosen on it: ' +
        'prepare the dataset again with a larger --val',
    );
  });
});
