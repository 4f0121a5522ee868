// Test-only replacement of global operator new that records the largest single
// allocation, so wire tests can assert that bad input is rejected without
// allocating from an unchecked length. Kept in its own translation unit.
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

std::atomic<size_t> g_max_alloc{0};

void* operator new(size_t n) {
  size_t prev = g_max_alloc.load(std::memory_order_relaxed);
  while (n > prev && !g_max_alloc.compare_exchange_weak(prev, n)) {
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
