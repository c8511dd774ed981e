#pragma once
/// @file
/// LayerNorm (over the features of each example) and BatchNorm (over the examples of the
/// batch, per feature), both with a learned gain ("gain", ones) and bias ("bias", zeros),
/// n x 1 each, as PyTorch's weight and bias.

#include <string>

#include "autodiff/ops.hpp"
#include "nn/module.hpp"

namespace nn {

/// torch.nn.LayerNorm(n): each column normalised over its n features, the same in both modes.
template <class T = double>
class LayerNorm : public Module<T> {
public:
    explicit LayerNorm(std::size_t features, double eps = 1e-5);
    autodiff::Var<T> forward(autodiff::Var<T> x) override;
    std::string type() const override { return "LayerNorm"; }
    std::string describe() const override;

    autodiff::Parameter<T>& gain;
    autodiff::Parameter<T>& bias;

private:
    double eps_;
};

/// torch.nn.BatchNorm1d(n) over column examples (features x examples). Training mode:
/// each feature normalised with the batch's mean and biased variance, and the buffers
/// running_mean / running_var move towards the batch's mean and unbiased variance
/// (new = (1 - momentum) old + momentum batch, momentum 0.1). Evaluation mode: normalised
/// with the running statistics. Training needs at least 2 examples per batch.
template <class T = double>
class BatchNorm : public Module<T> {
public:
    explicit BatchNorm(std::size_t features, double momentum = 0.1, double eps = 1e-5);
    autodiff::Var<T> forward(autodiff::Var<T> x) override;
    std::string type() const override { return "BatchNorm"; }
    std::string describe() const override;

    autodiff::Parameter<T>& gain;
    autodiff::Parameter<T>& bias;
    autodiff::Matrix<T>& running_mean;  ///< zeros at first
    autodiff::Matrix<T>& running_var;   ///< ones at first

private:
    double momentum_, eps_;
    autodiff::Matrix<T> inverse_std_, shift_;  // evaluation's per-feature factors, reused
};

}  // namespace nn
