#pragma once
/// @file
/// A fully connected layer with the notebook's conventions: W is n_out x n_in, b is
/// n_out x 1, activations are features x examples, Z = W A + b.

#include <cstdint>
#include <string>

#include "autodiff/ops.hpp"
#include "nn/activation.hpp"
#include "nn/init.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T = double>
class Linear : public Module<T> {
public:
    /// W, then b, drawn from rng (the notebook's order), so a seed fixes a whole model.
    Linear(std::size_t n_in, std::size_t n_out, NumpyRandom& rng, Init init = Init::he);
    /// Its own generator seeded with `seed`.
    Linear(std::size_t n_in, std::size_t n_out, std::uint32_t seed = 0, Init init = Init::he);
    /// As above, named `name` until a parent registers it under a name of its own.
    Linear(std::size_t n_in, std::size_t n_out, Init init, NumpyRandom& rng, std::string name);
    Linear(autodiff::Matrix<T> W, autodiff::Matrix<T> b, std::string name = "");

    /// Z = W A + b, recorded on A's tape as one fused entry.
    autodiff::Var<T> forward(autodiff::Var<T> A) override;
    /// activation(W A + b) as one tape entry (autodiff::linear with an activation): the same
    /// values and gradients as the two entries, one memory pass and one buffer fewer.
    autodiff::Var<T> forward(autodiff::Var<T> A, Activation activation);

    std::size_t n_in() const { return W.value.shape()[1]; }
    std::size_t n_out() const { return W.value.shape()[0]; }
    std::string type() const override { return "Linear"; }
    std::string describe() const override;

    autodiff::Parameter<T>& W;
    autodiff::Parameter<T>& b;

private:
    Linear(LayerInit<T> initial, std::string name);
};

}  // namespace nn
