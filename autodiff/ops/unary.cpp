// Elementwise functions of one input. Each rule is its value and its derivative, the
// derivative given the input x, the output y and the op's constant s (whichever is cheaper).

#include <cmath>

#include "autodiff/ops.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff {

namespace {

struct NegRule {
    static constexpr const char* name = "neg";
    template <class T> static T f(T x, T) { return -x; }
    template <class T> static T df(T, T, T) { return T(-1); }
};
struct ScaleRule {
    static constexpr const char* name = "scale";
    template <class T> static T f(T x, T s) { return s * x; }
    template <class T> static T df(T, T, T s) { return s; }
};
struct ExpRule {
    static constexpr const char* name = "exp";
    template <class T> static T f(T x, T) { return std::exp(x); }
    template <class T> static T df(T, T y, T) { return y; }
};
struct LogRule {
    static constexpr const char* name = "log";
    template <class T> static T f(T x, T) { return std::log(x); }
    template <class T> static T df(T x, T, T) { return T(1) / x; }
};
using ops::ReluRule;
using ops::SigmoidRule;
using ops::TanhRule;

template <class T, class Rule>
void unary_backward(Tape<T>& tape, Node<T>& y) {
    const T* x = tape.input(y, 0).data();
    const T* out = y.value.data();
    const T* g = y.grad.data();
    const T s = y.scalar;
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] * Rule::df(x[k], out[k], s); });
}

template <class T, class Rule>
void unary_forward(Tape<T>& tape, Node<T>& y) {
    const T* in = tape.input(y, 0).data();
    T* out = y.value.data();
    const T s = y.scalar;
    for (std::size_t k = 0; k < y.value.size(); ++k) out[k] = Rule::f(in[k], s);
}

template <class T, class Rule>
Var<T> unary(Var<T> x, T s = T(0)) {
    Tape<T>& tape = ops::common_tape(Rule::name, {x});
    return tape.record_op(Rule::name, {x}, x.shape(), unary_forward<T, Rule>, unary_backward<T, Rule>,
                          [&](Node<T>& y) { y.scalar = s; });
}

}  // namespace

template <class T> Var<T> neg(Var<T> x) { return unary<T, NegRule>(x); }
template <class T> Var<T> scale(Var<T> x, scalar_of<T> factor) { return unary<T, ScaleRule>(x, factor); }
template <class T> Var<T> exp(Var<T> x) { return unary<T, ExpRule>(x); }
template <class T> Var<T> relu(Var<T> x) { return unary<T, ReluRule>(x); }
template <class T> Var<T> sigmoid(Var<T> x) { return unary<T, SigmoidRule>(x); }
template <class T> Var<T> tanh(Var<T> x) { return unary<T, TanhRule>(x); }

namespace {

// Checked in the forward, so that a replay over new values checks them too.
template <class T>
void log_forward(Tape<T>& tape, Node<T>& y) {
    const Matrix<T>& v = tape.input(y, 0);
    const std::size_t cols = v.shape()[1];
    for (std::size_t k = 0; k < v.size(); ++k)
        if (!(v.data()[k] >= T(0)))  // also catches NaN
            ops::fail("log", "input (" + to_string(shape_of(v)) + ") holds " + std::to_string(v.data()[k]) +
                                 " at row " + std::to_string(k / cols) + ", column " + std::to_string(k % cols) +
                                 " (log needs x >= 0)");
    unary_forward<T, LogRule>(tape, y);
}

}  // namespace

template <class T>
Var<T> log(Var<T> x) {
    Tape<T>& tape = ops::common_tape("log", {x});
    return tape.record_op("log", {x}, x.shape(), log_forward<T>, unary_backward<T, LogRule>);
}

#define TAPEGRAD_INSTANTIATE(T)            \
    template Var<T> neg<T>(Var<T>);        \
    template Var<T> scale<T>(Var<T>, T);   \
    template Var<T> exp<T>(Var<T>);        \
    template Var<T> log<T>(Var<T>);        \
    template Var<T> relu<T>(Var<T>);       \
    template Var<T> sigmoid<T>(Var<T>);    \
    template Var<T> tanh<T>(Var<T>);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
