// Counts multiply-accumulates of one forward pass: Conv2d and Linear report theirs while a
// count is running. They pass a function, evaluated only then, so training pays no shape queries.
import * as torch from '../torch/index.js';
import { withEval, type Module } from './module.js';

let counter: { macs: number } | null = null;

export function recordMacs(macs: () => number): void {
  if (counter) counter.macs += macs();
}

/** Multiply-accumulates for one image of shape [C, H, W]; FLOPs are conventionally 2x this. */
export function countMacs(model: Module, inputShape: [number, number, number]): number {
  counter = { macs: 0 };
  try {
    withEval(model, () => torch.tidy(() => torch.noGrad(() => model.forward(torch.zeros([1, ...inputShape])))));
    return counter.macs;
  } finally {
    counter = null;
  }
}
