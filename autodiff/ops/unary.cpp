// Elementwise functions of one input, in the form of ops/unary_rule.hpp: each rule is its
// value and its derivative, the derivative given the input x, the output y and the op's
// constant s (whichever is cheaper).

#include <cmath>

#include "autodiff/exp_kernel.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "autodiff/ops/unary_rule.hpp"

namespace autodiff {

namespace {

struct NegRule {
    static constexpr const char* name = "neg";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T, T) { return -x; }
    template <class T> static T df(T, T, T, T) { return T(-1); }
};
struct ScaleRule {
    static constexpr const char* name = "scale";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T s, T) { return s * x; }
    template <class T> static T df(T, T, T s, T) { return s; }
};
// By the kernels' exp (autodiff/exp_kernel.hpp), branch-free: a loop of exps vectorises.
struct ExpRule {
    static constexpr const char* name = "exp";
    static constexpr std::uint8_t derivative_reads = backward_reads::output;
    template <class T> static T f(T x, T, T) { return kernels::exp_one(x); }
    template <class T> static T df(T, T y, T, T) { return y; }
};
struct LogRule {  // checked in the forward, so that a replay over new values is checked too
    static constexpr const char* name = "log";
    static constexpr const char* domain = "log needs x >= 0";
    template <class T> static bool in_domain(T x, T) { return x >= T(0); }  // NaN is refused
    template <class T> static T f(T x, T, T) { return kernels::log_one(x); }  // vectorised (exp_kernel.hpp)
    template <class T> static T df(T x, T, T, T) { return T(1) / x; }
};

}  // namespace

template <class T> Var<T> neg(const Var<T>& x) { return ops::unary<T, NegRule>(x); }
template <class T> Var<T> scale(const Var<T>& x, scalar_of<T> factor) {
    ops::require_finite_scalar("scale", "the factor", factor);  // NaN or Inf: every value and gradient NaN, silently
    return ops::unary<T, ScaleRule>(x, factor);
}
template <class T> Var<T> exp(const Var<T>& x) { return ops::unary<T, ExpRule>(x); }
template <class T> Var<T> log(const Var<T>& x) { return ops::unary<T, LogRule>(x); }
template <class T> Var<T> relu(const Var<T>& x) { return ops::unary<T, ops::ReluRule>(x); }
template <class T> Var<T> sigmoid(const Var<T>& x) { return ops::unary<T, ops::SigmoidRule>(x); }
template <class T> Var<T> tanh(const Var<T>& x) { return ops::unary<T, ops::TanhRule>(x); }

#define TAPEGRAD_INSTANTIATE(T)            \
    template Var<T> neg<T>(const Var<T>&);        \
    template Var<T> scale<T>(const Var<T>&, T);   \
    template Var<T> exp<T>(const Var<T>&);        \
    template Var<T> log<T>(const Var<T>&);        \
    template Var<T> relu<T>(const Var<T>&);       \
    template Var<T> sigmoid<T>(const Var<T>&);    \
    template Var<T> tanh<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
