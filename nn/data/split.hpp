#pragma once
/// @file
/// A seeded train/test split, for data sets that come without one (Iris, a user's CSV).

#include <cstdint>
#include <numeric>
#include <utility>

#include "autodiff/error.hpp"
#include "nn/data/dataset.hpp"
#include "nn/numpy_random.hpp"

namespace nn {

/// Shuffles the examples with NumpyRandom(seed) and puts round(test_fraction * n) of them,
/// at least one, in the test set.
template <class T>
std::pair<Dataset<T>, Dataset<T>> train_test_split(const Dataset<T>& data, double test_fraction, std::uint32_t seed) {
    if (!(test_fraction > 0 && test_fraction < 1))
        throw autodiff::Error("train_test_split: test_fraction must be in (0, 1), got " + std::to_string(test_fraction));
    const std::size_t n = data.size();
    const std::size_t test_n = std::max<std::size_t>(1, static_cast<std::size_t>(test_fraction * double(n) + 0.5));
    // The fraction was not named: 150 examples with a test fraction of 0.999999 were "too few
    // to split" (found by an attack).
    if (test_n >= n)
        throw autodiff::Error("train_test_split: a test fraction of " + std::to_string(test_fraction) + " of " +
                              std::to_string(n) + " examples takes " + std::to_string(test_n) +
                              " to test and leaves none to train on");
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    NumpyRandom rng(seed);
    rng.shuffle(order);
    auto take = [&](std::size_t first, std::size_t count) {
        Dataset<T> part;
        part.classes = data.classes;
        part.class_names = data.class_names;
        gather_batch(data, order.data() + first, count, part.features, part.labels);
        return part;
    };
    return {take(test_n, n - test_n), take(0, test_n)};
}

}  // namespace nn
