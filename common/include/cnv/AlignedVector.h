// Float storage aligned to 64 bytes: a cache line on every CPU cnv targets, and the
// widest vector (AVX-512). A 64-byte vector load from an address off that boundary
// spans two lines and costs two loads on cores that split them (Zen 4 does): a kernel
// loading vectors from such a buffer runs at half speed where loads bound it.
// glibc's malloc only gives 16.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace cnv {

inline constexpr std::size_t kBufferAlignment = 64;

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBufferAlignment}));
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete(p, std::align_val_t{kBufferAlignment});
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept {
    return false;
  }
};

using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

}  // namespace cnv
