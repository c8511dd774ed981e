#pragma once
/// @file
/// Long short-term memory, PyTorch's LSTMCell and LSTM on the notebook's layout: a step's
/// input is n_in x m, its hidden state h and cell state c are n_hidden x m (a column per
/// example), the weights are n_out x n_in. Each step records the gates as two linear entries
/// and their sum (4 n_hidden x m, in PyTorch's order: input, forget, cell, output), then
///     i = sigmoid(gates[0:H]), f = sigmoid(gates[H:2H]), g = tanh(gates[2H:3H]), o = sigmoid(gates[3H:4H])
///     c' = f * c + i * g,   h' = o * tanh(c')
/// so a sequence is a loop of steps on one tape, and backward() runs through time.

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "autodiff/ops.hpp"
#include "nn/module.hpp"
#include "nn/numpy_random.hpp"

namespace nn {

/// The state an LSTM carries from one step to the next: h and c, each n_hidden x m.
template <class T = double>
struct LSTMState {
    autodiff::Var<T> h, c;
};

/// One step of an LSTM: parameters "W_ih" (4 n_hidden x n_in), "W_hh" (4 n_hidden x n_hidden),
/// "b_ih" and "b_hh" (4 n_hidden x 1), drawn in that order from U(-k, k), k = 1/sqrt(n_hidden),
/// as PyTorch initialises them.
template <class T = double>
class LSTMCell : public Module<T> {
public:
    LSTMCell(std::size_t n_in, std::size_t n_hidden, NumpyRandom& rng);
    LSTMCell(std::size_t n_in, std::size_t n_hidden, std::uint32_t seed = 0);

    /// The state after input x (n_in x m), recorded on x's tape; state is the one before.
    LSTMState<T> operator()(const autodiff::Var<T>& x, const LSTMState<T>& state);
    using Module<T>::operator();
    /// h = c = 0 (n_hidden x m) on tape: the state before the first step.
    LSTMState<T> zero_state(autodiff::Tape<T>& tape, std::size_t m) const;

    std::size_t n_in() const { return W_ih.value.shape()[1]; }
    std::size_t n_hidden() const { return W_hh.value.shape()[1]; }
    std::string type() const override { return "LSTMCell"; }
    std::string describe() const override;  ///< "LSTMCell(5, 8)"

    autodiff::Parameter<T>& W_ih;
    autodiff::Parameter<T>& W_hh;
    autodiff::Parameter<T>& b_ih;
    autodiff::Parameter<T>& b_hh;

private:
    struct Initial {
        autodiff::Matrix<T> W_ih, W_hh, b_ih, b_hh;
    };
    // The sizes checked, then the four drawn: before any parameter is made.
    static Initial initial(std::size_t n_in, std::size_t n_hidden, NumpyRandom& rng);
    explicit LSTMCell(Initial p);
    void require_state(const LSTMState<T>& state, const autodiff::Var<T>& x) const;
    void require_weights() const;
};

/// Cells stacked: "layer0" reads the input, each next layer the h of the one below, as
/// torch.nn.LSTM(n_in, n_hidden, layers) does. Its parameters are "layer0.W_ih", ...
template <class T = double>
class LSTM : public Module<T> {
public:
    LSTM(std::size_t n_in, std::size_t n_hidden, std::size_t layers, NumpyRandom& rng);
    LSTM(std::size_t n_in, std::size_t n_hidden, std::size_t layers = 1, std::uint32_t seed = 0);

    /// The top layer's h for each step of xs (each n_in x m), from `state` (one per layer, from
    /// zero_state() to start a sequence), which it leaves as it is after the last step: a
    /// longer sequence can be fed in parts. A call that throws leaves `state` as it was.
    std::vector<autodiff::Var<T>> operator()(const std::vector<autodiff::Var<T>>& xs,
                                             std::vector<LSTMState<T>>& state);
    using Module<T>::operator();
    std::vector<LSTMState<T>> zero_state(autodiff::Tape<T>& tape, std::size_t m) const;

    std::size_t n_in() const { return bottom().n_in(); }
    std::size_t n_hidden() const { return bottom().n_hidden(); }
    std::string type() const override { return "LSTM"; }
    std::string describe() const override;  ///< "LSTM(5, 8, layers 2)"

    std::deque<LSTMCell<T>> layers;  ///< a deque: modules never move

private:
    const LSTMCell<T>& bottom() const;  // layer 0; throws, naming the LSTM, if layers was emptied
};

}  // namespace nn
