#pragma once
// The shared shape of an elementwise function of one input: a Rule gives its value f and its
// derivative df, the derivative given the input x, the output y and the op's two constants
// s and s2 (whichever is cheaper). One tape entry; the constants live in node.scalar/scalar2,
// so the entry can be replayed. A rule whose input has a domain also gives `domain` (the
// rule in words) and `in_domain(x, s)`: the forward checks it, so a replay over new values
// is checked too.

#include <optional>
#include <string>
#include <type_traits>

#include "autodiff/flat_step.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff::ops {

// The op's arithmetic, on raw buffers (autodiff/flat_step.hpp): the entry's forward and
// backward below call these, and so does a Replay, which runs them without the entry.
template <class T, class Rule>
void unary_flat_forward(const FlatStep<T>& step) {
    const T* __restrict in = step.x[0];
    T* __restrict out = step.y;
    const T s = step.s, s2 = step.s2;
    for (std::size_t k = 0; k < step.n; ++k) out[k] = Rule::f(in[k], s, s2);
}

template <class T, class Rule>
[[gnu::always_inline]] inline void unary_flat_backward(const FlatStep<T>& step, const bool* overwrite) {
    const T* x = step.x[0];
    const T* out = step.y;
    const T* g = step.gy;
    const T s = step.s, s2 = step.s2;
    accumulate_flat(step.gx[0], overwrite[0], step.n, [&](std::size_t k) { return g[k] * Rule::df(x[k], out[k], s, s2); });
}

// f(x * w + b) as one step (FlatOp::affine, FlatStep::fused): the mul's, the add's and this
// rule's arithmetic, in the order their own kernels do it. x * w + b is rounded twice, as in
// the separate steps (the engine is built with -ffp-contract=off); b + t and t + b are equal.
template <class T, class Rule>
void affine_flat_forward(const FlatStep<T>& step) {
    const FlatStep<T>& mul = fused_mul(step);
    const T* x = mul.x[0];
    const T* w = mul.x[1];
    const T* b = step.x[1];
    T* out = step.y;
    const T s = step.s, s2 = step.s2;
    for (std::size_t k = 0; k < step.n; ++k) out[k] = Rule::f(x[k] * w[k] + b[k], s, s2);
}

// The three backwards in turn, into the same buffers, but for the copy of the add's gradient
// into the mul's (the add's partial is 1): the mul's parts read the add's gradient instead.
// The rule's df reads no input (FlatOp::affine), so it is given the output for both.
// overwrite: the mul's two, then this step's (side 0 the add's gradient, side 1 b's).
template <class T, class Rule>
void affine_flat_backward(const FlatStep<T>& step, const bool* overwrite) {
    const FlatStep<T>& mul = fused_mul(step);
    const T* g = step.gy;
    const T* out = step.y;
    const T s = step.s, s2 = step.s2;
    T* ga = step.gx[0];  // the add's gradient: written here as the rule's backward would
    accumulate_flat(ga, true, step.n, [&](std::size_t k) { return g[k] * Rule::df(out[k], out[k], s, s2); });
    if (step.gx[1] != nullptr) accumulate_flat(step.gx[1], overwrite[3], step.n, [&](std::size_t k) { return ga[k] * T(1); });
    const T *x = mul.x[0], *w = mul.x[1];
    if (mul.gx[0] != nullptr) accumulate_flat(mul.gx[0], overwrite[0], step.n, [&](std::size_t k) { return ga[k] * w[k]; });
    if (mul.gx[1] != nullptr) accumulate_flat(mul.gx[1], overwrite[1], step.n, [&](std::size_t k) { return ga[k] * x[k]; });
}

// The entry's buffers as a FlatStep (its input's gradient left to the caller). Inline into
// the op's own forward and backward: out of line it cost a recurrent evaluation 1.3% of its
// instructions. (Inlined kernels give the same numbers: the engine does not contract.)
template <class T>
[[gnu::always_inline]] inline FlatStep<T> unary_step(Tape<T>& tape, Node<T>& y) {
    FlatStep<T> step({tape.input(y, 0).data(), nullptr}, Tape<T>::own_value(y), Tape<T>::own_grad(y), {}, y.scalar);
    step.s2 = y.scalar2();
    return step;
}

template <class T, class Rule>
void unary_backward(Tape<T>& tape, Node<T>& y) {
    bool overwrite[1] = {false};
    std::optional<FlatStep<T>> step = tape.template flat_entry_step<1>(y, overwrite);
    // The entry has its input's shape (the forward gives it that), which backward() keeps.
    if (!step) fail_input_resized(Rule::name);
    step->s2 = y.scalar2();
    run_flat(*step, Tape<T>::own_size(y), [&](const FlatStep<T>& piece) { unary_flat_backward<T, Rule>(piece, overwrite); });
}

// Throws, naming op and the first element of x where in_domain fails; `rule` says the domain.
template <class T, class InDomain>
void require_domain(const char* op, const Matrix<T>& x, InDomain&& in_domain, const char* rule) {
    const std::size_t cols = x.shape()[1];
    for (std::size_t k = 0; k < x.size(); ++k)
        if (!in_domain(x.data()[k]))
            fail(op, "input (" + to_string(shape_of(x)) + ") holds " + std::to_string(x.data()[k]) + " at row " +
                         std::to_string(k / cols) + ", column " + std::to_string(k % cols) + " (" + rule + ")");
}

// What a rule's df reads (autodiff/flat_step.hpp): Rule::derivative_reads where the rule says,
// else its input and its output.
template <class Rule, class = void>
struct derivative_reads_of : std::integral_constant<std::uint8_t, backward_reads::input0 | backward_reads::output> {};
template <class Rule>
struct derivative_reads_of<Rule, std::void_t<decltype(Rule::derivative_reads)>>
    : std::integral_constant<std::uint8_t, Rule::derivative_reads> {};

template <class Rule, class = void>
struct has_domain : std::false_type {};
template <class Rule>
struct has_domain<Rule, std::void_t<decltype(Rule::domain)>> : std::true_type {};

template <class T, class Rule>
void unary_forward(Tape<T>& tape, Node<T>& y) {
    if constexpr (has_domain<Rule>::value)
        require_domain(Rule::name, tape.input(y, 0), [&](T v) { return Rule::in_domain(v, y.scalar); }, Rule::domain);
    FlatStep<T> step = unary_step(tape, y);
    run_flat(step, Tape<T>::own_size(y), unary_flat_forward<T, Rule>);
}

template <class T, class Rule>
Var<T> unary(const Var<T>& x, T s = T(0), T s2 = T(0)) {
    // A rule with a domain checks it in its forward: a Replay runs that, not the flat kernels.
    if constexpr (!has_domain<Rule>::value) {
        constexpr std::uint8_t reads = derivative_reads_of<Rule>::value;
        constexpr bool affine = !(reads & backward_reads::input0);
        static const bool registered =
            (detail::register_flat_kernels<T>(
                 unary_forward<T, Rule>,
                 {{unary_flat_forward<T, Rule>, unary_flat_backward<T, Rule>},
                  reads,
                  affine ? FlatKernels<T>{affine_flat_forward<T, Rule>, affine_flat_backward<T, Rule>} : FlatKernels<T>{}}),
             true);
        (void)registered;
    }
    Tape<T>& tape = x.tape(Rule::name);  // the registry: safe even if the tape is gone
    if constexpr (!has_domain<Rule>::value) {
        return *tape.record_flat(Rule::name, std::array<const Var<T>*, 1>{&x}, unary_forward<T, Rule>,
                                 unary_backward<T, Rule>, [](const FlatStep<T>& step) { unary_flat_forward<T, Rule>(step); },
                                 s, s2, /*library_code=*/true);
    } else {
        const HeldTape<T> held(Rule::name, {x});
        return ops::record_library_op(tape, Rule::name, {x}, shape_of(checked_value(tape, x)), unary_forward<T, Rule>, unary_backward<T, Rule>,
                              [&](Node<T>& y) {
                                  y.scalar = s;
                                  y.set_scalar2(s2);
                              });
    }
}


}  // namespace autodiff::ops
