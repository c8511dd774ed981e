#pragma once
/// @file
/// A multilayer perceptron from a list of layer sizes: {inputs, hidden..., classes}.
/// Hidden layers use one activation; the last layer returns logits, for the fused
/// softmax_cross_entropy of the engine (the notebook's softmax output and its loss).
/// A Module made of Linear layers "layer1", "layer2", ... with ActivationLayers "act1", ...
/// between them: its parameters are "layer1.W", "layer1.b", ...

#include <deque>
#include <vector>

#include "nn/activation_layer.hpp"
#include "nn/linear.hpp"

namespace nn {

template <class T = double>
class MLP : public Module<T> {
public:
    /// Layers draw W, then b, in order from rng: with Init::notebook and rng seeded 1 the
    /// notebook's 5-10-10-4 network gets exactly its init_parameters().
    MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom& rng);
    MLP(const std::vector<std::size_t>& sizes, Activation hidden, Init init, NumpyRandom&& rng);
    MLP(const std::vector<std::size_t>& sizes, Activation hidden = Activation::relu, Init init = Init::he,
        std::uint32_t seed = 0);

    /// Logits (classes x examples) for X (features x examples), recorded on X's tape.
    autodiff::Var<T> forward(autodiff::Var<T> X) override;
    using Module<T>::operator();
    autodiff::Var<T> operator()(autodiff::Tape<T>& tape, const autodiff::Matrix<T>& X) { return forward(tape.constant(X)); }

    const std::vector<std::size_t>& sizes() const { return sizes_; }
    Activation hidden_activation() const { return hidden_; }
    std::string type() const override { return "MLP"; }
    std::string describe() const override;  ///< "MLP(5-10-10-4, relu)"

    std::deque<Linear<T>> layers;                 ///< a deque: modules never move
    std::deque<ActivationLayer<T>> activations;  ///< after every layer but the last

private:
    std::vector<std::size_t> sizes_;
    Activation hidden_;
};

}  // namespace nn
