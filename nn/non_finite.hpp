#pragma once
/// @file
/// Finding NaN and Inf in matrices, and the check that stops a training run the moment its
/// loss or a parameter stops being finite, so that a diverged run fails loudly (and never
/// reaches a checkpoint) instead of printing "loss nan" to the end. Any training loop can
/// call check_finite_step after each optimizer step; nn::Trainer does.
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"

namespace nn {

/// A row and a column of a matrix, counted from 0.
struct MatrixPosition {
    std::size_t row = 0, col = 0;
};

/// The first NaN or Inf of `m` in row-major order, if any.
template <class T>
std::optional<MatrixPosition> first_non_finite(const autodiff::Matrix<T>& m) {
    const std::size_t cols = m.shape()[1];
    const T* data = m.data();
    for (std::size_t k = 0; k < m.size(); ++k) {
        if (!std::isfinite(data[k])) return MatrixPosition{k / cols, k % cols};
    }
    return std::nullopt;
}

/// "nan at row 1, column 3": what first_non_finite found, for an error message.
template <class T>
std::string describe_non_finite(const autodiff::Matrix<T>& m, MatrixPosition p) {
    const T v = m(p.row, p.col);
    return std::string(std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf") + " at row " + std::to_string(p.row) +
           ", column " + std::to_string(p.col);
}

/// A training run whose loss or parameters stopped being finite.
class TrainingDiverged : public autodiff::Error {
public:
    using autodiff::Error::Error;
};

/// Where a training step is: epoch and batch counted from 0 (messages count from 1, as the
/// progress lines do).
struct TrainingStep {
    std::size_t epoch = 0, batch = 0;
};

/// Throws TrainingDiverged naming the epoch, the batch, the loss or the first parameter (by
/// name, row and column) that is NaN or Inf, with a hint (a lower learning rate, scaled
/// input features). Call it after the optimizer's step.
template <class T>
void check_finite_step(double loss, const std::vector<autodiff::Parameter<T>*>& parameters, TrainingStep where);

/// Throws TrainingDiverged if an evaluation's mean loss is NaN or Inf (finite weights over
/// features too large for the type overflow), rather than reporting "loss nan".
void check_finite_evaluation(double loss);

}  // namespace nn
