#pragma once
/// @file
/// Which examples of a global batch a rank takes. The global batch keeps its meaning
/// whatever the number of ranks: epoch e's examples are shuffled by (seed, e) alone, cut
/// into global batches of B, and rank r of N takes the r-th of N near-equal contiguous
/// parts of each. A rank's examples thus depend only on (seed, epoch, rank, N): a run resumed
/// with the same N continues exactly, and one resumed with another N sees the same global
/// batches, split differently (the same run up to the order of floating-point sums).

#include <cstddef>
#include <stdexcept>
#include <string>

#include "autodiff/error.hpp"

namespace nn::distributed {

/// Examples [begin, begin + count) of a global batch (positions within the batch).
struct Share {
    std::size_t begin = 0;
    std::size_t count = 0;
};

/// Rank `rank` of `ranks`'s part of a global batch of `batch` examples: the parts differ by
/// at most one example, and a rank's part may be empty when batch < ranks (its gradient then
/// counts with weight 0).
inline Share share_of(std::size_t batch, int rank, int ranks) {
    if (ranks < 1 || rank < 0 || rank >= ranks)
        throw autodiff::Error("share_of: rank " + std::to_string(rank) + " of " + std::to_string(ranks));
    const std::size_t begin = batch * std::size_t(rank) / std::size_t(ranks);
    const std::size_t end = batch * (std::size_t(rank) + 1) / std::size_t(ranks);
    return {begin, end - begin};
}

}  // namespace nn::distributed
