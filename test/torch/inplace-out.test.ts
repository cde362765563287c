// The in-place and out= forms that the augmentation uses to avoid fresh tensor memory: each one
// must equal its allocating form, write where it is told, and leave its other inputs alone.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const rand = (shape: number[], seed: number, low = -2, high = 2): torch.Tensor => new torch.Generator(seed).uniform(shape, low, high);
const same = (a: torch.Tensor, b: torch.Tensor): void => expect(a.toArray()).toEqual(b.toArray());
// For fused forms (addcmul, addcdiv) that may round once where the composed ops round twice.
const close = (a: torch.Tensor, b: torch.Tensor): void => expect(a.sub(b).abs().max().item()).toBeLessThan(1e-6);

describe('in-place and out= forms equal the allocating ones', () => {
  it('elementwise in place: div, clamp (either bound), abs, floor', () =>
    torch.tidy(() => {
      const x = rand([3, 5], 1);
      const y = rand([3, 5], 2, 0.5, 2);
      same(x.clone().divInPlace(y), x.div(y));
      same(x.clone().divInPlace(3), x.div(3));
      same(x.clone().clampInPlace(-0.5, 0.5), x.clamp(-0.5, 0.5));
      same(x.clone().clampInPlace(undefined, 0.5), x.clamp(undefined, 0.5));
      same(x.clone().absInPlace(), x.abs());
      same(x.clone().floorInPlace(), x.floor());
    }));

  it('addcmul and addcdiv broadcast, and write into an out tensor that may be an input', () =>
    torch.tidy(() => {
      const a = rand([2, 3, 4], 4);
      const b = rand([2, 1, 4], 5);
      const c = rand([2, 3, 1], 6, 0.5, 2);
      const expectedMul = a.add(b.mul(c));
      close(torch.addcmul(a, b, c), expectedMul);
      const out = a.clone();
      expect(torch.addcmul(out, b, c, out)).toBe(out);
      same(out, torch.addcmul(a, b, c));
      const expectedDiv = a.add(b.div(c));
      close(torch.addcdiv(a, b, c), expectedDiv);
      const outDiv = torch.empty([2, 3, 4]);
      torch.addcdiv(a, b, c, outDiv);
      same(outDiv, torch.addcdiv(a, b, c));
    }));

  it('addcmul and addcdiv scale the product or quotient by `value`, also into an input (the optimizers)', () =>
    torch.tidy(() => {
      const a = rand([2, 3, 4], 11);
      const b = rand([2, 3, 4], 12);
      const c = rand([2, 3, 4], 13, 0.5, 2);
      close(torch.addcmul(a, b, c, undefined, -0.25), a.add(b.mul(c).mul(-0.25)));
      close(torch.addcdiv(a, b, c, undefined, 3), a.add(b.div(c).mul(3)));
      const updated = a.clone();
      expect(torch.addcmul(updated, b, c, updated, -0.25)).toBe(updated);
      same(updated, torch.addcmul(a, b, c, undefined, -0.25));
      torch.addcdiv(updated, b, c, updated, 3);
      same(updated, torch.addcdiv(torch.addcmul(a, b, c, undefined, -0.25), b, c, undefined, 3));
    }));

  it('baddbmm, max, min and indexSelect into an out tensor (also a strided view)', () =>
    torch.tidy(() => {
      const input = rand([3, 2, 1], 7);
      const b1 = rand([3, 2, 4], 8);
      const b2 = rand([3, 4, 5], 9);
      const expected = input.add(b1.matmul(b2));
      const got = torch.baddbmm(input, b1, b2);
      expect(got.sub(expected).abs().max().item()).toBeLessThan(1e-5);
      const out = torch.empty([3, 2, 5]);
      torch.baddbmm(input, b1, b2, out);
      same(out, got);

      const x = rand([4, 3, 2, 2], 10);
      const planes = torch.zeros([2, 4, 1, 2, 2]);
      const maxPlane = planes.slice(0, 0, 1).squeeze(0);
      const minPlane = planes.slice(0, 1, 2).squeeze(0);
      expect(x.max(1, true, maxPlane)).toBe(maxPlane);
      x.min(1, true, minPlane);
      same(maxPlane, x.max(1, true));
      same(minPlane, x.min(1, true));
      // Over all elements too: `out` is honoured whether or not dims are given.
      const extremes = torch.empty([2]);
      expect(x.max(undefined, false, extremes.slice(0, 0, 1).squeeze(0)).shape).toEqual([]);
      x.min(undefined, false, extremes.slice(0, 1, 2).squeeze(0));
      expect(extremes.toArray()).toEqual([x.max().item(), x.min().item()]);
      expect(x.max(undefined, true).shape).toEqual([1, 1, 1, 1]);

      const index = torch.tensor(BigInt64Array.from([2n, 0n, 3n]), [3]);
      const rows = torch.empty([3, 3, 2, 2]);
      expect(x.indexSelect(0, index, rows)).toBe(rows);
      same(rows, x.indexSelect(0, index));
    }));

  it('empty has the asked shape and dtype', () =>
    torch.tidy(() => {
      const t = torch.empty([2, 3], 'float64');
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('float64');
    }));
});
