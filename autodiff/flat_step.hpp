#pragma once
// An elementwise tape entry reduced to its raw buffers, for a Replay to run without the
// tape's bookkeeping.
//
// A recurrent model records tens of thousands of entries like sigmoid(x * w + b) on 14x1
// columns, where an entry's arithmetic is a few dozen instructions and its bookkeeping
// (resolving each input's value through its entry, deciding where its gradient goes,
// checking shapes) about as many again, reading five cache lines of each input's entry. A
// Replay knows every entry's buffers once it is built: it keeps for each elementwise entry a
// FlatStep (the buffers' addresses and the op's constants, in one array walked in order)
// and runs the op's flat kernels on it.
//
// The op's own forward and backward call the same kernels, and the engine is compiled
// without floating-point contraction (-ffp-contract=off), so a replayed step equals a
// recorded one bit for bit wherever the compiler inlined either.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "autodiff/tape.hpp"

namespace autodiff {

template <class T>
struct FlatStep;

template <class T>
struct FlatKernels {
    void (*forward)(const FlatStep<T>&);
    // overwrite[i]: the i-th input's gradient is written (its first contribution), else added to.
    void (*backward)(const FlatStep<T>&, const bool* overwrite);
};

// What a flat step's backward reads besides its gradient: bits of its inputs' values and its
// own. A Replay keeps a value no backward reads only until its last reader's forward has run
// (autodiff/replay.cpp), so an op declares these exactly; by default it reads everything.
namespace backward_reads {
constexpr std::uint8_t input0 = 1, input1 = 2, output = 4, everything = 7, nothing = 0;
}

// An op's flat kernels and what its backward reads, as the op registers them. An activation
// whose derivative needs no input also gives `affine`: f(x * w + b) as one step, which a
// Replay runs in place of a mul, an add and the activation recorded one after the other
// (sigmoid(x * w + b), each gate of a recurrent cell) when nothing else reads the two
// intermediates: one loop each way instead of three, with the same arithmetic in the same
// order, so the same numbers bit for bit (the engine is compiled with -ffp-contract=off, so
// that x * w + b is rounded twice in either).
template <class T>
struct FlatOp {
    FlatKernels<T> kernels{};
    std::uint8_t reads = backward_reads::everything;
    FlatKernels<T> affine{};
};

// Only entries whose inputs and output all have the output's shape as recorded (no broadcasting).
template <class T>
struct FlatStep {
    FlatStep() = default;
    // An entry's own step (Tape::flat_entry_step), its buffers and constant given at once: a
    // step made empty first was zeroed whole (96 bytes: GCC 12 does that with a microcoded
    // `rep stos` at any tuning) and then written again, in each swept elementwise entry.
    FlatStep(std::array<const T*, 2> inputs, T* value, const T* grad, std::array<T*, 2> input_grads, T scalar)
        : x{inputs[0], inputs[1]}, y(value), gy(grad), gx{input_grads[0], input_grads[1]}, s(scalar) {}
    const T* x[2] = {nullptr, nullptr};  // the inputs' values
    T* y = nullptr;                      // the entry's value
    const T* gy = nullptr;               // the entry's gradient
    T* gx[2] = {nullptr, nullptr};       // the inputs' gradients; null for an input that needs none
    FlatKernels<T> kernels{};
    T s{}, s2{};                         // the op's constants (Node::scalar, scalar2())
    std::uint32_t input[2] = {0, 0};     // the inputs' entries: their gradient flags
    std::uint32_t n = 0;                 // elements
    std::uint8_t arity = 0;
    std::uint8_t parameters = 0;         // bit k: input k is a parameter (its gradient accumulates)
    // Gradients an entry running its own code may have put in another buffer (a user's op
    // that assigns to a gradient instead of adding through GradientSink): read from the
    // entries at each sweep. Bit k: input k's (a computed entry that is not a flat step); bit
    // 2: the step's own (read by such an entry).
    std::uint8_t grads_from_entries = 0;
    // 1 for an affine step (FlatOp::affine), f(x * w + b) recorded as three entries: its
    // kernels read the mul's step, the one before it, whose entry does not run on its own, and
    // the add has no step: its b is this step's side 1 (x[1], gx[1], input[1]: arity 2, with
    // the bits of parameters and grads_from_entries), its own value and gradient this step's
    // input (side 0), as the activation reads them. A long tape's plan is then two steps per
    // gate, not three (the plan and the kept values outgrow the cache: bench/README.md). Its
    // backward's overwrite flags are two per step: the mul's, then its own (side 1: b's).
    std::uint8_t fused = 0;
};

// The mul x * w of an affine step (FlatStep::fused).
template <class T>
const FlatStep<T>& fused_mul(const FlatStep<T>& step) {
    return (&step)[-1];
}
template <class T>
FlatStep<T>& fused_mul(FlatStep<T>& step) {
    return (&step)[-1];
}

// An affine step as the three steps it stands for, each with its op's plain kernels (made by
// Tape::affine_parts): anomaly detection runs and checks them one by one, so that its message
// names the entry at fault. The mul's entry, the add's and the activation's are consecutive.
template <class T>
struct AffineParts {
    FlatStep<T> mul, add, own;
    int bias_side = 1;  // which of the add's inputs is b (the other is the mul's value)
};

// Sets a step's buffer address, writing only if it moved: a long tape's plan is far larger
// than the cache, and an unchanged line stays clean.
template <class P, class Q>
inline void repoint(P*& address, Q* now) {
    if (address != now) address = now;
}

// What a backward kernel does for one input: grad (=|+=) contribution(k), deciding once.
// __restrict: a gradient never aliases the values and the gradient a contribution reads.
template <class T, class F>
inline void accumulate_flat(T* __restrict grad, bool overwrite, std::size_t n, F&& contribution) {
    if (overwrite) {
        for (std::size_t k = 0; k < n; ++k) grad[k] = contribution(k);
    } else {
        for (std::size_t k = 0; k < n; ++k) grad[k] += contribution(k);
    }
}

// Runs kernel(step) over n elements in pieces of at most `piece` (FlatStep::n counts in 32
// bits): an op's own forward and backward take any size, where a Replay plans flat steps only
// for entries that fit. One compare for any size that fits, which runs the caller's step
// itself (setting its n): a copy of its ~100 bytes, twice per recorded and swept entry, cost
// more than the compare. Pieces run on a copy, so the caller's buffers stay where they were.
template <class T, class Kernel>
inline void run_flat(FlatStep<T>& step, std::size_t n, Kernel&& kernel, std::size_t piece = UINT32_MAX) {
    if (n <= piece) {
        step.n = static_cast<std::uint32_t>(n);
        return kernel(step);
    }
    FlatStep<T> part = step;
    for (; n > piece; n -= piece) {
        part.n = static_cast<std::uint32_t>(piece);
        kernel(part);
        auto advance = [piece](auto*& p) {
            if (p != nullptr) p += piece;
        };
        advance(part.x[0]), advance(part.x[1]), advance(part.y), advance(part.gy), advance(part.gx[0]), advance(part.gx[1]);
    }
    part.n = static_cast<std::uint32_t>(n);
    kernel(part);
}

namespace detail {
// Ops with flat kernels register them under their ForwardFn the first time they record
// (ops/unary_rule.hpp, ops/elementwise.cpp); a Replay looks an entry's ForwardFn up. Both
// thread-safe. Returns kernels with null functions for a ForwardFn nobody registered.
template <class T>
void register_flat_kernels(ForwardFn<T> op_forward, FlatOp<T> op);
template <class T>
FlatOp<T> flat_kernels_of(ForwardFn<T> op_forward);
}  // namespace detail

// What a Replay runs in place of its elementwise entries' forward and backward.
template <class T>
struct FlatPlan {
    std::vector<FlatStep<T>> steps;
    std::vector<std::int32_t> step_of;  // per entry: its step, or run_by_entry, or fused_away
    static constexpr std::int32_t run_by_entry = -1;  // the entry's own forward and backward
    static constexpr std::int32_t fused_away = -2;    // a part of the affine step after it
    // A step's input whose buffer is looked up on each run: side `side` of step `step` reads
    // tape entry `entry`.
    struct LookedUp {
        std::uint32_t step, side, entry;
    };
    // Inputs read in place (parameters, constant_refs) may live in another buffer on the next
    // run: their addresses are looked up as each forward reaches their steps, and the gradient
    // addresses of leaves as each sweep does (a parameter's grad may have been replaced).
    std::vector<LookedUp> in_place_values;
    std::vector<LookedUp> leaf_grads;
    // Values of entries that run their own code, read by flat steps: a user's forward may
    // assign a new matrix each run, so they are looked up after that forward runs. In
    // recording order of the producing entry.
    std::vector<LookedUp> computed_values;
    // The values and gradients only flat steps read, each in a slot of this arena for as long
    // as it is live (a value until its last reader's forward, a gradient from its first
    // contribution to its entry's backward), slots reused by entries that come later: a long
    // tape's intermediates take a few cache-resident slots instead of two buffers per entry.
    std::vector<T> arena;
};

// Tape::record_flat: what record() does for such an entry, in the same order, with the
// steps it needs only for an op of any shape left out. Inline: it is the whole recording
// of a recurrent model's entry. The inputs are checked, and their values looked up, once
// the tape is this thread's: another thread's reset() before must be refused, not leave an
// entry reading a stale index.
template <class T>
template <std::size_t Arity, class Kernel>
std::optional<Var<T>> Tape<T>::record_flat(const char* op, const std::array<const Var<T>*, Arity>& inputs,
                                           ForwardFn<T> forward, BackwardFn<T> backward, Kernel&& kernel, T s, T s2,
                                           bool library_code) {
    static_assert(Arity == 1 || Arity == 2, "a flat step has one or two inputs");
    ExclusiveUse one_thread(*this, op);
    std::array<FlatValue, Arity> values;
    bool any_input_needs_grad = false;
    for (std::size_t k = 0; k < Arity; ++k) {
        check(*inputs[k], op);
        const Node<T>& in = nodes_[inputs[k]->index_];
        values[k] = flat_value(in);
        any_input_needs_grad = any_input_needs_grad || (grad_enabled_ && in.requires_grad);
    }
    const Shape shape = values[0].shape;
    if (Arity == 2 && values[Arity - 1].shape != shape) return std::nullopt;  // broadcast: record_op's
    const std::size_t n = shape.size();
    // Inline (Node::in_line) only with gradients on: under NoGrad entries are released and
    // reused by size, which their matrices' capacity says. And only the library's ops, whose
    // forward, backward and flat kernels know where such a value lives.
    const bool in_line = library_code && grad_enabled_ && n <= Node<T>::inline_capacity;
    // The inputs' values are in their own entries (or read in place), which push() neither
    // moves nor reuses: a live handle holds each.
    const std::uint32_t index = push(op, n * sizeof(T));
    Node<T>& y = nodes_[index];
    y.arity = static_cast<std::uint8_t>(Arity);
    if (library_code) y.flags |= Node<T>::library_code;
    for (std::size_t k = 0; k < Arity; ++k) y.inputs[k] = inputs[k]->index_;
    y.requires_grad = any_input_needs_grad && backward != nullptr;
    y.backward = y.requires_grad ? backward : nullptr;
    y.forward = forward;
    y.scalar = s;
    try {
        y.set_scalar2(s2);  // may allocate the entry's extras
        if (in_line) {
            y.flags |= Node<T>::inline_small;
            y.small.rows = static_cast<std::uint32_t>(shape.rows);
            y.small.cols = static_cast<std::uint32_t>(shape.cols);
        } else {
            ensure_shape(y.value, shape);
        }
        // Pinned once the entry is recorded, so that one abandoned pins nothing (pinning a
        // parameter's NoGrad entry may allocate).
        if (grad_enabled_)
            for (std::size_t k = 0; k < Arity; ++k) pin(y.inputs[k]);
    } catch (...) {
        abandon(index);  // no memory: the tape is as it was before this call
        throw;
    }
    FlatStep<T> step({values[0].data, Arity == 2 ? values[Arity - 1].data : nullptr}, own_value(y), nullptr, {}, s);
    step.s2 = s2;
    run_flat(step, n, kernel);
    recorded_bytes_ += n * sizeof(T);
    if (detect_anomaly_) check_new_value(index);
    return handle(index);
}

template <class T>
template <std::size_t Arity>
inline std::optional<FlatStep<T>> Tape<T>::flat_entry_step(Node<T>& y, bool* overwrite) {
    const std::size_t n = own_size(y);
    std::array<Node<T>*, Arity> in;
    std::array<FlatValue, Arity> values;
    std::array<const T*, 2> x{};
    for (std::size_t k = 0; k < Arity; ++k) {
        in[k] = &nodes_[y.inputs[k]];
        values[k] = flat_value(*in[k]);
        if (values[k].shape.size() != n) return std::nullopt;
        x[k] = values[k].data;
    }
    std::array<T*, 2> gx{};  // null for an input that needs no gradient
    for (std::size_t k = 0; k < Arity; ++k) {
        if (!in[k]->requires_grad) continue;
        if (in[k]->in_line()) {  // an inline input's gradient is beside its value
            overwrite[k] = claim_gradient(y.inputs[k], false);
            gx[k] = in[k]->inline_grad();
            continue;
        }
        overwrite[k] = claim_gradient(y.inputs[k], in[k]->parameter != nullptr);
        Matrix<T>& g = grad_buffer(*in[k]);
        if (overwrite[k]) ensure_shape(g, values[k].shape);
        gx[k] = g.data();
    }
    return FlatStep<T>(x, own_value(y), own_grad(y), gx, y.scalar);
}

}  // namespace autodiff
