#pragma once
// Where a handle can learn whether its tape still exists, without touching the tape (and a
// tape whether a Parameter it recorded still exists, without touching the parameter).
// Every live Tape owns a slot holding its current generation; reset() writes a new one and
// the destructor writes 0. The slots are never freed, so reading one is always safe, and a
// handle whose generation no longer matches its slot throws instead of reading freed memory.

#include <atomic>
#include <cstdint>

namespace autodiff::detail {

class TapeRegistry {
public:
    static constexpr std::uint32_t chunk_size = 4096;
    static constexpr std::uint32_t max_chunks = 4096;  // 16M tapes alive at once

    static std::uint32_t acquire();            // a free slot (thread-safe)
    static void release(std::uint32_t slot);   // marks it dead and reusable

    static std::atomic<std::uint64_t>& generation(std::uint32_t slot) {
        return chunks_[slot / chunk_size].load(std::memory_order_acquire)[slot % chunk_size];
    }
    static std::uint64_t next_generation();    // unique across all tapes, never 0

private:
    static std::atomic<std::atomic<std::uint64_t>*> chunks_[max_chunks];
};

}  // namespace autodiff::detail
