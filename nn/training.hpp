#pragma once
/// @file
/// Minibatch training and evaluation of an MLP classifier with the mean softmax
/// cross-entropy. The order of examples in epoch e depends only on (seed, e), so a run
/// resumed from a checkpoint after epoch e continues exactly as if it had not stopped.

#include <cstdint>
#include <functional>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/data/dataset.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"
#include "nn/replayed_step.hpp"

namespace nn {

struct EpochStats {
    double loss = 0;      ///< mean over the examples
    double accuracy = 0;  ///< fraction classified right (in training: as the batches went by)
    double seconds = 0;
    std::size_t examples = 0;
};

struct Progress {
    std::size_t batch = 0, batches = 0;  ///< batches done, of how many
    std::size_t examples = 0;            ///< examples done
    double running_loss = 0;             ///< mean loss so far this epoch
    double seconds = 0;                  ///< since the epoch began
};

template <class T>
class Trainer {
public:
    Trainer(MLP<T>& net, Optimizer<T>& optimizer, std::size_t batch_size, std::uint32_t seed);

    /// One pass over data in a shuffled order; calls progress after every batch if given.
    EpochStats train_epoch(const DataLoader<T>& data, std::size_t epoch,
                           const std::function<void(const Progress&)>& progress = {});
    /// Loss and accuracy without recording gradients.
    EpochStats evaluate(const DataLoader<T>& data);
    /// On (the default): each batch size's step is recorded once and replayed after that
    /// (nn::ReplayedStep), with the same results; off: every step is recorded afresh.
    void set_replay(bool on) { step_.set_replay(on); }

private:
    MLP<T>& net_;
    Optimizer<T>& optimizer_;
    std::size_t batch_size_;
    std::uint32_t seed_;
    ReplayedStep<T> step_;    ///< the training step: no allocation after the first of each batch size
    autodiff::Tape<T> tape_;  ///< evaluation's, reused every batch
    autodiff::Matrix<T> X_;
    autodiff::Labels y_;
};

/// Examples whose argmax over the logits' column equals the label.
template <class T>
std::size_t count_correct(const autodiff::Matrix<T>& logits, const autodiff::Labels& labels);

/// Throws DataError naming the data set, the example (column) and the feature (row) of the
/// first NaN or Inf, and a label out of range.
template <class T>
void check_dataset(const Dataset<T>& data, const std::string& name);

}  // namespace nn
