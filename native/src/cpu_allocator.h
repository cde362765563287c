// A CPU allocator for libtorch that keeps large freed tensor blocks mapped for reuse.
#pragma once

#include <cstddef>

namespace retinagrade {

struct CpuCacheStats {
  size_t liveBytes;     // large blocks in use
  size_t cachedBytes;   // large blocks freed and kept for reuse
  size_t peakBytes;     // peak of live + cached (what the large blocks add to RSS)
  size_t hits;          // large requests served from the cache
  size_t misses;        // large requests that mapped new memory
  size_t minBytes;      // requests of at least this size are "large"; 0 = allocator not installed
  size_t grownBytes;    // bytes newly mapped (and so page-faulted in) for large blocks, in all
};

// Installs the allocator as libtorch's CPU allocator (once per process; later calls do nothing).
// Reads RETINAGRADE_CPU_CACHE: "0" leaves libtorch's default allocator in place; a number > 1
// sets the smallest request, in bytes, that the cache handles (default 1 MiB).
void InstallCpuAllocator();
CpuCacheStats GetCpuCacheStats();
// Returns every cached block to the system (live blocks are untouched).
void EmptyCpuCache();

}  // namespace retinagrade
