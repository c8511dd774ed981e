#pragma once
/// @file
/// One classifier training step (forward, mean softmax cross-entropy, backward), recorded
/// once per batch size and replayed after that (autodiff::Replay): the Trainer's inner loop.
///
/// @code
/// nn::ReplayedStep<float> step(model);
/// auto& batch = step.batch(count);              // buffers for `count` examples
/// loader.gather(indices, count, batch.X, batch.y);
/// float loss = step.run(count);                 // parameter gradients accumulate
/// @endcode
/// A model whose step cannot be replayed (a custom op, a dropout) or that keeps buffers (state
/// its forward updates outside the tape, such as running statistics) is recorded afresh every
/// step instead: the results are the same, only slower. Gradients equal a fresh recording's
/// bit for bit either way.

#include <deque>
#include <memory>

#include "autodiff/autodiff.hpp"
#include "nn/module.hpp"

namespace nn {

template <class T>
class ReplayedStep {
public:
    /// A batch's buffers: X is features x count, y holds count class labels.
    struct Batch {
        autodiff::Matrix<T> X;
        autodiff::Labels y;
    };

    /// Steps of `model` (which must outlive this); replay off records every step afresh.
    explicit ReplayedStep(Module<T>& model, bool replay = true);

    /// The buffers for a batch of `count` examples; fill them, then call run(count).
    Batch& batch(std::size_t count) { return recording(count).batch; }
    /// Forward and backward on batch(count); returns the mean loss.
    T run(std::size_t count);
    /// The logits (classes x count) of the last run(count).
    const autodiff::Matrix<T>& logits(std::size_t count) { return recording(count).logits.value(); }
    /// Whether steps of `count` examples are being replayed (after the first one).
    bool replaying(std::size_t count) { return recording(count).replay != nullptr; }
    /// Off: every later step is recorded afresh.
    void set_replay(bool on);

private:
    // One per batch size (the full batches and the last, shorter one): each keeps its tape,
    // so alternating between them reallocates nothing.
    struct Recording {
        std::size_t count = 0;
        Batch batch;
        autodiff::Tape<T> tape;
        autodiff::Var<T> logits, loss;
        std::unique_ptr<autodiff::Replay<T>> replay;
    };
    Recording& recording(std::size_t count);

    Module<T>& model_;
    bool replay_;
    std::deque<Recording> recordings_;
};

}  // namespace nn
