#pragma once
/// @file
/// The random numbers of the ops that draw them (dropout): a counter-based generator whose
/// whole state is two integers, so a layer can own it and a checkpoint can store it as is.

#include <cstdint>

namespace autodiff {

/// Counter-based generator: the k-th draw is a pure function of (seed, k), a splitmix64 hash,
/// so a mask is reproducible from the seed and the counter alone. An op that draws n numbers
/// reads positions counter .. counter + n - 1 and advances counter by n.
struct CounterRng {
    std::uint64_t seed = 0;     ///< chooses the stream
    std::uint64_t counter = 0;  ///< the position of the next draw in that stream

    CounterRng() = default;
    explicit CounterRng(std::uint64_t seed_, std::uint64_t counter_ = 0) : seed(seed_), counter(counter_) {}

    /// splitmix64's finaliser (Steele, Lea, Flood 2014): a bijection that mixes every bit.
    static std::uint64_t mix(std::uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// The draw at position k of stream `seed`, uniform in [0, 1) with 53 random bits.
    static double uniform_at(std::uint64_t seed, std::uint64_t k) {
        const std::uint64_t bits = mix(mix(seed) + (k + 1) * 0x9e3779b97f4a7c15ULL);
        return static_cast<double>(bits >> 11) * 0x1.0p-53;
    }
    /// The next draw, advancing the counter.
    double uniform() { return uniform_at(seed, counter++); }
};

}  // namespace autodiff
