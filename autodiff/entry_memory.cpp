#include "autodiff/entry_memory.hpp"

#include <cstdint>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace autodiff::detail {

namespace {

// A slab of slab_bytes aligned to slab_bytes (a huge page's alignment), asked to be backed by
// huge pages; null if the system gives none. Mapped twice as large and trimmed, so that the
// slab is aligned whatever address the kernel picks.
void* map_slab() {
#if defined(__linux__)
    constexpr std::size_t size = EntryMemory::slab_bytes;
    void* mapped = mmap(nullptr, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return nullptr;
    const auto start = reinterpret_cast<std::uintptr_t>(mapped);
    const std::uintptr_t aligned = (start + size - 1) & ~(size - 1);
    if (aligned > start) munmap(mapped, aligned - start);
    if (aligned + size < start + 2 * size) munmap(reinterpret_cast<void*>(aligned + size), start + size - aligned);
    void* slab = reinterpret_cast<void*>(aligned);
#if defined(MADV_HUGEPAGE)
    madvise(slab, size, MADV_HUGEPAGE);  // advice: refused (huge pages off), the slab is still memory
#endif
    return slab;
#else
    return nullptr;
#endif
}

void unmap_slab(void* slab) noexcept {
#if defined(__linux__)
    munmap(slab, EntryMemory::slab_bytes);
#else
    (void)slab;
#endif
}

}  // namespace

EntryMemory::~EntryMemory() {
    for (const Block& b : blocks_) {
        if (b.mapped)
            unmap_slab(b.memory);
        else
            ::operator delete(b.memory, std::align_val_t(b.alignment));
    }
}

void* EntryMemory::take(std::size_t bytes, std::size_t alignment, bool in_slab) {
    blocks_.reserve(blocks_.size() + 1);  // so that keeping the block below cannot throw
    if (in_slab && bytes <= slab_bytes && alignment <= 4096) {
        std::uintptr_t at = 0;
        if (slab_next_ != nullptr) {
            at = (reinterpret_cast<std::uintptr_t>(slab_next_) + alignment - 1) & ~(std::uintptr_t(alignment) - 1);
            if (at + bytes > reinterpret_cast<std::uintptr_t>(slab_end_)) at = 0;  // the rest of the slab is too small
        }
        if (at == 0) {
            if (void* slab = map_slab()) {
                blocks_.push_back({slab, alignment, true});
                slab_end_ = static_cast<char*>(slab) + slab_bytes;
                at = reinterpret_cast<std::uintptr_t>(slab);  // aligned to 2 MiB
            }
        }
        if (at != 0) {
            slab_next_ = reinterpret_cast<char*>(at + bytes);
            return reinterpret_cast<void*>(at);
        }
    }
    void* block = ::operator new(bytes, std::align_val_t(alignment));
    blocks_.push_back({block, alignment, false});
    return block;
}

}  // namespace autodiff::detail
