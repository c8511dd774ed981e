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

namespace detail {
// value_and_grad's: the tape's accumulation into parameters as its caller had it, put back at
// the end. The normal end uses the setter, which throws if another thread holds the tape then;
// the destructor (the call threw) cannot throw, and uses Tape::try_restore_accumulation.
template <class T>
class AccumulationRestore {
public:
    explicit AccumulationRestore(Tape<T>& tape) : tape_(tape), previous_(tape.accumulate_into_parameters()) {}
    void now() {
        tape_.set_accumulate_into_parameters(previous_);
        restored_ = true;
    }
    ~AccumulationRestore() {
        if (!restored_) tape_.try_restore_accumulation(previous_);
    }
    AccumulationRestore(const AccumulationRestore&) = delete;
    AccumulationRestore& operator=(const AccumulationRestore&) = delete;

private:
    Tape<T>& tape_;
    bool previous_;
    bool restored_ = false;
};
}  // namespace detail

/// f(tape) records a 1x1 loss on the tape it is given. The tape is reset first and can be
/// reused across calls, so repeated calls reuse its buffers.
template <class T, class F>
ValueAndGrad<T> value_and_grad(Tape<T>& tape, F&& f, const std::vector<Parameter<T>*>& parameters) {
    require_no_null_parameter("value_and_grad", parameters);  // before the tape is reset or f runs
    detail::AccumulationRestore<T> restore(tape);
    tape.reset();
    tape.set_accumulate_into_parameters(false);
    Var<T> loss = f(tape);
    tape.backward(loss);
    ValueAndGrad<T> result{loss.value()(0, 0), {}};
    result.grads.reserve(parameters.size());
    for (const Parameter<T>* p : parameters) result.grads.push_back(tape.gradient_of(*p));
    restore.now();
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
