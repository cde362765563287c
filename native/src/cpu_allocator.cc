// libtorch's default CPU allocator hands every tensor to glibc's malloc. Training repeats the
// same sequence of large allocations every step (activations, their gradients, oneDNN
// scratchpads), and glibc serves them badly both ways: blocks above its mmap threshold are
// unmapped on free and page-faulted in again next step (15-30% of a step as system time), and
// blocks below it (the threshold grows dynamically to 32 MiB) land in the heap between the small
// allocations of Node and the binding, where freed space fragments and the heap keeps growing.
//
// This allocator takes the large requests (>= 1 MiB by default) out of glibc: each is an
// anonymous mapping of its own, and a freed block is kept mapped in a cache; a later request of
// the same (page-rounded) size takes it back without a system call or page faults. From the
// second step on, training then runs without faulting in tensor memory. The memory mapped for
// large blocks (live + cached) is kept within twice the peak of live large blocks: a request
// the cache cannot serve that would pass this limit resizes the least recently freed cached
// block instead (mremap keeps its pages; only growth is faulted in), and blocks beyond the limit
// are unmapped. The models measured settle at 1.4-1.6x the live peak (bench/README.md), and
// still below glibc's footprint for the same run. Small requests go to libtorch's own
// `alloc_cpu` (glibc) as before.
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

constexpr size_t kDefaultMinBytes = size_t{1} << 20;

struct CachedBlock {
  void* ptr;
  size_t bytes;
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
    return {live_, cached_, peak_, hits_, misses_, minBytes_, grownBytes_};
  }

  void Empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& block : cache_) munmap(block.ptr, block.bytes);
    cache_.clear();
    cached_ = 0;
  }

 private:
  static void Delete(void* ptr);

  void* Take(size_t n) {
    size_t bytes = (n + page_ - 1) / page_ * page_;
    std::lock_guard<std::mutex> lock(mutex_);
    // The most recently freed block of this size.
    auto best = cache_.end();
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->bytes == bytes) best = it;
    }
    void* ptr = nullptr;
    if (best != cache_.end()) {
      ptr = best->ptr;
      cached_ -= bytes;
      cache_.erase(best);
      ++hits_;
    } else {
      ++misses_;
      size_t limit = 2 * std::max(peakLive_, live_ + bytes);
      if (live_ + cached_ + bytes > limit && !cache_.empty()) {
        // Mapping more would pass the limit, so a cached block has to go: resize one instead
        // (mremap keeps its pages resident; only growth is faulted in), the least recently freed.
        auto pick = cache_.begin();
        void* moved = mremap(pick->ptr, pick->bytes, bytes, MREMAP_MAYMOVE);
        if (moved != MAP_FAILED) {
          ptr = moved;
          if (bytes > pick->bytes) grownBytes_ += bytes - pick->bytes;
          cached_ -= pick->bytes;
          cache_.erase(pick);
        }
      }
      if (ptr == nullptr) {
        ptr = Map(bytes);
        grownBytes_ += bytes;
      }
    }
    live_ += bytes;
    blocks_.emplace(ptr, bytes);
    if (live_ > peakLive_) peakLive_ = live_;
    // Keep what is mapped for large blocks within twice the peak of live ones: unmap the least
    // recently freed blocks beyond it.
    while (live_ + cached_ > 2 * peakLive_ && !cache_.empty()) {
      munmap(cache_.front().ptr, cache_.front().bytes);
      cached_ -= cache_.front().bytes;
      cache_.pop_front();
    }
    if (live_ + cached_ > peak_) peak_ = live_ + cached_;
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
    size_t bytes = it->second;
    blocks_.erase(it);
    live_ -= bytes;
    cached_ += bytes;
    cache_.push_back({ptr, bytes});
    return true;
  }

  const size_t minBytes_;
  size_t page_;
  std::mutex mutex_;
  std::unordered_map<void*, size_t> blocks_;  // live large blocks
  std::list<CachedBlock> cache_;               // freed large blocks, least recently freed first
  size_t live_ = 0, cached_ = 0, peak_ = 0, peakLive_ = 0, hits_ = 0, misses_ = 0, grownBytes_ = 0;
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
  return installed ? installed->Stats() : CpuCacheStats{0, 0, 0, 0, 0, 0, 0};
}

void EmptyCpuCache() {
  if (installed) installed->Empty();
}

}  // namespace retinagrade
