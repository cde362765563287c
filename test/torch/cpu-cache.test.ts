// The binding's CPU allocator (native/src/cpu_allocator.cc) keeps freed large tensor blocks
// mapped and hands them back to requests that need all but at most 1/8 of them; what it keeps
// mapped follows the peak of live blocks over a recent window (past it, a larger block is split,
// and its parts are joined again once freed); small tensors still go to malloc.
import { beforeEach, describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

const MiB = 2 ** 20;
const FLOAT = 4;

/** A float32 tensor of `bytes` bytes (one large request: `empty` writes nothing). */
const block = (bytes: number): torch.Tensor => torch.empty([bytes / FLOAT]);

/** Makes `count` large requests of 1 MiB, each freed before the next: they move the window on. */
function passRequests(count: number): void {
  for (let i = 0; i < count; i++) block(MiB).dispose();
}

// These check the default allocator settings; RETINAGRADE_CPU_CACHE changes (or disables) them.
describe.skipIf(process.env.RETINAGRADE_CPU_CACHE !== undefined)('the CPU allocator at its defaults', () => {
  beforeEach(() => torch.emptyCpuCache());

  it('reuses a freed large block for a request of the same size, with correct contents', () => {
    expect(torch.cpuCacheStats().minBytes).toBe(64 * 1024);
    const gen = new torch.Generator(7);
    gen.normal([512, 1024]).dispose(); // 2 MiB
    const afterFree = torch.cpuCacheStats();
    expect(afterFree.cachedBytes).toBe(2 * MiB);
    // Same size: served from the cache, and the new tensor's values are its own.
    const b = torch.full([512, 1024], 3);
    const afterReuse = torch.cpuCacheStats();
    expect(afterReuse.hits).toBe(afterFree.hits + 1);
    expect(afterReuse.grownBytes).toBe(afterFree.grownBytes);
    expect(torch.tidy(() => b.sum().item())).toBe(3 * 512 * 1024);
    b.dispose();
  });

  it('serves a request from the smallest cached block with at most 1/8 of it to spare', () => {
    // (The 6 MiB block raises the peak so that the 3 MiB request below stays within the cap.)
    for (const t of [block(2.5 * MiB), block(2.25 * MiB), block(2.125 * MiB), block(4 * MiB), block(6 * MiB)]) t.dispose();
    const before = torch.cpuCacheStats();
    expect(before.cachedBytes).toBe(16.875 * MiB);

    // 2 MiB fits the 2.125 MiB block (1/17 to spare) and the 2.25 MiB one (1/9): the smaller is
    // taken. The 2.5 MiB one would leave 1/5 unused.
    const fitted = torch.full([(2 * MiB) / FLOAT], 1);
    const afterFit = torch.cpuCacheStats();
    expect(afterFit.hits).toBe(before.hits + 1);
    expect(afterFit.grownBytes).toBe(before.grownBytes);
    expect(afterFit.liveBytes - before.liveBytes).toBe(2.125 * MiB);
    expect(afterFit.cachedBytes).toBe(14.75 * MiB);
    expect(torch.tidy(() => fitted.sum().item())).toBe((2 * MiB) / FLOAT);

    // 3 MiB would leave a quarter of the 4 MiB block unused: a new mapping instead.
    expect(afterFit.liveBytes + afterFit.cachedBytes + 3 * MiB).toBeLessThanOrEqual(afterFit.capBytes);
    const unfitted = block(3 * MiB);
    const afterMiss = torch.cpuCacheStats();
    expect(afterMiss.misses).toBe(afterFit.misses + 1);
    expect(afterMiss.grownBytes).toBe(afterFit.grownBytes + 3 * MiB);
    expect(afterMiss.cachedBytes).toBe(14.75 * MiB);
    fitted.dispose();
    unfitted.dispose();
  });

  it('past its cap, serves a request from the front of a larger cached block and keeps the rest cached', () => {
    // Two windows of 1 MiB requests: earlier tests' peaks no longer set the cap.
    passRequests(2 * torch.cpuCacheStats().windowRequests);
    torch.emptyCpuCache();
    block(8 * MiB).dispose();
    const before = torch.cpuCacheStats();
    // 6 MiB does not fit the 8 MiB block (a quarter to spare), and mapping it would pass the cap.
    expect(before.cachedBytes + 6 * MiB).toBeGreaterThan(before.capBytes);
    const t = torch.full([(6 * MiB) / FLOAT], 2);
    const after = torch.cpuCacheStats();
    expect(after.misses).toBe(before.misses + 1);
    expect(after.grownBytes).toBe(before.grownBytes);
    // Live grows by what was asked, not by the whole block: the other 2 MiB stay cached...
    expect(after.liveBytes - before.liveBytes).toBe(6 * MiB);
    expect(after.cachedBytes).toBe(2 * MiB);
    // ...and serve the next 2 MiB request without mapping anything, next to t and apart from it.
    const rest = torch.full([(2 * MiB) / FLOAT], 5);
    const afterRest = torch.cpuCacheStats();
    expect(afterRest.hits).toBe(after.hits + 1);
    expect(afterRest.grownBytes).toBe(before.grownBytes);
    expect(afterRest.cachedBytes).toBe(0);
    expect(torch.tidy(() => t.sum().item())).toBe((2 * 6 * MiB) / FLOAT);
    expect(torch.tidy(() => rest.sum().item())).toBe((5 * 2 * MiB) / FLOAT);
    t.dispose();
    rest.dispose();
    // Both parts freed are one 8 MiB block again: the next step's 8 MiB request takes it.
    expect(torch.cpuCacheStats().cachedBytes).toBe(8 * MiB);
    const whole = block(8 * MiB);
    const afterWhole = torch.cpuCacheStats();
    expect(afterWhole.hits).toBe(afterRest.hits + 1);
    expect(afterWhole.grownBytes).toBe(before.grownBytes);
    expect(afterWhole.cachedBytes).toBe(0);
    whole.dispose();
  });

  it('past its cap, keeps even a part under 1 MiB cached, to join it again with the rest', () => {
    passRequests(2 * torch.cpuCacheStats().windowRequests);
    torch.emptyCpuCache();
    block(4 * MiB).dispose();
    const before = torch.cpuCacheStats();
    // 3.25 MiB leaves more than 1/8 of the 4 MiB block, and mapping it would pass the cap.
    expect(before.cachedBytes + 3.25 * MiB).toBeGreaterThan(before.capBytes);
    const t = block(3.25 * MiB);
    const after = torch.cpuCacheStats();
    expect(after.misses).toBe(before.misses + 1);
    expect(after.liveBytes - before.liveBytes).toBe(3.25 * MiB);
    expect(after.cachedBytes).toBe(0.75 * MiB);
    t.dispose();
    // Whole again: a 4 MiB request maps nothing (with varying batch sizes, parts that were unmapped
    // instead had to be mapped anew by the larger batches that followed).
    const whole = block(4 * MiB);
    const afterWhole = torch.cpuCacheStats();
    expect(afterWhole.hits).toBe(after.hits + 1);
    expect(afterWhole.grownBytes).toBe(before.grownBytes);
    whole.dispose();
  });

  it('maps nothing more for a sequence of requests repeated, and stays within its cap', () => {
    const sizes = [3, 5, 7, 3, 5, 9, 2, 3].map((m) => (m * MiB) / 2);
    const round = (): void => {
      const held = sizes.map((bytes) => block(bytes));
      for (const t of held) t.dispose();
    };
    round();
    const afterFirst = torch.cpuCacheStats();
    for (let i = 0; i < 3; i++) round();
    const after = torch.cpuCacheStats();
    expect(after.grownBytes).toBe(afterFirst.grownBytes);
    expect(after.hits - afterFirst.hits).toBe(3 * sizes.length);
    expect(after.liveBytes + after.cachedBytes).toBeLessThanOrEqual(after.capBytes);
  });

  it("forgets a spike of live memory once a window's requests have passed, and gives its blocks back", () => {
    const { windowRequests } = torch.cpuCacheStats();
    const spike = Array.from({ length: 16 }, () => block(4 * MiB));
    for (const t of spike) t.dispose();
    // Fewer requests than a window: the spike still sets the cap, its blocks stay cached.
    passRequests(windowRequests - 1);
    const during = torch.cpuCacheStats();
    expect(during.capBytes).toBeGreaterThanOrEqual(64 * MiB);
    expect(during.cachedBytes).toBeGreaterThanOrEqual(64 * MiB);
    // Two windows later the cap follows the 1 MiB live now, and the spike's blocks are unmapped.
    passRequests(windowRequests + 1);
    const after = torch.cpuCacheStats();
    expect(after.capBytes).toBeLessThan(4 * MiB);
    expect(after.liveBytes + after.cachedBytes).toBeLessThanOrEqual(after.capBytes);
    expect(after.cachedBytes).toBeLessThan(4 * MiB);
  });

  it('emptying gives back every cached block; the next request maps anew', () => {
    block(2 * MiB).dispose();
    expect(torch.cpuCacheStats().cachedBytes).toBe(2 * MiB);
    torch.emptyCpuCache();
    const emptied = torch.cpuCacheStats();
    expect(emptied.cachedBytes).toBe(0);
    block(2 * MiB).dispose();
    const after = torch.cpuCacheStats();
    expect(after.misses).toBe(emptied.misses + 1);
    expect(after.grownBytes).toBe(emptied.grownBytes + 2 * MiB);
  });

  it('small tensors bypass the cache', () => {
    const before = torch.cpuCacheStats();
    torch.tidy(() => torch.ones([1000]).add(1).sum().item());
    const after = torch.cpuCacheStats();
    expect(after.hits + after.misses).toBe(before.hits + before.misses);
  });
});
