#pragma once
// The activations' rules, shared by their unary ops (ops/unary.cpp) and the fused
// linear-with-activation entry (ops/linear_algebra.cpp). Each gives its value f(x, s, s2) and
// its derivative df(x, y, s, s2) in the form of ops/unary_rule.hpp (these take no constants:
// they default to 0), reading the derivative from the output y alone, so the fused entry's
// backward needs no copy of its pre-activation.

#include <cmath>
#include <cstdint>

#include "autodiff/exp_kernel.hpp"
#include "autodiff/flat_step.hpp"

namespace autodiff::ops {

struct IdentityRule {
    static constexpr const char* name = "identity";
    static constexpr std::uint8_t derivative_reads = backward_reads::nothing;
    template <class T> static T f(T x, T = T(0), T = T(0)) { return x; }
    template <class T> static T df(T, T, T = T(0), T = T(0)) { return T(1); }
};
struct ReluRule {
    static constexpr const char* name = "relu";
    static constexpr std::uint8_t derivative_reads = backward_reads::output;
    // Written as selects, not branches, so the loops vectorise; a NaN input stays NaN.
    // y > 0 exactly where x > 0 (the notebook's Z > 0), -0 and NaN included.
    template <class T> static T f(T x, T = T(0), T = T(0)) { return x < T(0) ? T(0) : x; }
    template <class T> static T df(T, T y, T = T(0), T = T(0)) { return T(y > T(0)); }
};
struct SigmoidRule {
    static constexpr const char* name = "sigmoid";
    static constexpr std::uint8_t derivative_reads = backward_reads::output;
    // 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: never exp() of a large
    // positive number. Both from one exp(-|x|) by the kernels' exp (autodiff/exp_kernel.hpp,
    // within 1 ulp of std::exp), branch-free: a loop of sigmoids vectorises, where std::exp
    // was a call per element (a recurrent model's gates). -0 counts as x >= 0 (0.5 either way).
    template <class T> static T f(T x, T = T(0), T = T(0)) {
        const bool nonnegative = x >= T(0);
        const T e = kernels::exp_nonpositive_one(nonnegative ? -x : x);
        return (nonnegative ? T(1) : e) / (T(1) + e);
    }
    template <class T> static T df(T, T y, T = T(0), T = T(0)) { return y * (T(1) - y); }
};
struct TanhRule {
    static constexpr const char* name = "tanh";
    static constexpr std::uint8_t derivative_reads = backward_reads::output;
    // By the kernels' expm1 (autodiff/exp_kernel.hpp), branch-free: a loop of tanh vectorises,
    // where std::tanh was a call per element (a recurrent model's cell).
    template <class T> static T f(T x, T = T(0), T = T(0)) { return kernels::tanh_one(x); }
    template <class T> static T df(T, T y, T = T(0), T = T(0)) { return T(1) - y * y; }
};

}  // namespace autodiff::ops
