#pragma once
/// @file
/// The functional entry point, as JAX's value_and_grad or Stan's gradient(): the loss and
/// d loss / d parameter for each parameter, leaving Parameter::grad untouched.

#include <vector>

#include "autodiff/tape.hpp"

namespace autodiff {

template <class T>
struct ValueAndGrad {
    T value;
    std::vector<Matrix<T>> grads;  ///< in the order of the parameters asked for
};

/// f(tape) records a 1x1 loss on the tape it is given. The tape is reset first and can be
/// reused across calls, so repeated calls reuse its buffers.
template <class T, class F>
ValueAndGrad<T> value_and_grad(Tape<T>& tape, F&& f, const std::vector<Parameter<T>*>& parameters) {
    struct RestoreAccumulation {
        Tape<T>& tape;
        bool previous;
        ~RestoreAccumulation() { tape.set_accumulate_into_parameters(previous); }
    } restore{tape, tape.accumulate_into_parameters()};
    tape.reset();
    tape.set_accumulate_into_parameters(false);
    Var<T> loss = f(tape);
    tape.backward(loss);
    ValueAndGrad<T> result{loss.value()(0, 0), {}};
    result.grads.reserve(parameters.size());
    for (const Parameter<T>* p : parameters) result.grads.push_back(tape.gradient_of(*p));
    return result;
}

/// The same on a tape of its own, made for this call: every buffer is allocated again each
/// time (a new tape's recording and sweep cost about twice a reused one's, bench/README.md).
/// In a loop, pass the loop's tape instead.
template <class T, class F>
ValueAndGrad<T> value_and_grad(F&& f, const std::vector<Parameter<T>*>& parameters) {
    Tape<T> tape;
    return value_and_grad(tape, std::forward<F>(f), parameters);
}

}  // namespace autodiff
