// The shared machinery of every optimizer: the parameter list, the learning rate that schedules
// set, per-parameter state (a step counter and named buffers such as Adam's moments), zeroing
// gradients, and exporting/importing that state so a training run can resume exactly.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

/** The JSON-serializable part of an optimizer's state. */
export interface OptimizerMeta {
  optimizer: OptimizerKind;
  lr: number;
  /** Updates applied to each parameter (a parameter without a gradient is skipped, as in PyTorch). */
  steps: number[];
}

/**
 * An optimizer's state as named tensors plus metadata. Tensor names are `<param index>.<buffer>`
 * with PyTorch's buffer names (`0.exp_avg`, `3.momentum_buffer`).
 */
export interface OptimizerStateDict {
  tensors: Map<string, Tensor>;
  meta: OptimizerMeta;
}

/** What an optimizer keeps for one parameter. */
export interface ParamState {
  step: number;
  buffers: Map<string, Tensor>;
}

export abstract class Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly params: readonly Tensor[];
  #lr = 0;
  #disposed = false;
  readonly #state: ParamState[];

  protected constructor(params: Tensor[], lr: number) {
    if (params.length === 0) throw new RangeError('optimizer got an empty parameter list');
    params.forEach((p, i) => {
      if (!p.requiresGrad) throw new TypeError(`parameter ${i} does not require grad (set requiresGrad = true)`);
      if (params.indexOf(p) !== i) throw new TypeError(`parameter ${i} appears more than once`);
    });
    this.params = [...params];
    this.lr = lr;
    this.#state = params.map(() => ({ step: 0, buffers: new Map() }));
  }

  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    checkNonNegative('learning rate', value);
    this.#lr = value;
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.#assertLive();
    torch.noGrad(() =>
      torch.tidy(() => {
        this.params.forEach((param, i) => {
          const grad = param.grad;
          if (grad === undefined) return;
          const state = this.#state[i]!;
          state.step += 1;
          this.update(param, grad, state);
        });
      }),
    );
  }

  /** The update rule for one parameter; runs under noGrad inside a scope that frees temporaries. */
  protected abstract update(param: Tensor, grad: Tensor, state: ParamState): void;

  /** Stores a new state buffer, exempt from scopes: the optimizer owns it until dispose(). */
  protected setBuffer(state: ParamState, name: string, value: Tensor): Tensor {
    state.buffers.set(name, torch.keep(value));
    return value;
  }

  /** Drops every gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const param of this.params) param.clearGrad();
  }

  /** A snapshot of the state: the tensors are copies the caller owns. */
  stateDict(): OptimizerStateDict {
    this.#assertLive();
    const tensors = new Map<string, Tensor>();
    this.#state.forEach((state, i) => {
      for (const [name, buffer] of state.buffers) tensors.set(`${i}.${name}`, buffer.clone());
    });
    return { tensors, meta: { optimizer: this.kind, lr: this.lr, steps: this.#state.map((s) => s.step) } };
  }

  /**
   * Replaces the state with a copy of `dict` (the caller keeps ownership of its tensors). Every
   * parameter that has stepped must come with exactly the buffers this optimizer uses, each with
   * the parameter's shape and dtype.
   */
  loadStateDict(dict: { tensors: ReadonlyMap<string, Tensor>; meta: unknown }): void {
    this.#assertLive();
    const meta = this.#parseMeta(dict.meta);
    const { tensors } = dict;
    const expected = new Map<string, Tensor>(); // tensor name -> the parameter it must match
    meta.steps.forEach((step, i) => {
      if (step > 0) for (const name of this.bufferNames()) expected.set(`${i}.${name}`, this.params[i]!);
    });
    for (const key of tensors.keys()) if (!expected.has(key)) throw new Error(`state dict has an unexpected tensor '${key}'`);
    for (const [key, param] of expected) {
      const value = tensors.get(key);
      if (value === undefined) throw new Error(`state dict is missing tensor '${key}'`);
      if (value.dtype !== param.dtype || value.shape.join() !== param.shape.join()) {
        throw new Error(`state dict tensor '${key}' is ${value.dtype} [${value.shape}], the parameter is ${param.dtype} [${param.shape}]`);
      }
    }
    this.lr = meta.lr;
    this.#freeBuffers();
    torch.noGrad(() =>
      this.#state.forEach((state, i) => {
        state.step = meta.steps[i]!;
        for (const name of this.bufferNames()) {
          const value = tensors.get(`${i}.${name}`);
          if (value !== undefined) this.setBuffer(state, name, value.clone());
        }
      }),
    );
  }

  /** The state buffers a parameter has once it has stepped. */
  protected abstract bufferNames(): string[];

  /** Frees the state tensors; the optimizer cannot be used afterwards. */
  dispose(): void {
    this.#freeBuffers();
    this.#disposed = true;
  }
  get isDisposed(): boolean {
    return this.#disposed;
  }

  #freeBuffers(): void {
    for (const state of this.#state) {
      for (const buffer of state.buffers.values()) buffer.dispose();
      state.buffers.clear();
    }
  }

  /** Checks metadata that may come from a file against this optimizer. */
  #parseMeta(meta: unknown): OptimizerMeta {
    const { optimizer, lr, steps } = (meta ?? {}) as Partial<Record<keyof OptimizerMeta, unknown>>;
    if (optimizer !== this.kind) throw new Error(`optimizer state is for '${String(optimizer)}', not '${this.kind}'`);
    if (typeof lr !== 'number') throw new Error(`optimizer state has no numeric lr`);
    if (!Array.isArray(steps) || steps.length !== this.params.length) {
      throw new Error(`optimizer state must list ${this.params.length} step counts, got ${JSON.stringify(steps)}`);
    }
    for (const step of steps) {
      if (!Number.isInteger(step) || step < 0) throw new Error(`optimizer state step count is not a non-negative integer: ${step}`);
    }
    return { optimizer: this.kind, lr, steps: steps as number[] };
  }

  #assertLive(): void {
    if (this.#disposed) throw new Error(`${this.kind} optimizer was already disposed`);
  }
}

/** Throws a RangeError unless `value` is a finite number >= 0 (hyperparameter checks, as PyTorch's). */
export function checkNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
}
