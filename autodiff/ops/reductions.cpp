// sum and mean (over everything or one axis) and the mean squared error. A reduction is
// sum_to with a factor (1 or 1/count); its backward broadcasts the gradient back.

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

Shape reduced_shape(Shape s, int axis) {  // axis -1: everything
    if (axis == 0) return {1, s.cols};
    if (axis == 1) return {s.rows, 1};
    return {1, 1};
}

// y.scalar: 1 for a sum, 1/count for a mean.
template <class T>
void reduce_forward(Tape<T>& tape, Node<T>& y) {
    kernels::sum_to(tape.input(y, 0), y.value, /*overwrite=*/true, y.scalar);
}

template <class T>
void reduce_backward(Tape<T>& tape, Node<T>& y) {
    const kernels::Broadcast<T> g(y.grad);
    const T factor = y.scalar;
    tape.grad_of(y, 0).accumulate_2d([&](std::size_t i, std::size_t j) { return factor * g(i, j); });
}

template <class T>
Var<T> reduce(const char* op, const Var<T>& x, int axis, bool average) {
    const ops::HeldTape<T> held(op, {x});
    Tape<T>& tape = held.tape();
    const Shape out_shape = reduced_shape(x.shape(), axis);
    const T factor = average ? T(out_shape.size()) / T(x.shape().size()) : T(1);
    return ops::record_library_op(tape, op, {x}, out_shape, reduce_forward<T>, reduce_backward<T>,
                          [&](Node<T>& y) { y.scalar = factor; });
}

// loss = mean((p - t)^2); loss.scalar holds 1/N.
// The target is checked here, as softmax_cross_entropy checks a target handle: given as a
// Matrix, a NaN target was refused, but given as a handle (a constant_ref a Replay refills)
// it made the loss and every gradient NaN without a word (found by an attack). See
// ops::require_finite_target for when it is scanned.
template <class T>
void mse_forward(Tape<T>& tape, Node<T>& loss) {
    const Matrix<T>& p = tape.input(loss, 0);
    const Matrix<T>& t = tape.input(loss, 1);
    T total = T(0);
    for (std::size_t k = 0; k < p.size(); ++k) total += (p.data()[k] - t.data()[k]) * (p.data()[k] - t.data()[k]);
    ops::require_finite_target("mse", "target", total, t);
    loss.value(0, 0) = total * loss.scalar;
}

// d/dp mean((p - t)^2) = 2 (p - t) / N, and the negative of it for t.
template <class T>
void mse_backward(Tape<T>& tape, Node<T>& loss) {
    const T* p = tape.input(loss, 0).data();
    const T* t = tape.input(loss, 1).data();
    const T factor = T(2) * loss.scalar * loss.grad(0, 0);
    if (tape.needs_grad(loss, 0)) tape.grad_of(loss, 0).accumulate([&](std::size_t k) { return factor * (p[k] - t[k]); });
    if (tape.needs_grad(loss, 1)) tape.grad_of(loss, 1).accumulate([&](std::size_t k) { return factor * (t[k] - p[k]); });
}

}  // namespace

template <class T> Var<T> sum(const Var<T>& x) { return reduce("sum", x, -1, false); }
template <class T> Var<T> mean(const Var<T>& x) { return reduce("mean", x, -1, true); }
template <class T> Var<T> sum(const Var<T>& x, int axis) { return reduce("sum", x, ops::require_axis("sum", axis), false); }
template <class T> Var<T> mean(const Var<T>& x, int axis) { return reduce("mean", x, ops::require_axis("mean", axis), true); }

template <class T>
Var<T> mse(const Var<T>& prediction, const Var<T>& target) {
    const ops::HeldTape<T> held("mse", {prediction, target});
    Tape<T>& tape = held.tape();
    ops::require_same_shape("mse", "prediction", prediction, "target", target.shape());
    const T inverse_count = T(1) / static_cast<T>(prediction.shape().size());
    return ops::record_library_op(tape, "mse", {prediction, target}, {1, 1}, mse_forward<T>, mse_backward<T>,
                          [&](Node<T>& loss) { loss.scalar = inverse_count; });
}

#define TAPEGRAD_INSTANTIATE(T)                 \
    template Var<T> sum<T>(const Var<T>&);             \
    template Var<T> mean<T>(const Var<T>&);            \
    template Var<T> sum<T>(const Var<T>&, int);        \
    template Var<T> mean<T>(const Var<T>&, int);       \
    template Var<T> mse<T>(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
