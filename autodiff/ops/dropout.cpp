// Inverted dropout: each element kept with probability 1 - p and scaled by 1 / (1 - p), so
// the expected value is unchanged and evaluation needs no rescaling. The mask is a pure
// function of (rng.seed, position), so the same seed and counter give the same mask.

#include <cmath>
#include <string>

#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// Node: scalar = 1 / (1 - p), scalar2 = p, params[0..3] = the rng's seed and counter
// (Node::param64), saved = the mask times 1 / (1 - p), which is the derivative.

template <class T>
void dropout_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    ensure_shape(y.saved(), shape_of(x));
    const std::uint64_t seed = y.param64(0), counter = y.param64(2);
    const double p = static_cast<double>(y.scalar2());
    T* mask = y.saved().data();
    for (std::size_t k = 0; k < x.size(); ++k) {
        mask[k] = CounterRng::uniform_at(seed, counter + k) >= p ? y.scalar : T(0);
        y.value.data()[k] = x.data()[k] * mask[k];
    }
}

template <class T>
void dropout_backward(Tape<T>& tape, Node<T>& y) {
    const T* g = y.grad.data();
    const T* mask = y.saved().data();
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] * mask[k]; });
}

}  // namespace

template <class T>
Var<T> dropout(const Var<T>& x, scalar_of<T> p, CounterRng& rng) {
    const ops::HeldTape<T> held("dropout", {x});
    Tape<T>& tape = held.tape();
    if (!(p >= T(0) && p < T(1)))
        ops::fail("dropout", "p is " + ops::number_text(p) + " (the probability of zeroing an element must be in [0, 1))");
    Var<T> y = ops::record_library_op(tape, "dropout", {x}, x.shape(), dropout_forward<T>, dropout_backward<T>, [&](Node<T>& n) {
        n.scalar = T(1) / (T(1) - p);
        n.set_scalar2(p);
        n.set_param64(0, rng.seed);
        n.set_param64(2, rng.counter);
    });
    rng.counter += x.shape().size();
    return y;
}

template Var<float> dropout<float>(const Var<float>&, float, CounterRng&);
template Var<double> dropout<double>(const Var<double>&, double, CounterRng&);

}  // namespace autodiff
