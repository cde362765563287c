// Adam and AdamW with PyTorch's semantics (torch.optim.Adam / AdamW, amsgrad off): bias-corrected
// moments, eps added outside the square root, and weight decay either as L2 added to the
// gradient (Adam) or decoupled, p -= lr * wd * p before the update (AdamW).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { checkNonNegative, Optimizer, type ParamState } from './optimizer.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam extends Optimizer {
  readonly kind: 'adam' | 'adamw' = 'adam';
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** True for AdamW: decay shrinks the weights directly instead of entering the moments. */
  protected readonly decoupledWeightDecay: boolean = false;

  constructor(params: Tensor[], options: AdamOptions = {}) {
    super(params, options.lr ?? 1e-3);
    const { betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0 } = options;
    for (const [i, beta] of betas.entries()) {
      if (!(beta >= 0 && beta < 1)) throw new RangeError(`betas[${i}] must be in [0, 1), got ${beta}`);
    }
    checkNonNegative('eps', eps);
    checkNonNegative('weightDecay', weightDecay);
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
  }

  protected override update(param: Tensor, grad: Tensor, state: ParamState): void {
    const [beta1, beta2] = this.betas;
    const expAvg = state.buffers.get('exp_avg') ?? this.setBuffer(state, 'exp_avg', torch.zeros(param.shape, param.dtype));
    const expAvgSq = state.buffers.get('exp_avg_sq') ?? this.setBuffer(state, 'exp_avg_sq', torch.zeros(param.shape, param.dtype));
    const decay = this.weightDecay;
    torch.adamStep(param, grad, expAvg, expAvgSq, {
      l2Decay: this.decoupledWeightDecay ? 0 : decay,
      decayFactor: this.decoupledWeightDecay ? 1 - this.lr * decay : 1,
      beta1,
      beta2,
      biasCorrection2Sqrt: Math.sqrt(1 - beta2 ** state.step),
      eps: this.eps,
      stepSize: -this.lr / (1 - beta1 ** state.step),
    });
  }

  protected override bufferNames(): string[] {
    return ['exp_avg', 'exp_avg_sq'];
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default decay is 1e-2. */
export class AdamW extends Adam {
  override readonly kind = 'adamw';
  protected override readonly decoupledWeightDecay = true;

  constructor(params: Tensor[], options: AdamOptions = {}) {
    super(params, { ...options, weightDecay: options.weightDecay ?? 1e-2 });
  }
}
