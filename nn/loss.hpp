#pragma once
/// @file
/// What a training step reads: a minibatch, and the loss over the model's output and it.

#include <functional>

#include "autodiff/tape.hpp"

namespace nn {

/// A minibatch: inputs (features x count), and the targets the loss reads: class labels, or
/// a matrix (outputs x count) for regression.
template <class T>
struct Batch {
    autodiff::Matrix<T> X;
    autodiff::Labels labels;
    autodiff::Matrix<T> targets;
};

/// A loss over the model's output and the batch. `classification` makes the trainer count
/// the examples whose argmax over the output's column equals the label.
template <class T>
struct Loss {
    std::function<autodiff::Var<T>(autodiff::Var<T> output, const Batch<T>& batch)> compute;
    bool classification = true;
    /// The loss reads the batch only through class labels (a softmax_cross_entropy that is
    /// the loss entry itself) or Tape::constant_ref(batch.targets), so that the Trainer may
    /// record its step once and replay it (nn::ReplayedStep). Off: every step is recorded.
    /// A step that turns out to read the batch elsewhere (labels in another entry, a matrix
    /// copied by Tape::constant or Tape::leaf, or by a softmax_cross_entropy given a Matrix) or
    /// whose loss entry holds labels other than batch.labels when recorded (classes remapped)
    /// is recorded every step too, not replayed stale. A remapping that leaves the first batch's
    /// labels as they are cannot be told apart: give such a loss replayable = false.
    bool replayable = false;
};

}  // namespace nn
