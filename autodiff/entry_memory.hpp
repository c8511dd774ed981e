#pragma once
// Raw memory for a tape's entries (EntryChunks in autodiff/tape.hpp): a short tape's chunks
// come one heap block each; a long tape's from 2 MiB slabs the kernel may back with huge pages.
//
// A recurrent model records hundreds of thousands of 576-byte entries: tens of megabytes,
// written once per recording and read back once per sweep. In 4 KiB pages a new tape's first
// recording takes a page fault every seven entries, and every sweep over it a TLB miss as
// often (the TLB covers ~8 MiB). A slab aligned to 2 MiB and marked MADV_HUGEPAGE is one fault
// and one TLB entry. Where huge pages are off, or not Linux, a slab is ordinary memory.
// A destroyed tape's slabs wait in a process-wide pool (up to 64 MiB) for the next tape's.

#include <cstddef>
#include <vector>

namespace autodiff::detail {

class EntryMemory {
public:
    static constexpr std::size_t slab_bytes = std::size_t(2) << 20;
    static constexpr std::size_t max_pooled_slabs = 32;  // 64 MiB waiting for the next tape at most
    EntryMemory() = default;
    EntryMemory(const EntryMemory&) = delete;
    EntryMemory& operator=(const EntryMemory&) = delete;
    ~EntryMemory();

    // `bytes` of memory aligned to `alignment` (at most 4096), valid until this is destroyed;
    // throws std::bad_alloc. From a slab when `in_slab` and it fits one, else a block of its own.
    void* take(std::size_t bytes, std::size_t alignment, bool in_slab);
    // Slabs given back by destroyed tapes, waiting in the process-wide pool for the next.
    static std::size_t pooled_slabs() noexcept;

private:
    struct Block {
        void* memory;
        std::size_t alignment;
        bool mapped;  // a slab from mmap (else from operator new)
    };
    std::vector<Block> blocks_;
    char* slab_next_ = nullptr;  // what is left of the last slab
    char* slab_end_ = nullptr;
};

}  // namespace autodiff::detail
