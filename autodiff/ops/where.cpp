// where(mask, a, b): a where the mask is nonzero, b elsewhere, the three broadcasting
// together in 2-D as add does. The gradient goes to the side that was picked; the mask,
// a selector, gets none.

#include <algorithm>

#include "autodiff/kernels.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

template <class T>
void where_forward(Tape<T>& tape, Node<T>& y) {
    const kernels::Broadcast<T> mask(tape.input(y, 0)), a(tape.input(y, 1)), b(tape.input(y, 2));
    kernels::fill(y.value, [&](std::size_t i, std::size_t j) { return mask(i, j) != T(0) ? a(i, j) : b(i, j); });
}

template <class T, int side>  // side 1: a, picked where the mask is nonzero; side 2: b
void where_backward_side(Tape<T>& tape, Node<T>& y) {
    if (!tape.needs_grad(y, side)) return;
    const kernels::Broadcast<T> mask(tape.input(y, 0));
    const T* g = y.grad.data();
    const std::size_t cols = y.value.shape()[1];
    auto picked = [&](std::size_t i, std::size_t j) {
        return (mask(i, j) != T(0)) == (side == 1) ? g[i * cols + j] : T(0);
    };
    auto sink = tape.grad_of(y, side);
    if (shape_of(sink.grad) == shape_of(y.value)) {
        sink.accumulate_2d(picked);
    } else {  // this side was broadcast: sum back to its shape
        ensure_shape(y.work()[0], shape_of(y.value));
        kernels::fill(y.work()[0], picked);
        kernels::sum_to(y.work()[0], sink.grad, sink.overwrite);
    }
}

template <class T>
void where_backward(Tape<T>& tape, Node<T>& y) {
    where_backward_side<T, 1>(tape, y);
    where_backward_side<T, 2>(tape, y);
}

// The output's shape: a and b broadcast together, and the mask with them.
Shape where_shape(Shape mask, Shape a, Shape b) {
    const Shape ab = ops::broadcast_shape("where", "or", a, b);
    if (!ops::broadcasts(mask, ab))
        ops::fail("where", "mask (" + to_string(mask) + ") does not broadcast with a (" + to_string(a) + ") and b (" +
                               to_string(b) + ") (each dimension must be equal or 1)");
    return {std::max(mask.rows, ab.rows), std::max(mask.cols, ab.cols)};
}

}  // namespace

template <class T>
Var<T> where(const Var<T>& mask, const Var<T>& a, const Var<T>& b) {
    const ops::HeldTape<T> held("where", {mask, a, b});
    Tape<T>& tape = held.tape();
    const Shape sm = shape_of(ops::checked_value(tape, mask)), sa = shape_of(ops::checked_value(tape, a)),
                sb = shape_of(ops::checked_value(tape, b));
    if (mask.requires_grad())
        ops::fail("where", "the mask (" + to_string(sm) + ") needs a gradient; a selector has none (record it with tape.constant)");
    return ops::record_library_op(tape, "where", {mask, a, b}, where_shape(sm, sa, sb), where_forward<T>, where_backward<T>);
}

// The shapes checked before the mask is recorded: a refused where() leaves no constant behind.
template <class T>
Var<T> where(const Matrix<T>& mask, const Var<T>& a, const Var<T>& b) {
    const ops::HeldTape<T> held("where", {a, b});
    Tape<T>& tape = held.tape();
    where_shape(shape_of(mask), shape_of(ops::checked_value(tape, a)), shape_of(ops::checked_value(tape, b)));
    return where(tape.constant(mask), a, b);
}

#define TAPEGRAD_INSTANTIATE(T)                                     \
    template Var<T> where<T>(const Var<T>&, const Var<T>&, const Var<T>&);               \
    template Var<T> where<T>(const Matrix<T>&, const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
