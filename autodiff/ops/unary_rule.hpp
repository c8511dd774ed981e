#pragma once
// The shared shape of an elementwise function of one input: a Rule gives its value f and its
// derivative df, the derivative given the input x, the output y and the op's two constants
// s and s2 (whichever is cheaper). One tape entry; the constants live in node.scalar/scalar2,
// so the entry can be replayed. A rule whose input has a domain also gives `domain` (the
// rule in words) and `in_domain(x, s)`: the forward checks it, so a replay over new values
// is checked too.

#include <string>
#include <type_traits>

#include "autodiff/ops.hpp"
#include "autodiff/ops/checks.hpp"

namespace autodiff::ops {

template <class T, class Rule>
void unary_backward(Tape<T>& tape, Node<T>& y) {
    const T* x = tape.input(y, 0).data();
    const T* out = y.value.data();
    const T* g = y.grad.data();
    const T s = y.scalar, s2 = y.scalar2;
    tape.grad_of(y, 0).accumulate([&](std::size_t k) { return g[k] * Rule::df(x[k], out[k], s, s2); });
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

template <class Rule, class = void>
struct has_domain : std::false_type {};
template <class Rule>
struct has_domain<Rule, std::void_t<decltype(Rule::domain)>> : std::true_type {};

template <class T, class Rule>
void unary_forward(Tape<T>& tape, Node<T>& y) {
    if constexpr (has_domain<Rule>::value)
        require_domain(Rule::name, tape.input(y, 0), [&](T v) { return Rule::in_domain(v, y.scalar); }, Rule::domain);
    const T* __restrict in = tape.input(y, 0).data();
    T* __restrict out = y.value.data();
    const T s = y.scalar, s2 = y.scalar2;
    for (std::size_t k = 0, n = y.value.size(); k < n; ++k) out[k] = Rule::f(in[k], s, s2);
}

template <class T, class Rule>
Var<T> unary(const Var<T>& x, T s = T(0), T s2 = T(0)) {
    Tape<T>& tape = common_tape<T>(Rule::name, {x});
    return tape.record_op(Rule::name, {x}, shape_of(checked_value(tape, x)), unary_forward<T, Rule>, unary_backward<T, Rule>,
                          [&](Node<T>& y) {
                              y.scalar = s;
                              y.scalar2 = s2;
                          });
}


}  // namespace autodiff::ops
