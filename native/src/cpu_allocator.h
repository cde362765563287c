// A CPU allocator for libtorch that keeps large freed tensor blocks mapped for reuse.
#pragma once

#include <cstddef>

namespace retinagrade {

struct CpuCacheStats {
  size_t liveBytes;       // large blocks in use
  size_t cachedBytes;     // large blocks freed and kept for reuse
  size_t peakBytes;       // peak of live + cached (what the large blocks add to RSS)
  size_t peakLiveBytes;   // peak of live large blocks
  size_t capBytes;        // live + cached is kept within this: 5/4 of the peak asked for over the window
  size_t windowRequests;  // the window: the last windowRequests to twice that many large requests
  size_t hits;            // large requests served by a cached block of their size or up to 1/8 larger
  size_t misses;          // the others: mapped anew, or past the cap a larger cached block or a grown one
  size_t minBytes;        // requests of at least this size are "large"; 0 = allocator not installed
  size_t grownBytes;      // bytes newly mapped (and so page-faulted in) for large blocks, in all
};

// Installs the allocator as libtorch's CPU allocator (once per process; later calls do nothing).
// Reads RETINAGRADE_CPU_CACHE: "0" leaves libtorch's default allocator in place; a number > 1
// sets the smallest request, in bytes, that the cache handles (default 1 MiB).
void InstallCpuAllocator();
CpuCacheStats GetCpuCacheStats();
// Returns every cached block to the system (live blocks are untouched).
void EmptyCpuCache();

}  // namespace retinagrade
