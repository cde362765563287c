// libtorch's default CPU allocator hands every tensor to glibc's malloc. Training repeats the
// same sequence of large allocations every step (activations, their gradients, oneDNN
// scratchpads), and glibc serves them badly both ways: blocks above its mmap threshold are
// unmapped on free and page-faulted in again next step (15-30% of a step as system time), and
// blocks below it (the threshold grows dynamically to 32 MiB) land in the heap between the small
// allocations of Node and the binding, where freed space fragments and the heap keeps growing.
//
// This allocator takes the large requests (>= 64 KiB by default) out of glibc: each is an
// anonymous mapping of its own, and a freed block is kept mapped in a cache. A later request takes
// back the smallest cached block that fits it with at most 1/8 of the block to spare (the most
// recently freed among equals), without a system call or page faults, so from the second step on
// a repeating training step faults in no tensor memory while its blocks fit within the cap below.
//
// The memory mapped for large blocks (live + cached) is kept within a cap: 5/4 of the peak, over
// a recent window (the last kWindowRequests to 2 x kWindowRequests large requests), of the bytes
// live blocks were asked for. So a spike (an evaluation at another batch size) stops counting
// once that many requests have passed. A request the cache cannot fit that would pass the cap
// takes the front of the smallest larger cached block (already resident: nothing is faulted in)
// and the rest stays cached as a block of its own, else grows the largest cached block with
// mremap (its pages kept: only the growth is faulted in); cached blocks beyond the cap are
// unmapped, least recently freed first. Parts of one mapping are joined again when both are
// cached, so the next step finds the block whole (no page faults from one step to the next). So a
// one-off smaller batch (an epoch's last) or batch sizes that vary from step to step run in the
// blocks already mapped, and live blocks stay the size they were asked for: a large block taken
// whole by a small request (parameters' gradients, optimizer state) would hold its excess for the
// whole run. Small requests go to libtorch's own `alloc_cpu` (glibc) as before.
#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace retinagrade {
namespace {

// 64 KiB: below glibc's default mmap threshold (128 KiB). glibc serves an aligned request of a
// few hundred KiB from the top of its heap, and a freed one cannot serve the next request of the
// same size (an aligned request asks for more); with the small objects beside it freed only by
// the garbage collector, every such request can take fresh pages: 98 page faults for a 400 KB
// tensor, each time. The cache reuses them.
constexpr size_t kDefaultMinBytes = size_t{64} << 10;
// A cached block serves a request when the request needs all but at most 1/8 of it.
constexpr size_t kSpareDivisor = 8;
// The cap follows the peak over the last kWindowRequests to twice that many large requests: a few
// training steps (a ResNet-18 step of bench/train, augmentation included, makes about 320 at 28 and
// 64 px), so the peak of every step in the window is in it.
constexpr size_t kWindowRequests = 2048;
// The cap, in quarters of the window's peak: what is cached at a step's peak of live blocks adds
// to peak RSS (bench/train's ResNet-18 at 128 px: 1.09 GiB live, 1.33 GiB mapped), and the
// training steps of bench/train at 28, 64 and 128 px grow no block within it (BENCHMARKS.md).
constexpr size_t kCapQuarters = 5;

// `mapping`: the start of the mmap (or moving mremap) a block is part of. Blocks split past the
// cap are parts of one mapping, and only such parts are joined again when both are cached.
struct CachedBlock {
  void* ptr;
  size_t bytes;
  void* mapping;
};

struct LiveBlock {
  size_t bytes;  // mapped
  size_t asked;  // the request's size, page-rounded: at most `bytes`
  void* mapping;
};

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(size_t minBytes) : minBytes_(minBytes) {
    long page = sysconf(_SC_PAGESIZE);
    page_ = page > 0 ? static_cast<size_t>(page) : 4096;
  }

  // libtorch 1.13 declares `allocate() const` and no copy_data(); 2.3 and later declare a
  // non-const allocate() and a pure virtual copy_data(). Defined here without `override`, the
  // three compile against both: each version's declarations are the ones overridden.
  c10::DataPtr allocate(size_t n) const {
    void* ptr = n >= minBytes_ ? const_cast<CachingCpuAllocator*>(this)->Take(n) : c10::alloc_cpu(n);
    return {ptr, ptr, &Delete, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(size_t n) { return std::as_const(*this).allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  CpuCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_, cached_, peak_, peakLive_, Cap(), kWindowRequests, hits_, misses_, minBytes_, grownBytes_};
  }

  void Empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& block : cache_) munmap(block.ptr, block.bytes);
    cache_.clear();
    cached_ = 0;
  }

 private:
  static void Delete(void* ptr);

  size_t Cap() const { return kCapQuarters * std::max({windowPeak_, previousWindowPeak_, asked_}) / 4; }

  void* Take(size_t n) {
    const size_t asked = (n + page_ - 1) / page_ * page_;
    size_t bytes = asked;
    std::lock_guard<std::mutex> lock(mutex_);
    // Best fit: the smallest cached block with at most 1/8 to spare; among equals the most recently freed.
    auto best = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      bool fits = it->bytes >= bytes && it->bytes - bytes <= it->bytes / kSpareDivisor;
      if (fits && (best == cache_.end() || it->bytes <= best->bytes)) best = it;
    }
    void* ptr = nullptr;
    void* mapping = nullptr;
    if (best != cache_.end()) {
      ptr = best->ptr;
      bytes = best->bytes;
      mapping = best->mapping;
      cached_ -= bytes;
      cache_.erase(best);
      ++hits_;
    } else {
      ++misses_;
      if (live_ + cached_ + bytes > Cap() && !cache_.empty()) ptr = TakeOverCap(bytes, mapping);
      if (ptr == nullptr) {
        ptr = mapping = Map(bytes);
        grownBytes_ += bytes;
      }
    }
    live_ += bytes;
    asked_ += asked;
    blocks_.emplace(ptr, LiveBlock{bytes, asked, mapping});
    peakLive_ = std::max(peakLive_, live_);
    windowPeak_ = std::max(windowPeak_, asked_);
    if (++windowRequests_ == kWindowRequests) {
      previousWindowPeak_ = windowPeak_;
      windowPeak_ = asked_;
      windowRequests_ = 0;
    }
    // Unmap the least recently freed blocks beyond the cap.
    while (live_ + cached_ > Cap() && !cache_.empty()) {
      munmap(cache_.front().ptr, cache_.front().bytes);
      cached_ -= cache_.front().bytes;
      cache_.pop_front();
    }
    peak_ = std::max(peak_, live_ + cached_);
    return ptr;
  }

  // Mapping more would pass the cap, so a cached block has to serve: the front of the smallest one
  // larger than the request (its pages are resident already, nothing is faulted in; the rest is
  // cached on its own, however small, to be joined again: a mapping can be unmapped or remapped by
  // parts), else the largest one grown
  // to the request's size (mremap keeps its pages: only the growth is faulted in). Returns the
  // block (of `bytes`) and sets `mapping`; null if mremap failed.
  void* TakeOverCap(size_t bytes, void*& mapping) {
    auto larger = cache_.end(), smaller = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->bytes >= bytes) {
        if (larger == cache_.end() || it->bytes <= larger->bytes) larger = it;
      } else if (smaller == cache_.end() || it->bytes >= smaller->bytes) {
        smaller = it;
      }
    }
    auto pick = larger != cache_.end() ? larger : smaller;
    void* ptr = pick->ptr;
    mapping = pick->mapping;
    if (pick == smaller) {
      ptr = mremap(pick->ptr, pick->bytes, bytes, MREMAP_MAYMOVE);
      if (ptr == MAP_FAILED) return nullptr;
      if (ptr != pick->ptr) mapping = ptr;  // moved: a mapping of its own
      grownBytes_ += bytes - pick->bytes;
    }
    const size_t tail = pick->bytes - std::min(pick->bytes, bytes);
    cached_ -= pick->bytes;
    cache_.erase(pick);
    if (tail > 0) {
      cache_.push_back({static_cast<char*>(ptr) + bytes, tail, mapping});
      cached_ += tail;
    }
    return ptr;
  }

  void* Map(size_t bytes) {
    void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptr == MAP_FAILED && !cache_.empty()) {
      for (const auto& block : cache_) munmap(block.ptr, block.bytes);
      cache_.clear();
      cached_ = 0;
      ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    TORCH_CHECK(ptr != MAP_FAILED, "CPU out of memory: could not map ", bytes, " bytes for a tensor");
    return ptr;
  }

  // True when `ptr` was a large block (now cached); false when it came from alloc_cpu.
  bool Give(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.find(ptr);
    if (it == blocks_.end()) return false;
    size_t bytes = it->second.bytes;
    void* mapping = it->second.mapping;
    live_ -= bytes;
    asked_ -= it->second.asked;
    blocks_.erase(it);
    cached_ += bytes;
    // Join the cached parts of the same mapping that end where this block starts or start where
    // it ends (a block split past the cap), so the next step's request for the whole finds it.
    char* start = static_cast<char*>(ptr);
    for (auto next = cache_.begin(); next != cache_.end();) {
      char* at = static_cast<char*>(next->ptr);
      if (next->mapping == mapping && (at + next->bytes == start || start + bytes == at)) {
        start = std::min(start, at);
        bytes += next->bytes;
        next = cache_.erase(next);
      } else {
        ++next;
      }
    }
    cache_.push_back({start, bytes, mapping});
    return true;
  }

  const size_t minBytes_;
  size_t page_;
  std::mutex mutex_;
  std::unordered_map<void*, LiveBlock> blocks_;  // live large blocks
  std::list<CachedBlock> cache_;               // freed large blocks, least recently freed first
  size_t live_ = 0, cached_ = 0, peak_ = 0, peakLive_ = 0, hits_ = 0, misses_ = 0, grownBytes_ = 0;
  // Bytes the live large blocks were asked for (a block may be larger), and their peak since the
  // window began (windowRequests_ large requests ago) and in the window before.
  size_t asked_ = 0, windowPeak_ = 0, previousWindowPeak_ = 0, windowRequests_ = 0;
};

CachingCpuAllocator* installed = nullptr;
std::once_flag installOnce;

void CachingCpuAllocator::Delete(void* ptr) {
  if (ptr == nullptr) return;
  if (installed == nullptr || !installed->Give(ptr)) c10::free_cpu(ptr);
}

}  // namespace

void InstallCpuAllocator() {
  std::call_once(installOnce, [] {
    size_t minBytes = kDefaultMinBytes;
    if (const char* env = std::getenv("RETINAGRADE_CPU_CACHE")) {
      std::string value(env);
      if (value == "0") return;
      char* end = nullptr;
      unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
      bool valid = !value.empty() && std::isdigit(static_cast<unsigned char>(value[0])) && *end == '\0' && parsed > 1;
      if (valid) {
        minBytes = static_cast<size_t>(parsed);
      } else {
        std::fprintf(stderr, "retinagrade: ignoring RETINAGRADE_CPU_CACHE=%s (expected 0 to disable, or a size in bytes above 1)\n", env);
      }
    }

    // Never freed: libtorch keeps the pointer, and tensors may outlive every Node environment.
    installed = new CachingCpuAllocator(minBytes);
    c10::SetCPUAllocator(installed, /*priority=*/1);
  });
}

CpuCacheStats GetCpuCacheStats() {
  return installed ? installed->Stats() : CpuCacheStats{};
}

void EmptyCpuCache() {
  if (installed) installed->Empty();
}

}  // namespace retinagrade
