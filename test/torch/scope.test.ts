// Deterministic lifetimes: tidy frees what it does not return, keep exempts.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';

describe('tidy and keep', () => {
  it('frees tensors made inside that are not returned; the returned one survives', () => {
    let temporary!: Tensor;
    const result = torch.tidy(() => {
      temporary = torch.ones([3]).mul(2);
      return temporary.add(1);
    });
    expect(temporary.isDisposed).toBe(true);
    expect(result.isDisposed).toBe(false);
    expect(result.toArray()).toEqual([3, 3, 3]);
    result.dispose();
  });

  it('keeps tensors returned inside arrays, objects and maps', () => {
    const { list, nested, map } = torch.tidy(() => ({
      list: [torch.ones([1]), torch.zeros([1])],
      nested: { deep: { t: torch.full([1], 7) } },
      map: new Map([['m', torch.ones([2])]]),
    }));
    for (const t of [...list, nested.deep.t, map.get('m')!]) {
      expect(t.isDisposed).toBe(false);
      t.dispose();
    }
  });

  it('leaves tensors made outside the scope alone', () => {
    const outside = torch.ones([2]);
    torch.tidy(() => {
      outside.add(1);
    });
    expect(outside.isDisposed).toBe(false);
    outside.dispose();
  });

  it('nested scopes: an inner result moves to the outer scope and is freed when that closes', () => {
    let inner!: Tensor;
    let innerTemporary!: Tensor;
    const outerResult = torch.tidy(() => {
      inner = torch.tidy(() => {
        innerTemporary = torch.ones([2]);
        return innerTemporary.mul(3);
      });
      expect(innerTemporary.isDisposed).toBe(true);
      expect(inner.isDisposed).toBe(false);
      return inner.sum();
    });
    expect(inner.isDisposed).toBe(true);
    expect(outerResult.item()).toBe(6);
    outerResult.dispose();
  });

  it('keep exempts a tensor from every open scope', () => {
    let kept!: Tensor;
    torch.tidy(() =>
      torch.tidy(() => {
        kept = torch.keep(torch.ones([2]));
      }),
    );
    expect(kept.isDisposed).toBe(false);
    kept.dispose();
    expect(kept.isDisposed).toBe(true);
  });

  it('frees everything when the function throws, and rejects async functions', () => {
    let made!: Tensor;
    expect(() =>
      torch.tidy(() => {
        made = torch.ones([2]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(made.isDisposed).toBe(true);
    expect(() => torch.tidy(async () => torch.ones([1]))).toThrow(/synchronous/);
  });

  it('gradient views made inside a scope are freed without touching the gradient', () => {
    const p = torch.ones([2]);
    p.requiresGrad = true;
    torch.tidy(() => p.mul(3).sum().backward());
    const view = torch.tidy(() => {
      p.grad!.mul(2); // a temporary, freed
      return p.grad!;
    });
    expect(view.toArray()).toEqual([3, 3]);
    view.dispose();
    expect(p.grad!.toArray()).toEqual([3, 3]);
    p.dispose();
  });
});
