#pragma once
// Minibatches from a data set, fast. A Dataset keeps the engine's layout (features x
// examples), where the features of one example lie a whole row apart: gathering a
// shuffled batch from it touches one cache line per number. The loader keeps its own
// copy with each example contiguous, so a batch is 'count' sequential reads, transposed
// into the features x count matrix the network takes.

#include <algorithm>
#include <string>
#include <vector>

#include "autodiff/matrix.hpp"
#include "nn/data_error.hpp"
#include "nn/data/dataset.hpp"

namespace nn {

template <class T>
class DataLoader {
public:
    // Throws DataError for an empty data set, one whose labels and columns disagree, or one
    // holding NaN or Inf.
    explicit DataLoader(const Dataset<T>& data) : features_(data.feature_count()), classes_(data.classes), labels_(data.labels) {
        const std::size_t n = data.size();
        if (n == 0 || features_ == 0)
            throw DataError("DataLoader: the data set is empty (" + std::to_string(features_) + " features, " +
                            std::to_string(n) + " examples)");
        if (data.features.shape(1) != n)
            throw DataError("DataLoader: " + std::to_string(data.features.shape(1)) + " examples (columns) but " +
                            std::to_string(n) + " labels");
        // Else a NaN or an infinite feature reached a training step's loss, whose update made
        // every weight NaN, reported as a divergence ("try a lower learning rate"; found by an attack).
        const std::string at = autodiff::first_non_finite(data.features);
        if (!at.empty())
            throw DataError("DataLoader: the features (" + autodiff::to_string(autodiff::shape_of(data.features)) +
                            ") hold " + at + " (examples are columns; NaN and Inf are not data)");
        by_example_.resize(n * features_);
        // Transposed in 32 x 32 tiles, so reads and writes both stay within a few cache lines.
        constexpr std::size_t tile = 32;
        for (std::size_t i0 = 0; i0 < features_; i0 += tile)
            for (std::size_t j0 = 0; j0 < n; j0 += tile)
                for (std::size_t i = i0; i < std::min(i0 + tile, features_); ++i)
                    for (std::size_t j = j0; j < std::min(j0 + tile, n); ++j)
                        by_example_[j * features_ + i] = data.features.data()[i * n + j];
    }

    std::size_t size() const { return labels_.size(); }
    std::size_t feature_count() const { return features_; }
    std::size_t classes() const { return classes_; }

    // X (features x count) and y get the examples indices[0..count); no allocation when
    // they already have that shape.
    void gather(const std::size_t* indices, std::size_t count, autodiff::Matrix<T>& X, autodiff::Labels& y) const {
        autodiff::ensure_shape(X, {features_, count});
        y.resize(count);
        for (std::size_t j = 0; j < count; ++j) {
            if (indices[j] >= size())
                throw autodiff::Error("DataLoader::gather: example " + std::to_string(indices[j]) + " of " +
                                      std::to_string(size()));
            y[j] = labels_[indices[j]];
        }
        // A tile of examples at a time, as many as fill one 64-byte line of a row of X: each
        // line of X is written whole while the tile's examples are read in order. Writing
        // one example (a column of X) at a time touched a new line per number: 3x slower
        // for Fashion-MNIST's 784 x 128 batches (bench/README.md).
        // The examples of a shuffled batch are scattered over a data set far larger than the
        // cache: while one tile is transposed, the next tile's examples are requested, a line
        // of each per line of features read.
        constexpr std::size_t tile = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;
        T* out = X.data();
        const T* example[tile];
        const T* next[tile];
        for (std::size_t j0 = 0; j0 < count; j0 += tile) {
            const std::size_t n = std::min(tile, count - j0);
            const std::size_t ahead = count - j0 > tile ? std::min(tile, count - j0 - tile) : 0;
            for (std::size_t t = 0; t < n; ++t) example[t] = by_example_.data() + indices[j0 + t] * features_;
            for (std::size_t t = 0; t < ahead; ++t) next[t] = by_example_.data() + indices[j0 + tile + t] * features_;
            for (std::size_t i = 0; i < features_; ++i) {
                if (i % tile == 0)
                    for (std::size_t t = 0; t < ahead; ++t) __builtin_prefetch(next[t] + i);
                T* row = out + i * count + j0;
                for (std::size_t t = 0; t < n; ++t) row[t] = example[t][i];
            }
        }
    }

private:
    std::size_t features_, classes_;
    std::vector<std::size_t> labels_;
    std::vector<T> by_example_;  // example j's features at [j * features_, (j + 1) * features_)
};

}  // namespace nn
