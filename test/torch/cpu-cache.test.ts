// The binding's CPU allocator (native/src/cpu_allocator.cc) keeps freed large tensor blocks
// mapped and hands them back to requests of the same size; small tensors still go to malloc.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const MiB = 2 ** 20;

// These check the default allocator settings; RETINAGRADE_CPU_CACHE changes (or disables) them.
describe.skipIf(process.env.RETINAGRADE_CPU_CACHE !== undefined)('the CPU allocator at its defaults', () => {
  it('reuses a freed large block for a request of the same size, with correct contents', () => {
    const before = torch.cpuCacheStats();
    expect(before.minBytes).toBe(MiB);
    const gen = new torch.Generator(7);
    const a = gen.normal([512, 1024]); // 2 MiB
    const expected = torch.tidy(() => a.mul(2).sum().item());
    a.dispose();
    const afterFree = torch.cpuCacheStats();
    expect(afterFree.cachedBytes).toBeGreaterThanOrEqual(2 * MiB);
    // Same size: served from the cache, and the new tensor's values are its own.
    const b = torch.full([512, 1024], 3);
    const afterReuse = torch.cpuCacheStats();
    expect(afterReuse.hits).toBeGreaterThan(afterFree.hits);
    expect(torch.tidy(() => b.sum().item())).toBe(3 * 512 * 1024);
    b.dispose();
    expect(Number.isFinite(expected)).toBe(true);
  });

  it('keeps what it maps for large blocks within twice their live peak', () => {
    torch.emptyCpuCache();
    const sizes = [3, 5, 7, 3, 5, 9, 2, 3].map((m) => (m * MiB) / 4);
    for (let round = 0; round < 3; round++) {
      const held = sizes.map((n) => torch.zeros([n]));
      for (const t of held) t.dispose();
    }
    // A different shape sequence makes the cache give back blocks it cannot reuse.
    const other = [4, 4, 4].map((m) => torch.ones([(m * MiB) / 4]));
    const stats = torch.cpuCacheStats();
    expect(stats.liveBytes).toBeGreaterThanOrEqual(12 * MiB);
    expect(stats.liveBytes + stats.cachedBytes).toBeLessThanOrEqual(2 * 37 * MiB);
    expect(torch.tidy(() => other[2]!.sum().item())).toBe(MiB);
    for (const t of other) t.dispose();
    torch.emptyCpuCache();
    expect(torch.cpuCacheStats().cachedBytes).toBe(0);
  });

  it('small tensors bypass the cache', () => {
    const before = torch.cpuCacheStats();
    torch.tidy(() => torch.ones([1000]).add(1).sum().item());
    const after = torch.cpuCacheStats();
    expect(after.hits + after.misses).toBe(before.hits + before.misses);
  });
});
