// Loads the scikit-learn reference cases written by test/fixtures/eval/make_metrics_fixture.py.
import { readFileSync } from 'node:fs';

export interface SklearnCase {
  name: string;
  num_classes: number;
  labels: number[];
  probs: number[][];
  expected: {
    accuracy: number;
    auc_per_class: number[];
    auc: number;
    qwk: number;
    f1_macro: number;
    balanced_accuracy: number;
    confusion: number[][];
    precision: number[];
    recall: number[];
    f1: number[];
    support: number[];
  };
}

export const sklearnCases: SklearnCase[] = JSON.parse(
  readFileSync(new URL('../fixtures/eval/sklearn_metrics.json', import.meta.url), 'utf8'),
).cases;
