// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ with the 2-norm.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/**
 * Scales every gradient in place so that their joint 2-norm is at most `maxNorm`, and returns
 * the norm before clipping. Parameters without a gradient are ignored; with none at all the norm
 * is 0. A non-finite norm turns the gradients into NaN, as in PyTorch (check the return value).
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be > 0, got ${maxNorm}`);
  return torch.noGrad(() =>
    torch.tidy(() => {
      const grads = params.flatMap((p) => p.grad ?? []);
      const sumOfSquares = grads.reduce((total, g) => total + g.mul(g).sum().item(), 0);
      const totalNorm = Math.sqrt(sumOfSquares);
      // PyTorch's 1e-6 keeps the coefficient finite for a zero norm.
      const coefficient = Math.min(maxNorm / (totalNorm + 1e-6), 1);
      if (coefficient !== 1) for (const g of grads) g.mulInPlace(coefficient);
      return totalNorm;
    }),
  );
}
