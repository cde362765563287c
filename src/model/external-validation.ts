// `evaluate --data`: what differs between the data a run was trained on and the data it is
// evaluated on, said in plain words next to the numbers (external validation is only as meaningful
// as these differences are known).
import { GRADE_NAMES } from '../data/grades.js';
import type { DatasetJson } from '../data/prepared-dataset.js';
import type { DataSource } from '../data/retinamnist.js';
import type { RunDir } from './run-dir.js';
import type { RunMetrics } from './run-metrics.js';

const cropOf = (source: DataSource): string => source.prepared?.preprocessing.crop ?? 'medmnist';
const describeCrop = (crop: string): string =>
  crop === 'medmnist' ? "MedMNIST's centre crop and resize" : 'a crop to the retina disc found in each photograph';

export function externalValidationNotes(run: RunDir, evaluated: DataSource, card: DatasetJson, inputSize: number): string[] {
  const notes: string[] = [];
  const trained = run.has('metrics') ? run.readJson<RunMetrics>('metrics').data : undefined;
  if (!trained) {
    notes.push(`${run.path} has no metrics.json: the data it was trained on is unknown, so differences cannot be listed`);
  } else if (trained.md5 !== evaluated.md5) {
    const [before, now] = [cropOf(trained), cropOf(evaluated)];
    if (before !== now) {
      notes.push(`preprocessing differs: the model was trained on ${describeCrop(before)}, these images had ${describeCrop(now)}`);
    }
    notes.push(
      `external data: grades come from ${card.name}'s own labels, whose grading protocol may differ from the training data's ` +
        `(${trained.prepared?.name ?? 'RetinaMNIST'})`,
    );
  }
  if (card.size !== inputSize)
    notes.push(`images stored at ${card.size}x${card.size} are resized to the model's ${inputSize}x${inputSize}`);
  const absent = GRADE_NAMES.filter(
    (_, g) => card.splits.train.per_grade[g]! + card.splits.val.per_grade[g]! + card.splits.test.per_grade[g]! === 0,
  );
  if (absent.length > 0) notes.push(`no photographs of grade(s) ${absent.join(', ')}: this dataset may grade on another scale`);
  return notes;
}
