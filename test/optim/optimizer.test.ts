// Optimizer behaviour beyond the update rule: state export and resume, validation, gradients,
// and ownership of state tensors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { Adam, AdamW, SGD, type OptimizerStateDict, type ParamState } from '../../src/optim/index.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { reference } from '../torch/reference.js';
import { makeOptimizer, makeParams, trainStep } from './problem.js';

const owned: { dispose(): void }[] = [];
/** Registers optimizers and kept tensors to free after each test. */
function own<T extends { dispose(): void }>(...items: T[]): T[] {
  owned.push(...items);
  return items;
}
afterEach(() => {
  for (const item of owned.splice(0)) item.dispose();
});

const fixtureCase = (name: string) => reference.optim.cases.find((c) => c.name === name)!;

describe('state dict', () => {
  it.each(['adamw', 'sgd nesterov weight decay'])('resuming %s from a state dict continues exactly', (name) => {
    const c = fixtureCase(name);
    const first = makeOptimizer(c.kind, own(...makeParams()), c.options);
    own(first);
    for (let i = 0; i < 3; i++) trainStep(first);
    const saved = first.stateDict();

    // A new run: parameters at the saved values, a fresh optimizer given the saved state.
    const params = own(...first.params.map((p) => torch.keep(p.detach().clone())));
    for (const p of params) p.requiresGrad = true;
    const resumed = makeOptimizer(c.kind, params, { ...c.options, lr: 1 });
    own(resumed);
    resumed.loadStateDict({ tensors: saved.tensors, meta: JSON.parse(JSON.stringify(saved.meta)) });
    for (const t of saved.tensors.values()) t.dispose(); // the optimizer holds its own copies
    expect(resumed.lr).toBe(c.options.lr);

    trainStep(resumed);
    trainStep(resumed);
    const expected = c.trajectory[4]!;
    params[0]!.toArray().forEach((v, i) => expect(v).toBeCloseTo(expected.p0[i]!, 12));
    params[1]!.toArray().forEach((v, i) => expect(v).toBeCloseTo(expected.p1[i]!, 12));
  });

  it('exports PyTorch buffer names and per-parameter step counts, and survives a safetensors file', () => {
    const params = own(...makeParams());
    const optimizer = new Adam(params, { lr: 0.01 });
    own(optimizer);
    trainStep(optimizer);
    trainStep(optimizer);
    const saved = optimizer.stateDict();
    expect([...saved.tensors.keys()].sort()).toEqual(['0.exp_avg', '0.exp_avg_sq', '1.exp_avg', '1.exp_avg_sq']);
    expect(saved.meta).toEqual({ optimizer: 'adam', lr: 0.01, steps: [2, 2] });

    const dir = mkdtempSync(join(tmpdir(), 'optim-state-'));
    try {
      saveSafetensors(join(dir, 'state.safetensors'), saved.tensors);
      const loaded = loadSafetensors(join(dir, 'state.safetensors')).tensors;
      optimizer.loadStateDict({ tensors: loaded, meta: saved.meta });
      const again = optimizer.stateDict();
      for (const [name, t] of saved.tensors) expect(again.tensors.get(name)!.toArray()).toEqual(t.toArray());
      for (const t of [...saved.tensors.values(), ...loaded.values(), ...again.tensors.values()]) t.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a state dict that does not fit the optimizer', () => {
    const params = own(...makeParams());
    const optimizer = new AdamW(params);
    own(optimizer);
    trainStep(optimizer);
    const good = optimizer.stateDict();
    const withTensors = (edit: (m: Map<string, Tensor>) => void): OptimizerStateDict => {
      const tensors = new Map(good.tensors);
      edit(tensors);
      return { tensors, meta: good.meta };
    };
    torch.tidy(() => {
      expect(() => optimizer.loadStateDict({ tensors: good.tensors, meta: { ...good.meta, optimizer: 'adam' } })).toThrow(
        /for 'adam', not 'adamw'/,
      );
      expect(() => optimizer.loadStateDict({ tensors: good.tensors, meta: { ...good.meta, steps: [1] } })).toThrow(
        /must list 2 step counts/,
      );
      expect(() => optimizer.loadStateDict({ tensors: good.tensors, meta: { ...good.meta, steps: [1, 0.5] } })).toThrow(
        /non-negative integer/,
      );
      expect(() => optimizer.loadStateDict({ tensors: good.tensors, meta: null })).toThrow(/optimizer state is for/);
      expect(() => optimizer.loadStateDict(withTensors((m) => m.delete('1.exp_avg')))).toThrow(/missing tensor '1.exp_avg'/);
      expect(() => optimizer.loadStateDict(withTensors((m) => m.set('0.momentum_buffer', torch.zeros([4], 'float64'))))).toThrow(
        /unexpected tensor '0.momentum_buffer'/,
      );
      expect(() => optimizer.loadStateDict(withTensors((m) => m.set('0.exp_avg', torch.zeros([4]))))).toThrow(
        /'0.exp_avg' is float32 \[4\], the parameter is float64 \[4\]/,
      );
      expect(() => optimizer.loadStateDict(withTensors((m) => m.set('1.exp_avg_sq', torch.zeros([4], 'float64'))))).toThrow(
        /'1.exp_avg_sq' is float64 \[4\], the parameter is float64 \[2,2\]/,
      );
    });
    // A rejected load leaves the state as it was.
    expect(optimizer.stateDict().meta.steps).toEqual([1, 1]);
  });
});

describe('stepping', () => {
  it('skips parameters without a gradient, as PyTorch does', () => {
    const [used, unused] = own(torch.keep(torch.ones([2])), torch.keep(torch.ones([3])));
    used!.requiresGrad = true;
    unused!.requiresGrad = true;
    const optimizer = new SGD([used!, unused!], { lr: 0.5, momentum: 0.9 });
    own(optimizer);
    torch.tidy(() =>
      used!
        .mul(torch.tensor([1, 2]))
        .sum()
        .backward(),
    );
    optimizer.step();
    expect(used!.toArray()).toEqual([0.5, 0]);
    expect(unused!.toArray()).toEqual([1, 1, 1]);
    expect(optimizer.stateDict().meta.steps).toEqual([1, 0]);
  });

  it('zeroGrad drops the gradients, and a step without gradients changes nothing', () => {
    const [p] = own(torch.keep(torch.ones([2])));
    p!.requiresGrad = true;
    const optimizer = new Adam([p!], { lr: 0.1 });
    own(optimizer);
    torch.tidy(() => p!.sum().backward());
    expect(p!.grad).toBeDefined();
    optimizer.zeroGrad();
    expect(p!.grad).toBeUndefined();
    optimizer.step();
    expect(p!.toArray()).toEqual([1, 1]);
  });

  it('the lr can be changed between steps (as schedules do) and is validated', () => {
    const [p] = own(torch.keep(torch.zeros([1])));
    p!.requiresGrad = true;
    const optimizer = new SGD([p!], { lr: 1 });
    own(optimizer);
    for (const lr of [0.5, 0.25]) {
      optimizer.lr = lr;
      torch.tidy(() => p!.sum().backward()); // gradient 1 each step
      optimizer.step();
      optimizer.zeroGrad();
    }
    expect(p!.item()).toBeCloseTo(-0.75, 7);
    expect(() => (optimizer.lr = -1)).toThrow(RangeError);
    expect(() => (optimizer.lr = Number.NaN)).toThrow(RangeError);
  });

  it('validates parameters and hyperparameters', () => {
    const [frozen, p] = own(torch.keep(torch.ones([1])), torch.keep(torch.ones([1])));
    p!.requiresGrad = true;
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/empty parameter list/);
    expect(() => new SGD([frozen!], { lr: 0.1 })).toThrow(/parameter 0 does not require grad/);
    expect(() => new Adam([p!, p!])).toThrow(/parameter 1 appears more than once/);
    expect(() => new SGD([p!], { lr: 0.1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new SGD([p!], { lr: 0.1, momentum: -0.9 })).toThrow(/momentum must be/);
    expect(() => new Adam([p!], { betas: [0.9, 1] })).toThrow(/betas\[1\] must be in \[0, 1\)/);
    expect(() => new AdamW([p!], { eps: -1 })).toThrow(/eps must be/);
  });
});

describe('ownership', () => {
  /** Adam that records the state tensors it creates. */
  class RecordingAdam extends Adam {
    readonly created: Tensor[] = [];
    protected override setBuffer(state: ParamState, name: string, value: Tensor): Tensor {
      this.created.push(value);
      return super.setBuffer(state, name, value);
    }
  }

  it('state tensors survive the scopes around step() and are freed by dispose()', () => {
    const params = own(...makeParams());
    const optimizer = new RecordingAdam(params);
    torch.tidy(() => trainStep(optimizer));
    expect(optimizer.created).toHaveLength(4);
    expect(optimizer.created.every((t) => !t.isDisposed)).toBe(true);
    optimizer.dispose();
    expect(optimizer.created.every((t) => t.isDisposed)).toBe(true);
    expect(() => optimizer.step()).toThrow(/already disposed/);
  });

  it('stateDict returns copies the caller may free', () => {
    const params = own(...makeParams());
    const optimizer = new SGD(params, { lr: 0.1, momentum: 0.9 });
    own(optimizer);
    trainStep(optimizer);
    for (const t of optimizer.stateDict().tensors.values()) t.dispose();
    trainStep(optimizer);
    expect(optimizer.stateDict().meta.steps).toEqual([2, 2]);
  });
});
