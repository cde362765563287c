// libtorch's default CPU allocator hands every tensor to glibc's malloc. Training repeats the
// same sequence of large allocations every step (activations, their gradients, oneDNN
// scratchpads), and glibc serves them badly both ways: blocks above its mmap threshold are
// unmapped on free and page-faulted in again next step (15-30% of a step as system time), and
// blocks below it (the threshold grows dynamically to 32 MiB) land in the heap between the small
// allocations of Node and the binding, where freed space fragments and the heap keeps growing.
//
// This allocator takes the large requests (>= 1 MiB by default) out of glibc: each is an
// anonymous mapping of its own, and a freed block is kept mapped in a cache; a later request of
// the same (page-rounded) size takes it back without a system call or page faults. A request
// the cache cannot serve first unmaps least-recently freed blocks totalling at least its size,
// so the memory mapped for large blocks (live + cached) only grows when the cache is empty: its
// peak is at most the peak of live large blocks plus one block. Small requests go to libtorch's
// own `alloc_cpu` (glibc) as before.
#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

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

  c10::DataPtr allocate(size_t n) const override {
    void* ptr = n >= minBytes_ ? const_cast<CachingCpuAllocator*>(this)->Take(n) : c10::alloc_cpu(n);
    return {ptr, ptr, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  CpuCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_, cached_, peak_, hits_, misses_, minBytes_};
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
    for (auto it = cache_.rbegin(); it != cache_.rend(); ++it) {
      if (it->bytes == bytes) {
        void* ptr = it->ptr;
        cache_.erase(std::next(it).base());
        cached_ -= bytes;
        live_ += bytes;
        blocks_.emplace(ptr, bytes);
        ++hits_;
        return ptr;
      }
    }
    ++misses_;
    // Make room: unmap the least recently freed blocks, at least as many bytes as we map.
    size_t released = 0;
    while (released < bytes && !cache_.empty()) {
      released += cache_.front().bytes;
      munmap(cache_.front().ptr, cache_.front().bytes);
      cached_ -= cache_.front().bytes;
      cache_.pop_front();
    }
    void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ptr == MAP_FAILED && !cache_.empty()) {
      for (const auto& block : cache_) munmap(block.ptr, block.bytes);
      cache_.clear();
      cached_ = 0;
      ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    TORCH_CHECK(ptr != MAP_FAILED, "CPU out of memory: could not map ", bytes, " bytes for a tensor");
    live_ += bytes;
    if (live_ + cached_ > peak_) peak_ = live_ + cached_;
    blocks_.emplace(ptr, bytes);
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
  size_t live_ = 0, cached_ = 0, peak_ = 0, hits_ = 0, misses_ = 0;
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
      if (end != value.c_str() && *end == '\0' && parsed > 1) minBytes = static_cast<size_t>(parsed);
    }
    // Never freed: libtorch keeps the pointer, and tensors may outlive every Node environment.
    installed = new CachingCpuAllocator(minBytes);
    c10::SetCPUAllocator(installed, /*priority=*/1);
  });
}

CpuCacheStats GetCpuCacheStats() {
  return installed ? installed->Stats() : CpuCacheStats{0, 0, 0, 0, 0, 0};
}

void EmptyCpuCache() {
  if (installed) installed->Empty();
}

}  // namespace retinagrade
