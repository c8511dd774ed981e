#pragma once
/// @file
/// @brief Record once, run again: the forward and backward of a recorded step over new
/// input data, without recording, checking shapes or resolving handles again (as CUDA
/// graphs, jax.jit or CppAD's recorded functions do).
///
/// @code
/// autodiff::Matrix<float> X;  autodiff::Labels y;         // refilled in place every step
/// loader.gather(batch, count, X, y);
/// autodiff::Tape<float> tape;
/// auto loss = autodiff::softmax_cross_entropy(net(tape.constant_ref(X)), y);
/// tape.backward(loss);                                      // step 1, recorded
/// autodiff::Replay<float> step(tape, loss);
/// for (...) {
///     opt.step();  opt.zero_grad();
///     loader.gather(next, count, X, y);                     // same shapes, new data
///     step.set_labels(loss, y);
///     step.run();                                           // forward + backward again
/// }
/// @endcode
/// What is read again on every run: matrices recorded by Tape::constant_ref and parameters
/// (both read in place), and the labels or targets given to set_labels / set_targets. A
/// Tape::constant keeps the copy it took when recorded. The gradients of a run equal those
/// of a fresh recording of the same step bit for bit.
///
/// Elementwise entries whose inputs have their shape (the bulk of a recurrent model's tape)
/// run as flat steps: the op's arithmetic straight on the buffers, found when the Replay is
/// built (autodiff/flat_step.hpp), with the same kernels the ops record with. The values and
/// gradients only flat steps read live in the Replay's own arena, in slots reused once dead,
/// and `sigmoid(x * w + b)`-shaped runs of entries become one step (see the constructor for
/// what that means for reading intermediates).
///
/// Only the tape's entries run again: code that ran outside the tape while the step was
/// recorded (a module updating a running statistic, say) does not.
///
/// Refused with autodiff::Error: a tape holding an entry that cannot run again (one
/// recorded by Tape::record with a lambda, as custom ops made with apply() are, a
/// dropout, which must draw a new mask each step, or an entry computed under NoGrad that
/// the step reads, or that is the output or a handle to keep, whose inputs were not kept), a run
/// after the tape was reset or recorded on, and an input whose shape changed since it was
/// recorded (the message names it, with both shapes). Entries recorded under NoGrad that
/// the step does not read are left out. A Replay uses its tape as the tape's own calls do:
/// from one thread at a time, another thread's call throwing before it changes anything.

#include <cstdint>
#include <utility>
#include <vector>

#include "autodiff/flat_step.hpp"
#include "autodiff/tape.hpp"

namespace autodiff {

/// A recorded step, ready to run again. Holds a reference to the tape: used after the tape was
/// reset or destroyed it throws, and destroyed after the tape it touches nothing.
template <class T = double>
class Replay {
public:
    /// Takes `tape` as recorded so far; `output` is what run() differentiates (1x1).
    /// Intermediate values and gradients that only the replay's own elementwise steps read
    /// live in memory the Replay shares between entries (a long tape's intermediates then
    /// stay in the cache); reading one through its handle (Var::value, Var::grad) is refused,
    /// and so is recording on the tape until it is reset (PyTorch keeps no intermediate
    /// gradient either unless asked). The handles in `keep` stay readable after each run.
    /// Throws autodiff::Error if an entry cannot run again, `output` (or a handle in `keep`)
    /// is not a live handle of `tape`, or another Replay of `tape` that keeps values in its
    /// own memory is alive, or this one would keep some in its own memory while another
    /// Replay of `tape` is alive (that one's runs would leave them stale).
    Replay(Tape<T>& tape, const Var<T>& output, const std::vector<Var<T>>& keep = {});
    /// Another Replay of the tape can be made once this one is gone (it holds the tape's
    /// intermediates in its own memory); the tape's own backward() waits for reset().
    ~Replay();
    Replay(const Replay&) = delete;  ///< its steps point into its own arena
    Replay& operator=(const Replay&) = delete;

    /// The forward of every recorded entry again, in recording order, over the current
    /// values of the constant_refs and parameters.
    void forward();
    /// forward(), then the backward sweep from the output (parameter gradients accumulate
    /// into Parameter::grad, as Tape::backward does). Returns the output's new value.
    T run();

    /// New class labels for a softmax_cross_entropy entry recorded with labels, checked as
    /// when recorded (one per example, each below the number of classes).
    void set_labels(const Var<T>& loss, const Labels& classes);
    /// New one-hot (or soft) targets for a softmax_cross_entropy entry recorded with a target matrix.
    void set_targets(const Var<T>& loss, const Matrix<T>& Y);

    /// Whether run() would find every parameter and constant_ref it reads in place alive and
    /// of the shape it was recorded with (what it checks first, and refuses otherwise), asked
    /// without throwing: nn::ReplayedStep records afresh when not (a layer resized by hand).
    bool inputs_readable();

    /// The output handle given to the constructor (its value is the last run's).
    Var<T> output() const { return output_; }

private:
    void check_unchanged(const char* op) const;
    void plan_flat_steps(const std::vector<Var<T>>& keep);
    bool flat_shapes(const Node<T>& n) const;
    void plan_flat_step(std::uint32_t index, FlatKernels<T> kernels, const std::vector<bool>& read_by_own_code);
    void plan_memory(const std::vector<FlatOp<T>>& ops, const std::vector<bool>& value_kept,
                     const std::vector<bool>& grad_kept);
    std::vector<std::uint32_t> fuse_affine_steps(const std::vector<FlatOp<T>>& ops, const std::vector<bool>& value_pooled,
                                                 const std::vector<bool>& grad_pooled, std::vector<std::uint32_t>& value_end,
                                                 std::vector<std::uint32_t>& grad_end);
    void compact_affine_steps(const std::vector<std::uint32_t>& adds) noexcept;
    [[noreturn]] void reject_moved_buffer(std::uint32_t index, const char* what) const;
    void forward_locked();  // forward() once the tape is held
    void settle_ownership();
    void forward_parts_checked(const FlatStep<T>& step, std::uint32_t index);
    Node<T>& loss_entry(const Var<T>& loss, bool with_labels);

    bool tape_alive() const;  // the tape exists and holds the recording this was made of (the registry)
    void require_tape(const char* op) const;

    Tape<T>& tape_;
    Var<T> output_;
    std::uint32_t slot_;  ///< the tape's registry slot: whether it lives, asked without touching it
    std::uint64_t generation_;
    std::size_t size_;
    std::vector<std::uint32_t> computed_;  ///< entries whose forward computes something (not leaves)
    std::vector<std::uint32_t> in_place_;  ///< parameters and constant_refs: their shapes are re-checked
    std::vector<std::uint32_t> leaves_;    ///< the other leaves (copied constants): only their gradient flags cleared
    FlatPlan<T> plan_;                     ///< the elementwise entries, run on their buffers (autodiff/flat_step.hpp)
    std::vector<std::pair<std::uint32_t, std::uint8_t>> owned_;  ///< entries whose value/gradient live in plan_.arena (Node::replay_owned)
    bool ownership_settled_ = false;       ///< the first forward has run: owned_ is all the tape's entries say
    /// An entry runs code the library did not write (a user's record_op): after its forward the
    /// parameters are checked again, and so are they before the backward.
    bool foreign_code_ = false;
    /// Those entries, in recording order, each with its value's shape as recorded: a run
    /// refuses a forward that made another (the entries reading it trust the shape).
    std::vector<std::pair<std::uint32_t, Shape>> foreign_shapes_;
};

}  // namespace autodiff
