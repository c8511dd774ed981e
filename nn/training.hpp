#pragma once
/// @file
/// Minibatch training and evaluation of any module with any loss: classification (softmax
/// cross-entropy, accuracy counted) or regression (loss only). The order of examples in
/// epoch e depends only on (seed, e), and a learning-rate schedule is a function of the step,
/// so a run resumed from a checkpoint after epoch e continues exactly as if it had not stopped.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/data/data_loader.hpp"
#include "nn/data/dataset.hpp"
#include "nn/gradient_sync.hpp"
#include "nn/listed_parameters.hpp"
#include "nn/module.hpp"
#include "nn/optimizers.hpp"
#include "nn/loss.hpp"
#include "nn/replayed_step.hpp"
#include "nn/schedule.hpp"

namespace nn {

struct EpochStats {
    double loss = 0;      ///< mean over the examples
    double accuracy = 0;  ///< fraction classified right (in training: as the batches went by); 0 for regression
    double seconds = 0;
    std::size_t examples = 0;
};

/// One line of the history fit() keeps: epoch counts from 1.
struct EpochMetrics {
    std::size_t epoch = 0;
    EpochStats train, test;
    double learning_rate = 0;  ///< at the epoch's last step
};

struct Progress {
    std::size_t batch = 0, batches = 0;  ///< batches done, of how many
    std::size_t examples = 0;            ///< examples done
    double running_loss = 0;             ///< mean loss so far this epoch
    double seconds = 0;                  ///< since the epoch began
};

template <class T>
Loss<T> cross_entropy_loss();  ///< softmax_cross_entropy(output, labels), mean over examples
template <class T>
Loss<T> mse_loss();  ///< mse(output, targets): the mean of squared differences

/// Regression pairs: example j is inputs column j, with the target targets column j.
template <class T>
struct RegressionData {
    autodiff::Matrix<T> inputs;   ///< features x examples
    autodiff::Matrix<T> targets;  ///< outputs x examples
    std::size_t size() const { return inputs.shape()[1]; }
};

template <class T>
class Trainer {
public:
    /// The optimizer updates the model's parameters, all or a part (fine-tuning: the rest stay
    /// frozen, their gradients zeroed every step and left out of clipping); an empty list, a
    /// parameter of another model or one listed twice throws autodiff::Error, naming it.
    /// Classification with the mean softmax cross-entropy.
    Trainer(Module<T>& model, Optimizer<T>& optimizer, std::size_t batch_size, std::uint32_t seed);
    Trainer(Module<T>& model, Optimizer<T>& optimizer, Loss<T> loss, std::size_t batch_size, std::uint32_t seed);

    /// Scale the gradients to this joint L2 norm at most before every step (0: never).
    void set_clip_grad_norm(double max_norm);
    /// Set the optimizer's rate before every step from schedule.at(global step), where the
    /// global step is epoch * batches per epoch + batch: resumable by construction. Throws
    /// autodiff::Error if the base rate is 0 or infinite as a T (a float Trainer).
    void set_schedule(const LearningRateSchedule& schedule);
    /// On: an epoch leaves out its last batch when it is smaller than batch_size (PyTorch's
    /// DataLoader drop_last), as a model with BatchNorm needs when that batch would hold a single
    /// example, and the epoch's statistics count the examples trained on. The schedule's
    /// batches per epoch count the same batches. Off by default; evaluation takes every example.
    void set_drop_last(bool on) { drop_last_ = on; }

    /// One pass over data in a shuffled order, in training mode (a model in evaluation mode is
    /// switched; in a model in training mode, a module set to evaluation, such as a frozen
    /// BatchNorm, stays so); calls progress after every batch if given.
    /// Throws TrainingDiverged (nn/non_finite.hpp) as soon as the loss or a parameter is NaN or Inf;
    /// nn::DataError, before any step, for RegressionData holding NaN or Inf (a DataLoader refuses
    /// such features when it is made).
    EpochStats train_epoch(const DataLoader<T>& data, std::size_t epoch,
                           const std::function<void(const Progress&)>& progress = {});
    EpochStats train_epoch(const RegressionData<T>& data, std::size_t epoch,
                           const std::function<void(const Progress&)>& progress = {});
    /// Loss (and accuracy) in evaluation mode, without recording gradients; every module's mode is restored after.
    EpochStats evaluate(const DataLoader<T>& data);
    EpochStats evaluate(const RegressionData<T>& data);
    /// On (the default): each batch size's step is recorded once and replayed after that
    /// (nn::ReplayedStep) when the model and the loss allow it, with the same results; off:
    /// every step is recorded afresh.
    void set_replay(bool on) { step_.set_replay(on); }

    /// Epochs first_epoch .. epochs-1, each followed by an evaluation on `test`; calls
    /// on_epoch after each with its metrics, and returns them all. `epochs` counts all epochs,
    /// those before first_epoch included: a first_epoch past it is refused.
    template <class Data>
    std::vector<EpochMetrics> fit(const Data& train, const Data& test, std::size_t first_epoch, std::size_t epochs,
                                  const std::function<void(const EpochMetrics&)>& on_epoch = {}) {
        // It returned no epochs without a word (found by an attack).
        if (first_epoch > epochs)
            throw autodiff::Error("Trainer::fit: first_epoch " + std::to_string(first_epoch) + " is past epochs " +
                                  std::to_string(epochs) + " (epochs counts all epochs, the ones before first_epoch too)");
        std::vector<EpochMetrics> history;
        for (std::size_t epoch = first_epoch; epoch < epochs; ++epoch) {
            EpochMetrics m;
            m.epoch = epoch + 1;
            m.train = train_epoch(train, epoch);
            m.test = evaluate(test);
            m.learning_rate = double(optimizer_.learning_rate());
            if (on_epoch) on_epoch(m);
            history.push_back(m);
        }
        return history;
    }

    /// Data-parallel: this process trains on its share of every global batch (batch_size
    /// keeps its meaning), sync averages the gradients before each step, and the epoch's
    /// statistics (and evaluate()'s, each rank taking a share of the data) are summed over
    /// the ranks; progress reports this rank's share. nullptr: alone, as by default. A sync
    /// destroyed while set here is refused by the next epoch or evaluation (autodiff::Error).
    void set_gradient_sync(GradientSync<T>* sync);

private:
    using Gather = std::function<void(const std::size_t*, std::size_t, Batch<T>&)>;
    EpochStats run_epoch(std::size_t n, const Gather& gather, std::size_t epoch,
                         const std::function<void(const Progress&)>& progress);
    EpochStats run_evaluation(std::size_t n, const Gather& gather);
    void require_registered(const autodiff::Tape<T>& tape);
    void require_optimizer_of_model() const;
    void require_regression_loss() const;
    void apply_step(double loss, std::size_t epoch, std::size_t batch);

    Module<T>& model_;
    Optimizer<T>& optimizer_;
    Loss<T> loss_;
    std::size_t batch_size_;
    std::uint32_t seed_;
    double clip_ = 0;
    bool drop_last_ = false;
    std::optional<LearningRateSchedule> schedule_;
    std::vector<autodiff::Parameter<T>*> parameters_;        // the model's, for the finiteness check
    std::vector<const autodiff::Parameter<T>*> registered_;  // the same, sorted: the per-step check allocates nothing
    // The same, asked whether alive before each epoch and evaluation reads them: a module given
    // to the model by reference may have been destroyed first.
    ListedParameters<T> listed_;
    // The optimizer updates all of the model's parameters (in any order), so when its step
    // checked the new weights finite (step_and_zero_grad), only the loss is left to check.
    // Otherwise it updates a part (fine-tuning) and the frozen rest is zeroed every step.
    bool optimizer_covers_model_ = false;
    ReplayedStep<T> step_;    ///< training: one recording per batch size, replayed
    autodiff::Tape<T> tape_;  ///< evaluation's, reused every batch: no allocation after the first
    Batch<T> batch_;
    HeldSync<T> sync_;  ///< data-parallel: set_gradient_sync
};

/// Examples whose argmax over the logits' column equals the label.
template <class T>
std::size_t count_correct(const autodiff::Matrix<T>& logits, const autodiff::Labels& labels);

/// Throws DataError naming the data set, the example (column) and the feature (row) of the
/// first NaN or Inf, and a label out of range.
template <class T>
void check_dataset(const Dataset<T>& data, const std::string& name);

}  // namespace nn
