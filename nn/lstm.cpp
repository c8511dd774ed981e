#include "nn/lstm.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "nn/allocate.hpp"
#include "nn/layer_checks.hpp"

namespace nn {

namespace {

NumpyRandom& as_lvalue(NumpyRandom&& rng) { return rng; }

// U(-k, k), k = 1/sqrt(n_hidden), drawn row by row: PyTorch's LSTM initialisation.
template <class T>
autodiff::Matrix<T> uniform_weights(const std::string& who, std::size_t rows, std::size_t cols, std::size_t n_hidden,
                                    NumpyRandom& rng) {
    const double k = 1.0 / std::sqrt(double(n_hidden));
    autodiff::Matrix<T> m = allocate_matrix<T>(who, rows, cols);
    for (T& v : m) v = T((2.0 * rng.uniform() - 1.0) * k);
    return m;
}

}  // namespace

template <class T>
typename LSTMCell<T>::Initial LSTMCell<T>::initial(std::size_t n_in, std::size_t n_hidden, NumpyRandom& rng) {
    const std::string who = "LSTMCell(" + std::to_string(n_in) + ", " + std::to_string(n_hidden) + ")";
    if (n_in == 0 || n_hidden == 0) throw autodiff::Error(who + ": the input and hidden sizes must be at least 1");
    // Every size before the first draw (found by an attack): 4 n_hidden wrapped around for a
    // hidden size of 2^62 (refused as 'parameter W_ih: empty 0x1 matrix'), and W_hh's count
    // for 2^31 only after W_ih's 64 GiB had been drawn.
    std::size_t gates = 0, numbers = 0;
    if (!autodiff::multiply_fits(4, n_hidden, gates) ||
        !autodiff::multiply_fits(gates, std::max(n_in, n_hidden), numbers) ||
        !autodiff::multiply_fits(numbers, sizeof(T), numbers))
        throw autodiff::Error(who + ": its weights (4 n_hidden x n_in and 4 n_hidden x n_hidden) have more bytes than "
                                    "a size_t can count");
    Initial p;  // in PyTorch's order of drawing
    p.W_ih = uniform_weights<T>(who, gates, n_in, n_hidden, rng);
    p.W_hh = uniform_weights<T>(who, gates, n_hidden, n_hidden, rng);
    p.b_ih = uniform_weights<T>(who, gates, 1, n_hidden, rng);
    p.b_hh = uniform_weights<T>(who, gates, 1, n_hidden, rng);
    return p;
}

template <class T>
LSTMCell<T>::LSTMCell(Initial p)
    : W_ih(this->add_parameter("W_ih", std::move(p.W_ih))),
      W_hh(this->add_parameter("W_hh", std::move(p.W_hh))),
      b_ih(this->add_parameter("b_ih", std::move(p.b_ih))),
      b_hh(this->add_parameter("b_hh", std::move(p.b_hh))) {}

template <class T>
LSTMCell<T>::LSTMCell(std::size_t n_in, std::size_t n_hidden, NumpyRandom& rng)
    : LSTMCell(initial(n_in, n_hidden, rng)) {}

template <class T>
LSTMCell<T>::LSTMCell(std::size_t n_in, std::size_t n_hidden, std::uint32_t seed)
    : LSTMCell(n_in, n_hidden, as_lvalue(NumpyRandom(seed))) {}

template <class T>
std::string LSTMCell<T>::describe() const {
    return "LSTMCell(" + std::to_string(n_in()) + ", " + std::to_string(n_hidden()) + ")";
}

template <class T>
void LSTMCell<T>::require_state(const LSTMState<T>& state, const autodiff::Var<T>& x) const {
    const std::size_t m = x.cols();
    const autodiff::Shape want{n_hidden(), m};
    for (const auto& [part, what] : {std::pair{&state.h, "h"}, std::pair{&state.c, "c"}}) {
        // Else the first op to meet both said only "linear: the handle belongs to another tape".
        if (!part->recorded_on(x.tape("LSTMCell")))
            throw autodiff::Error(this->who() + ": the state's " + what + " was recorded on another tape than the input" +
                                  " (zero_state(tape, examples) on the input's tape makes one)");
        if (part->shape() != want)
            throw autodiff::Error(this->who() + ": the state's " + what + " is " + autodiff::to_string(part->shape()) +
                                  " but the input has " + std::to_string(m) + " examples: it must be " +
                                  autodiff::to_string(want) + " (n_hidden x examples)");
    }
}

// The weights as a user may have assigned them (from PyTorch): a W_hh of 32x4 in a cell of
// hidden size 8 made a cell of 4 that sliced 16 of the 32 gate rows, without a word (found by
// an attack). The biases are checked against the weights' rows by linear.
template <class T>
void LSTMCell<T>::require_weights() const {
    const std::size_t gates = 4 * n_hidden();
    if (W_ih.shape().rows != gates || W_hh.shape().rows != gates)
        throw autodiff::Error(this->who() + ": W_ih is " + autodiff::to_string(W_ih.shape()) + " and W_hh " +
                              autodiff::to_string(W_hh.shape()) + ": both must have 4 n_hidden rows (n_hidden: W_hh's "
                              "columns, " + std::to_string(n_hidden()) + ")");
}

template <class T>
LSTMState<T> LSTMCell<T>::operator()(const autodiff::Var<T>& x, const LSTMState<T>& state) {
    require_weights();
    require_rows(*this, x, n_in());
    require_state(state, x);
    autodiff::Tape<T>& tape = x.tape();
    const autodiff::Var<T> gates = autodiff::linear(tape.parameter(W_ih), x, tape.parameter(b_ih)) +
                                   autodiff::linear(tape.parameter(W_hh), state.h, tape.parameter(b_hh));
    const std::size_t H = n_hidden();
    auto gate = [&](std::size_t k) { return autodiff::slice(gates, 0, k * H, (k + 1) * H); };
    const autodiff::Var<T> i = sigmoid(gate(0)), f = sigmoid(gate(1)), g = tanh(gate(2)), o = sigmoid(gate(3));
    const autodiff::Var<T> c = f * state.c + i * g;
    return {o * tanh(c), c};
}

template <class T>
LSTMState<T> LSTMCell<T>::zero_state(autodiff::Tape<T>& tape, std::size_t m) const {
    // Allocated as checked (a batch of 2^63 wrapped around to 'an empty 2x9223372036854775808 matrix').
    autodiff::Matrix<T> zeros = allocate_matrix<T>(this->who() + ": zero_state", n_hidden(), m);
    zeros.fill(T(0));
    const autodiff::Var<T> state = tape.constant(zeros);
    return {state, state};
}

template <class T>
LSTM<T>::LSTM(std::size_t n_in, std::size_t n_hidden, std::size_t layers_, NumpyRandom& rng) {
    if (layers_ == 0) throw autodiff::Error("LSTM: needs at least one layer");
    // The layer count before the first layer: each layer's few allocations succeed, so a count
    // of 2^40 allocated until the system killed the process. Each layer above the first holds
    // at least its cell, W_ih and W_hh (4 n_hidden x n_hidden each) and two biases; the first
    // one's sizes its cell checks. A lower bound (n_hidden capped: a larger one is the cell's
    // to refuse), so that no model that fits is refused.
    const std::string what = "LSTM(" + std::to_string(n_in) + ", " + std::to_string(n_hidden) + ", layers " +
                             std::to_string(layers_) + ")";
    const std::size_t n = std::min<std::size_t>(n_hidden, std::size_t(1) << 16);
    require_fits_in_memory(what, layers_ - 1, sizeof(LSTMCell<T>) + 4 * n * (2 * n + 2) * sizeof(T));
    // That bound is several times below what a layer takes (its parameters' objects and
    // gradients, each module's containers: ~3 KB a layer of hidden size 1, against ~480 bytes
    // counted): a count up to seven times what fits passed it and allocated until the system
    // killed the process (found by an attack). So the layers after the first, each made as
    // every later one is, are measured as they are made, and the rest checked against what
    // they took. Over `measured` layers, not one: the allocator hands out a few blocks freed
    // before (its per-thread cache) without counting them free first, which hid most of one
    // layer's bytes.
    constexpr std::size_t measured = 64;
    std::size_t before = 0;
    for (std::size_t l = 0; l < layers_; ++l) {
        if (l == 1) before = allocated_bytes();
        this->register_module("layer" + std::to_string(l), layers.emplace_back(l == 0 ? n_in : n_hidden, n_hidden, rng));
        if (l == measured && layers_ > measured + 1) {
            const std::size_t after = allocated_bytes();
            if (after > before) require_fits_in_memory(what, layers_ - measured - 1, (after - before) / measured);
        }
    }
}

template <class T>
LSTM<T>::LSTM(std::size_t n_in, std::size_t n_hidden, std::size_t layers_, std::uint32_t seed)
    : LSTM(n_in, n_hidden, layers_, as_lvalue(NumpyRandom(seed))) {}

// `layers` is public (as MLP's is): a user who emptied it made front() undefined behaviour
// (found by an attack), and a sequence pass its input through unchanged.
template <class T>
const LSTMCell<T>& LSTM<T>::bottom() const {
    if (layers.empty()) throw autodiff::Error("LSTM: has no layers (its layers were removed after it was made)");
    return layers.front();
}

template <class T>
std::string LSTM<T>::describe() const {
    return "LSTM(" + std::to_string(n_in()) + ", " + std::to_string(n_hidden()) + ", layers " +
           std::to_string(layers.size()) + ")";
}

template <class T>
std::vector<LSTMState<T>> LSTM<T>::zero_state(autodiff::Tape<T>& tape, std::size_t m) const {
    std::vector<LSTMState<T>> state;
    for (const LSTMCell<T>& cell : layers) state.push_back(cell.zero_state(tape, m));
    return state;
}

template <class T>
std::vector<autodiff::Var<T>> LSTM<T>::operator()(const std::vector<autodiff::Var<T>>& xs,
                                                  std::vector<LSTMState<T>>& state) {
    bottom();  // there are layers
    if (state.size() != layers.size())
        throw autodiff::Error(this->who() + ": the state holds " + std::to_string(state.size()) + " layers' h and c but " +
                              std::to_string(layers.size()) + " are needed (zero_state() makes them)");
    // Advanced on a copy, given back whole: a step refused part way (a misfit input or state,
    // the tape's memory limit) left the steps and layers before it advanced (found by an attack).
    std::vector<LSTMState<T>> next = state;
    std::vector<autodiff::Var<T>> out;
    out.reserve(xs.size());
    for (const autodiff::Var<T>& x : xs) {
        autodiff::Var<T> below = x;
        for (std::size_t l = 0; l < layers.size(); ++l) below = (next[l] = layers[l](below, next[l])).h;
        out.push_back(below);
    }
    state = std::move(next);
    return out;
}

template class LSTMCell<float>;
template class LSTMCell<double>;
template class LSTM<float>;
template class LSTM<double>;

}  // namespace nn
