#pragma once
/// @file
/// Finding NaN and Inf in matrices, and the check that stops a training run the moment its
/// loss or a parameter stops being finite, so that a diverged run fails loudly (and never
/// reaches a checkpoint) instead of printing "loss nan" to the end. Any training loop can
/// call check_finite_step after each optimizer step; nn::Trainer does. Where the first NaN
/// or Inf of a matrix is: autodiff::first_non_finite (autodiff/matrix.hpp).
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"

namespace nn {

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
/// Throws TrainingDiverged naming the epoch and the batch if the loss is NaN or Inf (the first
/// half of check_finite_step, for an optimizer that checked its own new weights).
void check_finite_loss(double loss, TrainingStep where);

template <class T>
void check_finite_step(double loss, const std::vector<autodiff::Parameter<T>*>& parameters, TrainingStep where);

/// Throws TrainingDiverged, after `who`, naming the first parameter that is NaN or Inf: a
/// weight given or assigned so (the Trainer asks before every epoch, so that such a weight is
/// not blamed on the learning rate).
template <class T>
void check_finite_parameters(const std::vector<autodiff::Parameter<T>*>& parameters, const std::string& who);
/// Throws TrainingDiverged if an evaluation's mean loss is NaN or Inf, rather than reporting
/// "loss nan", naming the first parameter that is NaN or Inf if one is, else the causes left
/// (finite weights times features overflow the type: weights grown huge, or features too large).
template <class T>
void check_finite_evaluation(double loss, const std::vector<autodiff::Parameter<T>*>& parameters);

}  // namespace nn
