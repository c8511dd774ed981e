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
#include "nn/gradient_sync.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

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
    /// Throws TrainingDiverged (nn/non_finite.hpp) as soon as the loss or a parameter is NaN or Inf.
    EpochStats train_epoch(const DataLoader<T>& data, std::size_t epoch,
                           const std::function<void(const Progress&)>& progress = {});
    /// Loss and accuracy without recording gradients; TrainingDiverged if the loss is not finite.
    EpochStats evaluate(const DataLoader<T>& data);

    /// Data-parallel: this process trains on its share of every global batch (batch_size
    /// keeps its meaning), sync averages the gradients before each step, and the epoch's
    /// statistics (and evaluate()'s, each rank taking a share of the data) are summed over
    /// the ranks; progress reports this rank's share. nullptr: alone, as by default.
    void set_gradient_sync(GradientSync<T>* sync);

private:
    MLP<T>& net_;
    std::vector<autodiff::Parameter<T>*> parameters_;  ///< checked for NaN/Inf after every step
    Optimizer<T>& optimizer_;
    std::size_t batch_size_;
    std::uint32_t seed_;
    autodiff::Tape<T> tape_;  ///< reused every step: no allocation after the first
    GradientSync<T>* sync_ = nullptr;
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
