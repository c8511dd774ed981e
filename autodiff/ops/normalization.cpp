// layer_norm (each column over its features) and batch_norm (each row over the batch's
// examples) are one computation along different axes: normalise each group by its mean
// and biased variance, x_hat = (x - mean) / sqrt(var + eps), then optionally gain * x_hat + bias
// with gain and bias one per feature (row). Backward per group of `count` elements:
//   dx = rstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)),  dx_hat = g * gain,
//   dgain = sum over the row of g * x_hat,  dbias = sum over the row of g.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

// Node: params[0] = the axis normalised over (0 for layer_norm, 1 for batch_norm),
// scalar = eps, saved = x_hat, work[0] = each group's mean, work[1] = its variance.
struct Groups {
    std::size_t groups, count, group_stride, element_stride;
    bool over_rows;  // layer_norm: a group is a column, its elements run over the rows
    Groups(Shape s, std::uint32_t axis)
        : groups(axis == 0 ? s.cols : s.rows),
          count(axis == 0 ? s.rows : s.cols),
          group_stride(axis == 0 ? 1 : s.cols),
          element_stride(axis == 0 ? s.cols : 1),
          over_rows(axis == 0) {}
    std::size_t at(std::size_t g, std::size_t e) const { return g * group_stride + e * element_stride; }
    std::size_t row(std::size_t g, std::size_t e) const { return over_rows ? e : g; }  // which gain/bias
};

// Finite values whose mean or variance overflows (beyond about 1e154 in double, 1e19 in
// float, the square of a deviation does) would come out as NaN or 0 with no error; a
// non-finite input's NaN is the input's, as in every op.
template <class T>
void reject_overflow(const Node<T>& y, const Matrix<T>& x, const Groups& G, std::size_t group) {
    for (std::size_t e = 0; e < G.count; ++e)
        if (!std::isfinite(x.data()[G.at(group, e)])) return;
    T largest = T(0);
    for (std::size_t e = 0; e < G.count; ++e) largest = std::max(largest, std::abs(x.data()[G.at(group, e)]));
    ops::fail(y.op, std::string(G.over_rows ? "column " : "row ") + std::to_string(group) + " of x (" +
                        to_string(shape_of(x)) + ") holds values up to " + ops::number_text(largest) +
                        " in magnitude: its variance overflows; scale the input down");
}

template <class T>
void normalize_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& x = tape.input(y, 0);
    const Groups G(shape_of(x), y.params()[0]);
    ensure_shape(y.saved(), shape_of(x));
    const Shape stats = G.over_rows ? Shape{1, G.groups} : Shape{G.groups, 1};
    ensure_shape(y.work()[0], stats);
    ensure_shape(y.work()[1], stats);
    const T* in = x.data();
    T* xhat = y.saved().data();
    const T* gain = y.arity == 3 ? tape.input(y, 1).data() : nullptr;
    const T* bias = y.arity == 3 ? tape.input(y, 2).data() : nullptr;
    for (std::size_t g = 0; g < G.groups; ++g) {
        T mean = T(0), var = T(0);
        for (std::size_t e = 0; e < G.count; ++e) mean += in[G.at(g, e)];
        mean /= static_cast<T>(G.count);
        for (std::size_t e = 0; e < G.count; ++e) var += (in[G.at(g, e)] - mean) * (in[G.at(g, e)] - mean);
        var /= static_cast<T>(G.count);
        if (!std::isfinite(var)) reject_overflow(y, x, G, g);
        y.work()[0].data()[g] = mean;
        y.work()[1].data()[g] = var;
        const T rstd = T(1) / std::sqrt(var + y.scalar);
        for (std::size_t e = 0; e < G.count; ++e) {
            const std::size_t k = G.at(g, e);
            xhat[k] = (in[k] - mean) * rstd;
            y.value.data()[k] = gain ? gain[G.row(g, e)] * xhat[k] + bias[G.row(g, e)] : xhat[k];
        }
    }
}

template <class T>
void normalize_backward(Tape<T>& tape, Node<T>& y) {
    const Groups G(shape_of(y.value), y.params()[0]);
    const T* g = y.grad.data();
    const T* xhat = y.saved().data();
    const std::size_t cols = y.value.shape()[1];
    if (tape.needs_grad(y, 0)) {
        const T* gain = y.arity == 3 ? tape.input(y, 1).data() : nullptr;
        auto dxhat = [&](std::size_t g_, std::size_t e) { return g[G.at(g_, e)] * (gain ? gain[G.row(g_, e)] : T(1)); };
        auto sink = tape.grad_of(y, 0);
        T* dx = sink.grad.data();
        for (std::size_t grp = 0; grp < G.groups; ++grp) {
            T s1 = T(0), s2 = T(0);
            for (std::size_t e = 0; e < G.count; ++e) {
                s1 += dxhat(grp, e);
                s2 += dxhat(grp, e) * xhat[G.at(grp, e)];
            }
            const T rstd = T(1) / std::sqrt(y.work()[1].data()[grp] + y.scalar);
            const T n = static_cast<T>(G.count);
            for (std::size_t e = 0; e < G.count; ++e) {
                const std::size_t k = G.at(grp, e);
                const T v = rstd * (dxhat(grp, e) - s1 / n - xhat[k] * (s2 / n));
                dx[k] = sink.overwrite ? v : dx[k] + v;
            }
        }
    }
    // gain and bias: one per row, the sums over that row
    auto row_sum = [&](std::size_t i, bool times_xhat) {
        T total = T(0);
        for (std::size_t j = 0; j < cols; ++j) total += g[i * cols + j] * (times_xhat ? xhat[i * cols + j] : T(1));
        return total;
    };
    if (y.arity == 3 && tape.needs_grad(y, 1))
        tape.grad_of(y, 1).accumulate_2d([&](std::size_t i, std::size_t) { return row_sum(i, true); });
    if (y.arity == 3 && tape.needs_grad(y, 2))
        tape.grad_of(y, 2).accumulate_2d([&](std::size_t i, std::size_t) { return row_sum(i, false); });
}

template <class T>
Var<T> normalize(const char* op, std::uint32_t axis, const Var<T>& x, const Var<T>* gain, const Var<T>* bias, T eps) {
    const ops::HeldTape<T> held = gain ? ops::HeldTape<T>(op, {x, *gain, *bias}) : ops::HeldTape<T>(op, {x});
    Tape<T>& tape = held.tape();
    if (!(eps > T(0)) || !std::isfinite(eps)) ops::fail(op, "eps is " + ops::number_text(eps) + " (it must be finite and > 0)");
    const Shape s = x.shape();
    if (axis == 1 && s.cols < 2)
        ops::fail(op, "x is " + to_string(s) + " (features x examples): batch statistics need more than 1 example per feature");
    if (gain) {
        const Shape per_feature{s.rows, 1};
        ops::require_same_shape(op, "gain", *gain, "one per feature of x, which is", per_feature);
        ops::require_same_shape(op, "bias", *bias, "one per feature of x, which is", per_feature);
    }
    auto setup = [&](Node<T>& y) {
        y.params()[0] = axis;
        y.scalar = eps;
    };
    if (gain) return ops::record_library_op(tape, op, {x, *gain, *bias}, s, normalize_forward<T>, normalize_backward<T>, setup);
    return ops::record_library_op(tape, op, {x}, s, normalize_forward<T>, normalize_backward<T>, setup);
}

}  // namespace

template <class T> Var<T> layer_norm(const Var<T>& x, scalar_of<T> eps) { return normalize<T>("layer_norm", 0, x, nullptr, nullptr, eps); }
template <class T> Var<T> layer_norm(const Var<T>& x, const Var<T>& gain, const Var<T>& bias, scalar_of<T> eps) {
    return normalize<T>("layer_norm", 0, x, &gain, &bias, eps);
}
template <class T> Var<T> batch_norm(const Var<T>& x, scalar_of<T> eps) { return normalize<T>("batch_norm", 1, x, nullptr, nullptr, eps); }
template <class T> Var<T> batch_norm(const Var<T>& x, const Var<T>& gain, const Var<T>& bias, scalar_of<T> eps) {
    return normalize<T>("batch_norm", 1, x, &gain, &bias, eps);
}

template <class T>
BatchStatistics<T> batch_norm_statistics(const Var<T>& y) {
    const ops::HeldTape<T> held("batch_norm_statistics", {y});
    const Node<T>& n = held.tape().node(y);
    if (std::strcmp(n.op, "batch_norm") != 0)
        ops::fail("batch_norm_statistics", std::string("the handle was recorded by ") + n.op + ", not by batch_norm");
    return {n.work()[0], n.work()[1]};
}

#define TAPEGRAD_INSTANTIATE(T)                                         \
    template Var<T> layer_norm<T>(const Var<T>&, T);                           \
    template Var<T> layer_norm<T>(const Var<T>&, const Var<T>&, const Var<T>&, T);           \
    template Var<T> batch_norm<T>(const Var<T>&, T);                           \
    template Var<T> batch_norm<T>(const Var<T>&, const Var<T>&, const Var<T>&, T);           \
    template BatchStatistics<T> batch_norm_statistics<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
