#pragma once
/// @file
/// A fully connected layer with the notebook's conventions: W is n_out x n_in, b is
/// n_out x 1, activations are features x examples, Z = W A + b.

#include <string>

#include "autodiff/ops.hpp"
#include "nn/init.hpp"

namespace nn {

template <class T>
class Linear {
public:
    Linear(std::size_t n_in, std::size_t n_out, Init init, NumpyRandom& rng, std::string name);
    Linear(autodiff::Matrix<T> W, autodiff::Matrix<T> b, std::string name);

    /// Z = W A + b, recorded on A's tape as one fused entry.
    autodiff::Var<T> operator()(autodiff::Var<T> A);

    std::size_t n_in() const { return W.value.shape()[1]; }
    std::size_t n_out() const { return W.value.shape()[0]; }
    const std::string& name() const { return name_; }

    autodiff::Parameter<T> W;
    autodiff::Parameter<T> b;

private:
    Linear(LayerInit<T> initial, std::string name);
    std::string name_;
};

}  // namespace nn
