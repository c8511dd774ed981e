#pragma once
// Shape checks shared by the ops: one wording for one kind of mistake.

#include <atomic>
#include <charconv>
#include <cmath>
#include <string>

#include "autodiff/error.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace autodiff::ops {

[[noreturn]] inline void fail(const char* op, const std::string& what) { throw Error(std::string(op) + ": " + what); }
// A real number in a message, as its shortest text that reads back as the same value
// ("1e-07", "-3.5"): std::to_string's six decimals wrote a clamp's bounds 1e-7 and 1e-8 as
// "[0.000000, 0.000000]" and an eps of -1e-9 as "-0.000000".
template <class T>
std::string number_text(T value) {
    char text[64];
    const auto [end, error] = std::to_chars(text, text + sizeof(text), value);
    return error == std::errc() ? std::string(text, end) : std::to_string(value);
}
// An elementwise entry whose input no longer has the size it was recorded with (its value is
// kept inline, or its flat backward expects its input's size): refused by the op's forward
// and backward alike.
[[noreturn]] inline void fail_input_resized(const char* op) { fail(op, "an input changed size after the entry was recorded"); }

// Tape::record_op for the library's own ops: the entry is marked as running the library's
// code alone (Node::library_code), which a Replay trusts not to change a parameter between
// its forward's checks and its backward.
// T comes from the tape alone: the inputs are handles, converted as record_op converts them.
template <class T>
using NotDeduced = typename detail::non_deduced<T>::type;
template <class T, class Setup>
Var<T> record_library_op(Tape<T>& tape, const char* op, std::initializer_list<InputRef<NotDeduced<T>>> inputs, Shape shape,
                         ForwardFn<NotDeduced<T>> forward, BackwardFn<NotDeduced<T>> backward, Setup&& setup) {
    return tape.record_op(op, inputs, shape, forward, backward, [&](Node<T>& n) {
        n.flags |= Node<T>::library_code;
        setup(n);
    });
}
template <class T>
Var<T> record_library_op(Tape<T>& tape, const char* op, std::initializer_list<InputRef<NotDeduced<T>>> inputs, Shape shape,
                         ForwardFn<NotDeduced<T>> forward, BackwardFn<NotDeduced<T>> backward) {
    return record_library_op(tape, op, inputs, shape, forward, backward, [](Node<T>&) {});
}

// The tape every input lives on, held by this thread from the inputs' checks to the end of
// the op (this object's scope); throws if they live on different tapes, are stale, or another
// thread uses the tape. Every op that is not a flat one (Tape::record_flat holds the tape
// itself) starts with one: its shape checks read the inputs' entries, and another thread's
// reset() or recording between those reads and the record was a data race (the op was
// refused afterwards, once it took the tape, but had read entries the other thread was
// changing). The record the op then makes finds the tape held by its thread.
// Constructed as HeldTape<T> held(op, {a, b}): the handles are referred to, not copied.
template <class T>
class HeldTape {
public:
    HeldTape(const char* op, std::initializer_list<InputRef<T>> inputs)
        : tape_((*inputs.begin())->tape(op)),  // the registry: safe even if the tape is gone
          held_(tape_.hold_for_this_thread(op)) {
        try {
            for (const InputRef<T>& in : inputs) tape_.check(*in, op);
        } catch (...) {
            release();
            throw;
        }
    }
    ~HeldTape() { release(); }
    HeldTape(const HeldTape&) = delete;
    HeldTape& operator=(const HeldTape&) = delete;
    Tape<T>& tape() const { return tape_; }

    // Runs code the op does not control (a custom op's forward) with the tape still held
    // against other threads but no longer as this thread's: a call that code makes on the
    // tape is refused as one from inside a recording, as Tape::record refuses its forward's.
    template <class Code>
    auto run_foreign(Code&& code) const {
        struct GivenBack {  // the hold is this thread's again however code() ends
            std::atomic<const void*>& holder;
            const void* token;
            ~GivenBack() { holder.store(token, std::memory_order_relaxed); }
        } given_back{tape_.held_by_, tape_.held_by_.load(std::memory_order_relaxed)};
        tape_.held_by_.store(nullptr, std::memory_order_relaxed);
        return code();
    }

private:
    void release() noexcept {
        if (held_) tape_.end_hold();
        held_ = false;
    }
    Tape<T>& tape_;
    bool held_;
};

// An input's value once HeldTape has checked its handle (Var::value would ask again).
template <class T>
const Matrix<T>& checked_value(const Tape<T>& tape, const Var<T>& v) {
    return tape.value(v.index());
}

[[noreturn, gnu::cold, gnu::noinline]] inline void reject_broadcast(const char* op, const char* symbol, Shape a, Shape b) {
    fail(op, "(" + to_string(a) + ") " + symbol + " (" + to_string(b) +
                 "): shapes do not broadcast (each dimension must be equal or 1)");
}

// NumPy's rule in 2-D: per dimension equal, or one side is 1.
inline bool broadcasts(Shape a, Shape b) {
    auto fits = [](std::size_t x, std::size_t y) { return x == y || x == 1 || y == 1; };
    return fits(a.rows, b.rows) && fits(a.cols, b.cols);
}

inline Shape broadcast_shape(const char* op, const char* symbol, Shape a, Shape b) {
    if (!broadcasts(a, b)) reject_broadcast(op, symbol, a, b);
    return {a.rows == 1 ? b.rows : a.rows, a.cols == 1 ? b.cols : a.cols};
}

template <class T>
void require_same_shape(const char* op, const char* what_a, const Var<T>& a, const char* what_b, Shape sb) {
    if (a.shape() != sb)
        fail(op, std::string(what_a) + " is " + to_string(a.shape()) + " but " + what_b + " is " + to_string(sb) +
                     " (they must have the same shape)");
}

// One class index per example (column of the logits), each below the number of classes
// (rows). Also what a replay's new labels are checked against.
inline void require_labels(const char* op, Shape logits, const Labels& classes) {
    if (classes.size() != logits.cols)
        fail(op, "logits are " + to_string(logits) + " (classes x examples) but " + std::to_string(classes.size()) +
                     " class labels were given");
    for (std::size_t j = 0; j < classes.size(); ++j)
        if (classes[j] >= logits.rows)
            fail(op, "label " + std::to_string(classes[j]) + " of example " + std::to_string(j) +
                         " is out of range for " + std::to_string(logits.rows) + " classes");
}

// An op's scalar parameter (an exponent, a slope) must be a finite number.
template <class T>
void require_finite_scalar(const char* op, const char* what, T value) {
    if (!std::isfinite(value)) fail(op, std::string(what) + " is " + number_text(value) + " (it must be finite)");
}

inline int require_axis(const char* op, int axis) {
    if (axis != 0 && axis != 1) fail(op, "axis must be 0 (over rows) or 1 (over columns), got " + std::to_string(axis));
    return axis;
}

}  // namespace autodiff::ops

namespace autodiff::ops {

template <class T>
void require_finite(const char* op, const char* what, const Matrix<T>& m) {
    const std::string where = first_non_finite(m);
    if (!where.empty()) fail(op, std::string(what) + " (" + to_string(shape_of(m)) + ") holds " + where);
}

// A loss's target read through a handle (a constant_ref a Replay refills) is checked in the
// forward, so that a replay over new values checks it too. Checked once the loss is summed,
// and only when the sum is not finite: a target that is not finite always makes it so
// (inf - inf, 0 * inf, NaN), so the same targets are refused, and a finite step does not pay
// a pass over its target for the check.
template <class T>
void require_finite_target(const char* op, const char* what, T loss_sum, const Matrix<T>& target) {
    if (!std::isfinite(loss_sum)) require_finite(op, what, target);
}

}  // namespace autodiff::ops
