#pragma once
/// @file
/// One training step (forward, loss, backward), recorded once per batch size and replayed
/// after that (autodiff::Replay): the Trainer's inner loop.
///
/// @code
/// nn::ReplayedStep<float> step(model, nn::cross_entropy_loss<float>());
/// nn::Batch<float>& batch = step.batch(count);  // buffers for `count` examples
/// loader.gather(indices, count, batch.X, batch.labels);
/// float loss = step.run(count);                 // parameter gradients accumulate
/// @endcode
/// The model's input is recorded by Tape::constant_ref(batch.X) and read again in place on
/// every replay; class labels are rebound when the loss entry is a softmax_cross_entropy.
/// The last 4 batch sizes used are kept recorded: a fifth takes over the least recently used
/// one, whose batch() reference then serves the new size.
/// A step that cannot be replayed is recorded afresh every time instead (same results, only
/// slower): a loss not marked Loss::replayable, a model with buffers (state its forward
/// updates outside the tape, such as running statistics), a model that is not
/// Module::replayable (its forward reads input values outside the tape), or a tape holding an entry that
/// cannot run again (a custom op, a dropout). Gradients equal a fresh recording's bit for bit.
/// The model is judged when a step is recorded, and a step is recorded afresh whenever the
/// model's Module::version() moved since (a layer appended, a train()/eval() switch) or a
/// parameter it reads has another shape than when recorded.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "autodiff/replay.hpp"
#include "nn/gradient_sync.hpp"
#include "nn/loss.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T>
class ReplayedStep {
public:
    /// Steps of `model` with `loss` (both must outlive this); replay off records every step.
    ReplayedStep(Module<T>& model, const Loss<T>& loss, bool replay = true);

    /// The buffers for a batch of `count` examples; fill them, then call run(count).
    Batch<T>& batch(std::size_t count) { return recording(count).batch; }
    /// Forward, loss and backward on batch(count); returns the loss.
    T run(std::size_t count);
    /// The model's output of the last run(count).
    const autodiff::Matrix<T>& output(std::size_t count) { return recording(count).output.value(); }
    /// The tape of the last run(count) (for checks that walk its entries).
    const autodiff::Tape<T>& tape(std::size_t count) { return recording(count).tape; }
    /// Whether the next step of `count` examples will be replayed (after the first one).
    bool replaying(std::size_t count) { return current(recording(count)); }
    /// Off: every later step is recorded afresh.
    void set_replay(bool on);
    /// Data-parallel training: every step's tape (each batch size's, replayed or recorded)
    /// is attached to `sync`, so that gradients start their reduction while the backward
    /// sweep goes on. nullptr detaches them.
    void set_gradient_sync(GradientSync<T>* sync);

private:
    // One per batch size (the full batches and the last, shorter one): each keeps its tape,
    // so alternating between them reallocates nothing.
    struct Recording {
        std::size_t count = 0;
        Batch<T> batch;
        autodiff::Tape<T> tape;
        autodiff::Var<T> output, loss;
        std::unique_ptr<autodiff::Replay<T>> replay;
        std::uint64_t model_version = 0;  // Module::version() when the replay was recorded
        std::uint64_t last_used = 0;      // recording()'s clock: the least recent is reused
        bool relabel = false;             // the loss entry takes batch.labels
    };
    // Each recording keeps a tape of activations for its batch size: a run over ever new sizes
    // (growing data sets, data-parallel shares) would keep them all. A fifth size takes over
    // the least recently used recording, its tape and buffers.
    static constexpr std::size_t max_recordings = 4;
    Recording& recording(std::size_t count);
    // Replayed only while the model is as recorded: the same version (no layer added, no
    // train()/eval() switch), every parameter of the shape it was recorded with (one resized
    // by hand, consistently, trains as recording every step would: found by an attack).
    bool current(Recording& r) const {
        return r.replay && r.model_version == model_.version() && r.replay->inputs_readable();
    }
    bool model_replayable();

    Module<T>& model_;
    const Loss<T>& loss_;
    bool replay_;
    std::optional<std::uint64_t> judged_version_;  // model_replayable()'s cache
    bool model_replayable_ = false;
    HeldSync<T> sync_;
    std::deque<Recording> recordings_;  // a deque: batch(count) references stay valid as it grows
    std::uint64_t clock_ = 0;
};

}  // namespace nn
