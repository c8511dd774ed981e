#pragma once
/// @file
/// A multilayer perceptron from a list of layer sizes: {inputs, hidden..., classes}.
/// Hidden layers use one activation; the last layer returns logits, for the fused
/// softmax_cross_entropy of the engine (the notebook's softmax output and its loss).

#include <vector>

#include "nn/activation.hpp"
#include "nn/linear.hpp"

namespace nn {

template <class T = double>
class MLP {
public:
    /// Layers draw W, then b, in order from rng: with Init::notebook and rng seeded 1 the
    /// notebook's 5-10-10-4 network gets exactly its init_parameters().
    MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom& rng);
    MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom&& rng);
    MLP(const std::vector<std::size_t>& sizes, Activation hidden = Activation::relu, Init init = Init::he,
        std::uint32_t seed = 0);

    /// Logits (classes x examples) for X (features x examples), recorded on X's tape.
    autodiff::Var<T> operator()(autodiff::Var<T> X);
    autodiff::Var<T> operator()(autodiff::Tape<T>& tape, const autodiff::Matrix<T>& X) { return (*this)(tape.constant(X)); }

    std::vector<autodiff::Parameter<T>*> parameters();  ///< W1, b1, W2, b2, ...
    void zero_grad();

    const std::vector<std::size_t>& sizes() const { return sizes_; }
    Activation hidden_activation() const { return hidden_; }
    std::vector<Linear<T>> layers;

private:
    std::vector<std::size_t> sizes_;
    Activation hidden_;
};

}  // namespace nn
