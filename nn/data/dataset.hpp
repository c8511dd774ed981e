#pragma once
/// @file
/// A labelled classification data set in the project's layout: one column per example
/// (features × examples), so a batch is a block of columns, exactly what a layer eats.
#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "autodiff/error.hpp"

namespace nn {

template <class T>
struct Dataset {
    xt::xtensor<T, 2> features;           ///< features × examples: one column per example
    std::vector<std::size_t> labels;      ///< class index per example, each < classes
    std::size_t classes = 0;
    std::vector<std::string> class_names; ///< class_names[i] names class index i

    std::size_t size() const { return labels.size(); }
    std::size_t feature_count() const { return features.shape(0); }
};

/// Copies the examples indices[0..count) into X_out (features × count) and labels_out.
/// The training loop calls this every step, so it only allocates when a buffer has the
/// wrong size (the first step, or a short last batch); with right-sized buffers it
/// allocates nothing.
template <class T>
void gather_batch(const Dataset<T>& data, const std::size_t* indices, std::size_t count,
                  xt::xtensor<T, 2>& X_out, std::vector<std::size_t>& labels_out) {
    const std::size_t rows = data.features.shape(0);
    const std::size_t n = data.features.shape(1);
    if (X_out.shape(0) != rows || X_out.shape(1) != count) {
        X_out.resize({rows, count});
    }
    labels_out.resize(count);
    for (std::size_t j = 0; j < count; ++j) {
        if (indices[j] >= n) {
            throw autodiff::Error("gather_batch: example index " + std::to_string(indices[j]) +
                                  " but the data set has " + std::to_string(n) + " examples");
        }
        labels_out[j] = data.labels[indices[j]];
    }
    /// Row by row, so both the reads (within a row of the source) and the writes stay in
    /// one contiguous row at a time: the data is row-major.
    for (std::size_t r = 0; r < rows; ++r) {
        const T* src = data.features.data() + r * n;
        T* dst = X_out.data() + r * count;
        for (std::size_t j = 0; j < count; ++j) dst[j] = src[indices[j]];
    }
}

}  // namespace nn
