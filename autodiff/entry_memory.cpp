#include "autodiff/entry_memory.hpp"

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

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

// Slabs a destroyed tape gave back, for the next tape's entries: a program that makes a new
// tape per step (value_and_grad without a tape, a loop with its Tape inside) then records into
// memory already faulted in, not into fresh pages the kernel must zero first (100,000 chained
// 14x1 muls recorded and swept on a new tape each time: 2.05-2.10x a reused tape's time per
// entry before, 1.51-1.69x with the pool; what is left is constructing and destroying the
// entries, which a reused tape does not do again; bench/README.md). At most
// max_slabs (64 MiB). Pooled slabs are marked MADV_FREE: under memory pressure the kernel may
// take their pages back (they then read as zeros; no tape reads an entry it has not written).
// Never destroyed: a tape destroyed during the program's exit (a static one) still gives back.
class SlabPool {
public:
    static constexpr std::size_t max_slabs = EntryMemory::max_pooled_slabs;
    static SlabPool& instance() {
        static SlabPool* const pool = new SlabPool;
        return *pool;
    }
    void* take() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (count_ == 0) return nullptr;
        return slabs_[--count_];
    }
    // False when full: the caller unmaps the slab. Marked MADV_FREE only if there is room (a
    // tape of many slabs gives most of them back to a full pool), and before it is pooled:
    // once in the pool, another thread's tape may take it and write entries into it.
    bool give(void* slab) noexcept {
        if (size() == max_slabs) return false;
#if defined(__linux__) && defined(MADV_FREE)
        madvise(slab, EntryMemory::slab_bytes, MADV_FREE);
#endif
        const std::lock_guard<std::mutex> lock(mutex_);
        if (count_ == max_slabs) return false;  // filled meanwhile
        slabs_[count_++] = slab;
        return true;
    }

    std::size_t size() noexcept {
        const std::lock_guard<std::mutex> lock(mutex_);
        return count_;
    }

private:
    std::mutex mutex_;
    void* slabs_[max_slabs] = {};
    std::size_t count_ = 0;
};

}  // namespace

std::size_t EntryMemory::pooled_slabs() noexcept { return SlabPool::instance().size(); }

EntryMemory::~EntryMemory() {
    for (const Block& b : blocks_) {
        if (b.mapped) {
            if (!SlabPool::instance().give(b.memory)) unmap_slab(b.memory);
        } else {
            ::operator delete(b.memory, std::align_val_t(b.alignment));
        }
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
            void* slab = SlabPool::instance().take();
            if (slab == nullptr) slab = map_slab();
            if (slab != nullptr) {
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
