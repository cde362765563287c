// The small float64 quadratic of the optimizer fixtures: loss = sum((A p0 - b)^2) + sum(K * p1^2).
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { Adam, AdamW, SGD, type AdamOptions, type Optimizer, type SgdOptions } from '../../src/optim/index.js';
import { reference } from '../torch/reference.js';

const { problem } = reference.optim;
const float64 = (rows: number[] | number[][]): Tensor => {
  const flat = rows.flat();
  return torch.tensor(flat, Array.isArray(rows[0]) ? [rows.length, flat.length / rows.length] : [flat.length], 'float64');
};

/** Fresh parameters at the fixture's starting point (kept: the caller disposes them). */
export function makeParams(): [Tensor, Tensor] {
  const params: [Tensor, Tensor] = [torch.keep(float64(problem.p0)), torch.keep(float64(problem.p1))];
  for (const p of params) p.requiresGrad = true;
  return params;
}

export function quadraticLoss([p0, p1]: Tensor[]): Tensor {
  const [A, b, K] = [float64(problem.A), float64(problem.b), float64(problem.K)];
  return A.matmul(p0!)
    .sub(b)
    .pow(2)
    .sum()
    .add(K.mul(p1!.pow(2)).sum());
}

/** One training step: clear gradients, backpropagate the loss, update. */
export function trainStep(optimizer: Optimizer): void {
  torch.tidy(() => {
    optimizer.zeroGrad();
    quadraticLoss([...optimizer.params]).backward();
    optimizer.step();
  });
}

export function makeOptimizer(kind: 'sgd' | 'adam' | 'adamw', params: Tensor[], options: SgdOptions & AdamOptions): Optimizer {
  switch (kind) {
    case 'sgd':
      return new SGD(params, options);
    case 'adam':
      return new Adam(params, options);
    case 'adamw':
      return new AdamW(params, options);
  }
}
