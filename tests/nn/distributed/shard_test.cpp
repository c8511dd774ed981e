// Sharding: rank r of N takes a contiguous, near-equal part of every global batch, and the
// parts tile the batch exactly.

#include <catch2/catch.hpp>

#include "nn/distributed/shard.hpp"

using nn::distributed::share_of;

TEST_CASE("the shares of a global batch tile it, differ by at most one, and depend only on (B, rank, N)",
          "[distributed]") {
    for (std::size_t batch : {1, 2, 3, 7, 13, 128, 1000}) {
        for (int ranks = 1; ranks <= 9; ++ranks) {
            std::size_t next = 0, smallest = batch, largest = 0;
            for (int rank = 0; rank < ranks; ++rank) {
                const auto s = share_of(batch, rank, ranks);
                REQUIRE(s.begin == next);
                next += s.count;
                smallest = std::min(smallest, s.count);
                largest = std::max(largest, s.count);
            }
            REQUIRE(next == batch);
            REQUIRE(largest - smallest <= 1);
        }
    }
    REQUIRE(share_of(10, 1, 4).begin == 2);
    REQUIRE(share_of(10, 1, 4).count == 3);
    REQUIRE(share_of(3, 0, 4).count == 0);  // fewer examples than ranks: someone gets none
}

TEST_CASE("share_of rejects a rank outside 0..N-1", "[distributed][errors]") {
    REQUIRE_THROWS_WITH(share_of(8, 2, 2), "share_of: rank 2 of 2");
    REQUIRE_THROWS_WITH(share_of(8, -1, 2), "share_of: rank -1 of 2");
    REQUIRE_THROWS_WITH(share_of(8, 0, 0), "share_of: rank 0 of 0");
}
