// Module: named parameters, buffers and children, train/eval mode, and state dicts keyed the
// way PyTorch keys them (dotted child paths, `weight`, `running_mean`, `num_batches_tracked`).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Registers a trainable tensor; it lives until the module is disposed. */
  protected parameter(name: string, value: Tensor): Tensor {
    torch.keep(value);
    value.requiresGrad = true;
    this.#parameters.set(name, value);
    return value;
  }
  /** Registers non-trainable state saved with the weights (running statistics). */
  protected buffer(name: string, value: Tensor): Tensor {
    this.#buffers.set(name, torch.keep(value));
    return value;
  }
  protected child<M extends Module>(name: string, module: M): M {
    this.#children.set(name, module);
    return module;
  }

  *children(): IterableIterator<[string, Module]> {
    yield* this.#children;
  }
  *modules(): IterableIterator<Module> {
    yield this;
    for (const [, c] of this.#children) yield* c.modules();
  }
  namedParameters(prefix = ''): [string, Tensor][] {
    const own = [...this.#parameters].map(([n, t]): [string, Tensor] => [prefix + n, t]);
    const nested = [...this.#children].flatMap(([n, c]) => c.namedParameters(`${prefix}${n}.`));
    return [...own, ...nested];
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const own = [...this.#buffers].map(([n, t]): [string, Tensor] => [prefix + n, t]);
    const nested = [...this.#children].flatMap(([n, c]) => c.namedBuffers(`${prefix}${n}.`));
    return [...own, ...nested];
  }
  parameterCount(): number {
    return this.parameters().reduce((sum, p) => sum + p.numel, 0);
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Parameters and buffers by name; the tensors are the module's own (not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values in; every key must exist on both sides with the same shape and dtype. */
  loadStateDict(state: Map<string, Tensor>): void {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (missing.length || unexpected.length) {
      throw new Error(
        `state dict does not match the model: ` +
          [missing.length ? `missing ${missing.join(', ')}` : '', unexpected.length ? `unexpected ${unexpected.join(', ')}` : '']
            .filter(Boolean)
            .join('; '),
      );
    }
    for (const [name, target] of own) {
      const source = state.get(name)!;
      if (source.dtype !== target.dtype || source.shape.join() !== target.shape.join()) {
        throw new Error(
          `state dict entry '${name}' is ${source.dtype}[${source.shape}] but the model expects ${target.dtype}[${target.shape}]`,
        );
      }
    }
    torch.noGrad(() => {
      for (const [name, target] of own) target.copyInPlace(state.get(name)!);
    });
  }

  dispose(): void {
    for (const m of this.modules()) {
      for (const [, t] of m.#parameters) t.dispose();
      for (const [, t] of m.#buffers) t.dispose();
    }
  }
}

/** Runs `fn` with `model` in eval mode, then restores the mode it was in (even if `fn` throws). */
export function withEval<T>(model: Module, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  try {
    return fn();
  } finally {
    model.train(wasTraining);
  }
}
