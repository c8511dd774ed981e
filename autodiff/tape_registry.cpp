#include "autodiff/tape_registry.hpp"

#include <mutex>
#include <vector>

#include "autodiff/error.hpp"

namespace autodiff::detail {

std::atomic<std::atomic<std::uint64_t>*> TapeRegistry::chunks_[TapeRegistry::max_chunks] = {};

namespace {
std::mutex registry_mutex;
std::vector<std::uint32_t> free_slots;  // guarded by registry_mutex
std::uint32_t next_slot = 0;            // guarded by registry_mutex
}  // namespace

std::uint64_t TapeRegistry::next_generation() {
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
}

std::uint32_t TapeRegistry::acquire() {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (!free_slots.empty()) {
        const std::uint32_t slot = free_slots.back();
        free_slots.pop_back();
        return slot;
    }
    if (next_slot == chunk_size * max_chunks) throw Error("Tape/Parameter: more than 16M tapes and parameters alive at once");
    const std::uint32_t slot = next_slot++;
    if (slot % chunk_size == 0)  // first slot of a new chunk; chunks are never freed
        chunks_[slot / chunk_size].store(new std::atomic<std::uint64_t>[chunk_size](), std::memory_order_release);
    return slot;
}

void TapeRegistry::release(std::uint32_t slot) {
    generation(slot).store(0, std::memory_order_release);
    std::lock_guard<std::mutex> lock(registry_mutex);
    free_slots.push_back(slot);
}

}  // namespace autodiff::detail
