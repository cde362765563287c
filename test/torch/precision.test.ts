// bf16 through ATen's CPU autocast: which CPUs get it, what a region computes in, and that a region
// leaves nothing behind (autocast off, no stale bf16 copies of weights).
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const cpuinfo = (flags: string) => `processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: ${flags}\n\nprocessor\t: 1\nflags\t\t: ${flags}\n`;

describe('bf16 support', () => {
  it('is read from the CPU flags: AVX512-BF16 or AMX-BF16, not plain AVX-512', () => {
    expect(torch.cpuinfoHasBf16(cpuinfo('fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni'))).toBe(true);
    expect(torch.cpuinfoHasBf16(cpuinfo('fpu avx512f amx_tile amx_bf16'))).toBe(true);
    expect(torch.cpuinfoHasBf16(cpuinfo('fpu sse2 avx2 avx512f avx512_vnni'))).toBe(false);
    expect(torch.cpuinfoHasBf16('model name\t: avx512_bf16 in a name is not a flag\n')).toBe(false);
  });

  it('falls back to fp32 with the reason when bf16 is asked for on a CPU without it', () => {
    expect(torch.resolvePrecision('bf16', false)).toEqual({
      precision: 'fp32',
      fallback: expect.stringMatching(/bf16 needs a CPU with avx512_bf16 or amx_bf16.*running in fp32/),
    });
    expect(torch.resolvePrecision('bf16', true)).toEqual({ precision: 'bf16' });
    expect(torch.resolvePrecision('fp32', false)).toEqual({ precision: 'fp32' });
  });
});

describe('atPrecision', () => {
  const gen = new torch.Generator(7);
  const x = gen.normal([4, 16, 12, 12]);
  const weight = gen.normal([32, 16, 3, 3]).mul(0.1);
  const conv = () => torch.conv2d(x, weight, undefined, { padding: 1 });
  const relativeError = (a: torch.Tensor, b: torch.Tensor) => a.sub(b).abs().max().item() / b.abs().max().item();

  it('runs a convolution in bf16 and hands back float32', () => {
    const exact = conv();
    const bf16 = torch.atPrecision('bf16', conv);
    expect(bf16.dtype).toBe('float32');
    // bf16 keeps 8 significant bits: the result moves by about 2^-8 of its scale, float32 would not move at all.
    const error = relativeError(bf16, exact);
    expect(error).toBeGreaterThan(1e-4);
    expect(error).toBeLessThan(2e-2);
    expect(torch.atPrecision('fp32', conv).sub(exact).abs().max().item()).toBe(0);
  });

  it('turns autocast off when the region ends, also when it throws', () => {
    const exact = conv();
    expect(() =>
      torch.atPrecision('bf16', () => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(conv().sub(exact).abs().max().item()).toBe(0);
  });

  it('casts a weight afresh in every region, so an update between two passes is seen', () => {
    const w = gen.normal([32, 16, 3, 3]).mul(0.1);
    w.requiresGrad = true; // autocast caches the casts of leaves that require grad, until the region ends
    const pass = () => torch.atPrecision('bf16', () => torch.conv2d(x, w, undefined, { padding: 1 }));
    const before = pass();
    torch.noGrad(() => w.mulInPlace(2));
    const after = pass();
    expect(relativeError(after, before.mul(2))).toBeLessThan(2e-2);
  });
});
