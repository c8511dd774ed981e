// Elementwise functions of one input beyond the activations of unary.cpp, and a handle mixed
// with a scalar. Each Rule is its value and its derivative side by side; at a kink the
// derivative is the one PyTorch picks (stated per rule, checked against PyTorch's fixtures).

#include <algorithm>
#include <cmath>

#include "autodiff/exp_kernel.hpp"
#include "autodiff/ops/activation_rules.hpp"
#include "autodiff/ops/unary_rule.hpp"

namespace autodiff {

namespace {

// ---- a handle and a scalar s ----
struct AddScalarRule {
    static constexpr const char* name = "add_scalar";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T s, T) { return x + s; }
    template <class T> static T df(T, T, T, T) { return T(1); }
};
struct RsubScalarRule {  // s - x
    static constexpr const char* name = "rsub_scalar";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T s, T) { return s - x; }
    template <class T> static T df(T, T, T, T) { return T(-1); }
};
struct DivScalarRule {  // x / s
    static constexpr const char* name = "div_scalar";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T s, T) { return x / s; }
    template <class T> static T df(T, T, T s, T) { return T(1) / s; }
};
struct RdivScalarRule {  // s / x
    static constexpr const char* name = "rdiv_scalar";
    static constexpr const char* domain = "the divisor must not be 0";
    template <class T> static bool in_domain(T x, T) { return x != T(0); }
    template <class T> static T f(T x, T s, T) { return s / x; }
    template <class T> static T df(T x, T y, T, T) { return -y / x; }
};

// ---- functions of x ----
struct SquareRule {
    static constexpr const char* name = "square";
    static constexpr std::uint8_t derivative_reads = backward_reads::input0;
    template <class T> static T f(T x, T, T) { return x * x; }
    template <class T> static T df(T x, T, T, T) { return T(2) * x; }
};
struct SqrtRule {  // d/dx at 0 is +inf, as in PyTorch
    static constexpr const char* name = "sqrt";
    static constexpr const char* domain = "sqrt needs x >= 0";
    template <class T> static bool in_domain(T x, T) { return x >= T(0); }  // NaN is refused
    template <class T> static T f(T x, T, T) { return std::sqrt(x); }
    template <class T> static T df(T, T y, T, T) { return T(0.5) / y; }
};
struct PowRule {  // x^s; PyTorch's derivative s x^(s-1), and 0 for s = 0 (even at x = 0)
    static constexpr const char* name = "pow";
    static constexpr const char* domain = "a non-integer exponent needs x >= 0, a negative one x != 0";
    template <class T> static bool in_domain(T x, T s) { return (s == std::floor(s) || x >= T(0)) && (s >= T(0) || x != T(0)); }
    template <class T> static T f(T x, T s, T) { return std::pow(x, s); }
    template <class T> static T df(T x, T, T s, T) { return s == T(0) ? T(0) : s * std::pow(x, s - T(1)); }
};
struct AbsRule {  // derivative sign(x): 0 at 0
    static constexpr const char* name = "abs";
    template <class T> static T f(T x, T, T) { return std::abs(x); }
    template <class T> static T df(T x, T, T, T) { return T(x > T(0)) - T(x < T(0)); }
};
struct ClampRule {  // [s, s2]; derivative 1 on the closed interval, bounds included (PyTorch)
    static constexpr const char* name = "clamp";
    template <class T> static T f(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }
    template <class T> static T df(T x, T, T lo, T hi) { return T(x >= lo && x <= hi); }
};
struct Log1pRule {
    static constexpr const char* name = "log1p";
    static constexpr const char* domain = "log1p needs x >= -1";
    template <class T> static bool in_domain(T x, T) { return x >= T(-1); }
    template <class T> static T f(T x, T, T) { return std::log1p(x); }
    template <class T> static T df(T x, T, T, T) { return T(1) / (T(1) + x); }
};
struct LeakyReluRule {  // slope s below 0; at 0 the derivative is s (PyTorch: x > 0 ? 1 : s)
    static constexpr const char* name = "leaky_relu";
    template <class T> static T f(T x, T s, T) { return x > T(0) ? x : s * x; }
    template <class T> static T df(T x, T, T s, T) { return x > T(0) ? T(1) : s; }
};
// alpha s; at 0 the derivative is alpha (PyTorch: x <= 0 ? alpha e^x : 1). expm1 and exp by
// the kernels' (autodiff/exp_kernel.hpp), of min(x, 0), as selects: a loop of elus vectorises,
// where std::expm1 and std::exp were a call per element. Below -1022 ln 2 the derivative's
// e^x is 0 instead of subnormal; the value is -alpha there either way.
struct EluRule {
    static constexpr const char* name = "elu";
    template <class T> static T nonpositive(T x) { return x > T(0) ? T(0) : x; }  // NaN stays NaN
    template <class T> static T f(T x, T s, T) {
        return x > T(0) ? x : s * kernels::expm1_nonpositive_one(nonpositive(x));
    }
    template <class T> static T df(T x, T, T s, T) {
        return x > T(0) ? T(1) : s * kernels::exp_nonpositive_one(nonpositive(x));
    }
};
// The exact form x Phi(x), Phi the normal CDF (PyTorch's default). Phi through erfc, which
// keeps its relative accuracy in the left tail: 1 + erf(x / sqrt 2) cancels to 0 below x = -8
// (gelu(-10) came out -0 instead of -7.6e-23).
struct GeluRule {
    static constexpr const char* name = "gelu";
    template <class T> static T cdf(T x) { return T(0.5) * std::erfc(-x * T(M_SQRT1_2)); }
    template <class T> static T f(T x, T, T) { return x * cdf(x); }
    template <class T> static T df(T x, T, T, T) {
        const T pdf = std::exp(T(-0.5) * x * x) * T(M_2_SQRTPI * M_SQRT1_2 * 0.5);
        return cdf(x) + x * pdf;
    }
};
// log(1 + e^(s x)) / s, and x itself where s x > s2 (PyTorch's threshold). Below the
// threshold in the form that cannot overflow, max(s x, 0) + log1p(e^-|s x|): e^(s x) itself
// is inf past s x = 709 (double), which a threshold above that (or inf) let through.
// By the kernels' exp and log (autodiff/exp_kernel.hpp) and the sigmoid's, as selects: a loop of
// softplus vectorises, where std::exp and std::log1p were two calls per element.
struct SoftplusRule {
    static constexpr const char* name = "softplus";
    template <class T> static T f(T x, T beta, T threshold) {
        const T z = x * beta;
        return z > threshold ? x : (std::max(z, T(0)) + kernels::log1p_exp_nonpositive_one(-std::abs(z))) / beta;
    }
    template <class T> static T df(T x, T, T beta, T threshold) {
        const T z = x * beta;
        return z > threshold ? T(1) : ops::SigmoidRule::f(z);
    }
};
// x sigmoid(x), by the sigmoid's vectorised kernel (ops/activation_rules.hpp), where
// x / (1 + e^-x) was a call of std::exp per element. -0 below x = -1022 ln 2, where that
// sigmoid is flushed to 0 (PyTorch's x / (1 + e^-x) gives -0 below x = -709.8).
struct SiluRule {
    static constexpr const char* name = "silu";
    template <class T> static T f(T x, T, T) { return x * ops::SigmoidRule::f(x); }
    template <class T> static T df(T x, T, T, T) {
        const T sig = ops::SigmoidRule::f(x);
        return sig * (T(1) + x * (T(1) - sig));
    }
};

}  // namespace

// A NaN or infinite constant is refused, as pow's exponent and the activations' are: it made
// every value and gradient NaN without a word (found by an attack).
template <class T> Var<T> add_scalar(const Var<T>& x, scalar_of<T> c) {
    ops::require_finite_scalar("add_scalar", "the scalar", c);
    return ops::unary<T, AddScalarRule>(x, c);
}
template <class T> Var<T> rsub_scalar(scalar_of<T> c, const Var<T>& x) {
    ops::require_finite_scalar("rsub_scalar", "the scalar", c);
    return ops::unary<T, RsubScalarRule>(x, c);
}

template <class T>
Var<T> div_scalar(const Var<T>& x, scalar_of<T> c) {
    ops::require_finite_scalar("div_scalar", "the divisor", c);
    if (c == T(0)) ops::fail("div_scalar", "dividing " + to_string(x.shape()) + " by the scalar 0");
    return ops::unary<T, DivScalarRule>(x, c);
}

template <class T> Var<T> rdiv_scalar(scalar_of<T> c, const Var<T>& x) {
    ops::require_finite_scalar("rdiv_scalar", "the scalar", c);
    return ops::unary<T, RdivScalarRule>(x, c);
}

template <class T> Var<T> square(const Var<T>& x) { return ops::unary<T, SquareRule>(x); }
template <class T> Var<T> abs(const Var<T>& x) { return ops::unary<T, AbsRule>(x); }
template <class T> Var<T> gelu(const Var<T>& x) { return ops::unary<T, GeluRule>(x); }
template <class T> Var<T> silu(const Var<T>& x) { return ops::unary<T, SiluRule>(x); }

template <class T> Var<T> sqrt(const Var<T>& x) { return ops::unary<T, SqrtRule>(x); }
template <class T> Var<T> log1p(const Var<T>& x) { return ops::unary<T, Log1pRule>(x); }

template <class T>
Var<T> pow(const Var<T>& x, scalar_of<T> exponent) {
    ops::require_finite_scalar("pow", "the exponent", exponent);
    return ops::unary<T, PowRule>(x, exponent);
}

template <class T>
Var<T> clamp(const Var<T>& x, scalar_of<T> lo, scalar_of<T> hi) {
    if (!(lo <= hi))
        ops::fail("clamp", "the bounds are [" + ops::number_text(lo) + ", " + ops::number_text(hi) + "] (lo must be <= hi)");
    return ops::unary<T, ClampRule>(x, lo, hi);
}

template <class T>
Var<T> leaky_relu(const Var<T>& x, scalar_of<T> negative_slope) {
    ops::require_finite_scalar("leaky_relu", "negative_slope", negative_slope);
    return ops::unary<T, LeakyReluRule>(x, negative_slope);
}

template <class T>
Var<T> elu(const Var<T>& x, scalar_of<T> alpha) {
    ops::require_finite_scalar("elu", "alpha", alpha);
    return ops::unary<T, EluRule>(x, alpha);
}

template <class T>
Var<T> softplus(const Var<T>& x, scalar_of<T> beta, scalar_of<T> threshold) {
    if (!(beta > T(0)) || !std::isfinite(beta) || std::isnan(threshold))
        ops::fail("softplus", "beta is " + ops::number_text(beta) + " and threshold " + ops::number_text(threshold) +
                                  " (beta must be finite and > 0, threshold a number)");
    return ops::unary<T, SoftplusRule>(x, beta, threshold);
}

#define TAPEGRAD_INSTANTIATE(T)                        \
    template Var<T> add_scalar<T>(const Var<T>&, T);          \
    template Var<T> rsub_scalar<T>(T, const Var<T>&);         \
    template Var<T> div_scalar<T>(const Var<T>&, T);          \
    template Var<T> rdiv_scalar<T>(T, const Var<T>&);         \
    template Var<T> square<T>(const Var<T>&);                 \
    template Var<T> sqrt<T>(const Var<T>&);                   \
    template Var<T> pow<T>(const Var<T>&, T);                 \
    template Var<T> abs<T>(const Var<T>&);                    \
    template Var<T> clamp<T>(const Var<T>&, T, T);            \
    template Var<T> log1p<T>(const Var<T>&);                  \
    template Var<T> leaky_relu<T>(const Var<T>&, T);          \
    template Var<T> elu<T>(const Var<T>&, T);                 \
    template Var<T> gelu<T>(const Var<T>&);                   \
    template Var<T> softplus<T>(const Var<T>&, T, T);         \
    template Var<T> silu<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace autodiff
