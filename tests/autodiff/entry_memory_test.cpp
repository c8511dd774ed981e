// Where a tape's entries live (autodiff/entry_memory.hpp): a short tape's chunks in blocks of
// their own, a long tape's packed into 2 MiB slabs aligned for huge pages.

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>

#include "autodiff/autodiff.hpp"
#include "autodiff/entry_memory.hpp"

using autodiff::detail::EntryMemory;

namespace {
std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
}  // namespace

TEST_CASE("entry memory: slab pieces are aligned, packed, and inside one aligned slab", "[autodiff][entry_memory]") {
    EntryMemory memory;
    constexpr std::size_t piece = 147456;  // a chunk of 256 entries of 576 bytes
    char* first = static_cast<char*>(memory.take(piece, 64, true));
#if defined(__linux__)
    CHECK(address(first) % EntryMemory::slab_bytes == 0);
#endif
    char* second = static_cast<char*>(memory.take(piece, 64, true));
    CHECK(second == first + piece);  // the same slab, right after
    // A slab holds 14 such pieces: the 15th starts a new slab.
    char* last = second;
    for (int k = 2; k < 14; ++k) last = static_cast<char*>(memory.take(piece, 64, true));
    CHECK(last == first + 13 * piece);
    char* next_slab = static_cast<char*>(memory.take(piece, 64, true));
#if defined(__linux__)
    CHECK(address(next_slab) % EntryMemory::slab_bytes == 0);
#endif
    CHECK((next_slab + piece <= first || next_slab >= first + EntryMemory::slab_bytes));
    // Every byte handed out is writable and keeps what was written.
    std::memset(first, 1, piece);
    std::memset(next_slab, 2, piece);
    CHECK(first[piece - 1] == 1);
    CHECK(next_slab[0] == 2);
}

TEST_CASE("entry memory: a short tape's blocks and oversized pieces come from the heap, aligned", "[autodiff][entry_memory]") {
    EntryMemory memory;
    void* own = memory.take(1000, 64, false);
    CHECK(address(own) % 64 == 0);
    void* big = memory.take(EntryMemory::slab_bytes + 64, 64, true);  // larger than a slab: a block of its own
    CHECK(address(big) % 64 == 0);
    std::memset(big, 3, EntryMemory::slab_bytes + 64);
    CHECK(static_cast<char*>(big)[EntryMemory::slab_bytes] == 3);
}

TEST_CASE("entry memory: a tape past its first two chunks records, sweeps and resets as before", "[autodiff][entry_memory]") {
    // 3,003 entries: chunks 0-1 from the heap, 2-11 from one slab. With w = 1, dloss/dx is
    // w^3000 = 1 and dloss/dw sums 3000 ones per element.
    autodiff::Parameter<double> w(xt::ones<double>({std::size_t(3), std::size_t(1)}));
    autodiff::Tape<double> tape;
    for (int round = 0; round < 2; ++round) {
        tape.reset();
        w.grad = xt::zeros<double>({std::size_t(3), std::size_t(1)});
        const auto wv = tape.parameter(w);
        auto y = tape.leaf(xt::ones<double>({std::size_t(3), std::size_t(1)}));
        const auto x = y;
        for (int k = 0; k < 3000; ++k) y = y * wv;
        tape.backward(sum(y));
        CHECK(tape.size() == 3003);
        CHECK(x.grad()(0, 0) == 1.0);
        CHECK(w.grad(2, 0) == 3000.0);
        CHECK(y.value()(1, 0) == 1.0);
    }
}

TEST_CASE("entry memory: a destroyed tape's slabs wait in a pool for the next tape's entries", "[autodiff][entry_memory]") {
#if defined(__linux__)
    constexpr std::size_t pool_size = EntryMemory::max_pooled_slabs;
    auto memory = std::make_unique<EntryMemory>();
    char* slab = static_cast<char*>(memory->take(EntryMemory::slab_bytes, 64, true));  // pooled, if any is
    std::memset(slab, 4, EntryMemory::slab_bytes);
    const std::size_t before = EntryMemory::pooled_slabs();  // other tests' tapes may have left some
    REQUIRE(before < pool_size);
    memory.reset();
    {
        CHECK(EntryMemory::pooled_slabs() == before + 1);
        EntryMemory memory;
        char* again = static_cast<char*>(memory.take(EntryMemory::slab_bytes, 64, true));
        CHECK(again == slab);  // the last given back is the first taken
        CHECK(EntryMemory::pooled_slabs() == before);
        std::memset(again, 5, EntryMemory::slab_bytes);  // writable whole, whatever MADV_FREE did
        CHECK(again[EntryMemory::slab_bytes - 1] == 5);
    }
    {  // more slabs given back than the pool keeps: the rest are unmapped
        EntryMemory memory;
        for (std::size_t k = 0; k < pool_size + 8; ++k) memory.take(EntryMemory::slab_bytes, 64, true);
    }
    CHECK(EntryMemory::pooled_slabs() == pool_size);
#endif
    // A new tape on pooled slabs records and sweeps as the first did.
    autodiff::Parameter<double> w(xt::ones<double>({std::size_t(2), std::size_t(1)}));
    for (int round = 0; round < 2; ++round) {
        autodiff::Tape<double> tape;
        w.grad = xt::zeros<double>({std::size_t(2), std::size_t(1)});
        const auto wv = tape.parameter(w);
        auto y = tape.leaf(xt::ones<double>({std::size_t(2), std::size_t(1)}));
        for (int k = 0; k < 3000; ++k) y = y * wv;
        tape.backward(sum(y));
        CHECK(w.grad(1, 0) == 3000.0);
    }
}
