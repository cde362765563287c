// What a stretch of our training did to memory: page faults (the bytes they brought in) and the
// binding's block cache (native/src/cpu_allocator.cc). Used by the `ours` side of engine/ and
// train/; the peers report the same faults from Python's getrusage.
import { execFileSync } from 'node:child_process';
import * as torch from '../src/torch/index.js';

const MiB = 2 ** 20;
const pageBytes = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());

export interface MemoryMark {
  minorFaults: number;
  cache: torch.CpuCacheStats;
}

export const markMemory = (): MemoryMark => ({ minorFaults: process.resourceUsage().minorPageFault, cache: torch.cpuCacheStats() });

/** Since `mark`: MiB faulted in (minor page faults x page size, whole process), the cache's hits and misses and the MiB it mapped. */
export function memorySince(mark: MemoryMark): Record<string, number> {
  const now = markMemory();
  return {
    faultedMiB: ((now.minorFaults - mark.minorFaults) * pageBytes) / MiB,
    cacheHits: now.cache.hits - mark.cache.hits,
    cacheMisses: now.cache.misses - mark.cache.misses,
    cacheGrownMiB: (now.cache.grownBytes - mark.cache.grownBytes) / MiB,
    peakLiveMiB: now.cache.peakLiveBytes / MiB,
    peakMappedMiB: now.cache.peakBytes / MiB,
  };
}
