// Stochastic gradient descent with PyTorch's torch.optim.SGD semantics: L2 weight decay added to
// the gradient, a momentum buffer initialised to the first gradient, optional dampening and
// Nesterov momentum.
import type { Tensor } from '../torch/index.js';
import { checkNonNegative, Optimizer, type ParamState } from './optimizer.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  readonly kind = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;

  constructor(params: Tensor[], options: SgdOptions) {
    super(params, options.lr);
    const { momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = options;
    checkNonNegative('momentum', momentum);
    checkNonNegative('dampening', dampening);
    checkNonNegative('weightDecay', weightDecay);
    if (nesterov && (momentum === 0 || dampening !== 0)) {
      throw new RangeError('Nesterov momentum requires momentum > 0 and dampening 0');
    }
    this.momentum = momentum;
    this.dampening = dampening;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
  }

  protected override update(param: Tensor, grad: Tensor, state: ParamState): void {
    let direction = this.weightDecay === 0 ? grad : grad.add(param, this.weightDecay);
    if (this.momentum !== 0) {
      const previous = state.buffers.get('momentum_buffer');
      const buffer =
        previous === undefined
          ? this.setBuffer(state, 'momentum_buffer', direction.clone())
          : previous.mulInPlace(this.momentum).addInPlace(direction, 1 - this.dampening);
      direction = this.nesterov ? direction.add(buffer, this.momentum) : buffer;
    }
    param.addInPlace(direction, -this.lr);
  }

  protected override bufferNames(): string[] {
    return this.momentum === 0 ? [] : ['momentum_buffer'];
  }
}
