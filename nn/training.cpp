#include "nn/training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "nn/data_error.hpp"
#include "nn/distributed/shard.hpp"
#include "nn/non_finite.hpp"
#include "nn/numpy_random.hpp"

namespace nn {

namespace {

constexpr const char* kOutliveTrainer =
    "a module given to the model by reference, destroyed first? The model must outlive the Trainer as built";

// out (rows x count) gets the columns indices[0..count) of source.
template <class T>
void copy_columns(const autodiff::Matrix<T>& source, const std::size_t* indices, std::size_t count,
                  autodiff::Matrix<T>& out) {
    const std::size_t rows = source.shape()[0], cols = source.shape()[1];
    autodiff::ensure_shape(out, {rows, count});
    for (std::size_t j = 0; j < count; ++j)
        if (indices[j] >= cols)
            throw autodiff::Error("RegressionData: example " + std::to_string(indices[j]) + " of " + std::to_string(cols));
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < count; ++j) out(i, j) = source(i, indices[j]);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// This process's part of `count` examples: all of them when training alone.
template <class T>
distributed::Share share(std::size_t count, const GradientSync<T>* sync) {
    return sync ? distributed::share_of(count, sync->rank(), sync->ranks()) : distributed::Share{0, count};
}

// Loss sum, correct count and examples summed over the ranks; none of it when alone.
template <class T>
void sum_over_ranks(GradientSync<T>* sync, double& loss_sum, std::size_t& correct, std::size_t& examples) {
    if (!sync) return;
    double totals[3] = {loss_sum, double(correct), double(examples)};
    sync->sum(totals, 3);
    loss_sum = totals[0];
    correct = std::size_t(totals[1]);
    examples = std::size_t(totals[2]);
}

// Whether every rank gave the same `count` numbers (each a whole number below 2^53, so that
// the sums are exact): their sums over the ranks, in totals, then how many ranks' numbers
// differ from the mean (a rank whose numbers are the mean cannot tell on its own that the
// others differ). Two small collective sums.
template <class T>
bool ranks_agree(GradientSync<T>& sync, const double* mine, double* totals, std::size_t count) {
    std::copy(mine, mine + count, totals);
    sync.sum(totals, count);
    double differing = 0;
    for (std::size_t k = 0; k < count; ++k)
        if (mine[k] * double(sync.ranks()) != totals[k]) differing = 1;
    sync.sum(&differing, 1);
    return differing == 0;
}

// Data-parallel: each rank takes its share of every batch of the same n examples, and the
// statistics summed over the ranks are divided by n, so every rank must hold the same n
// (different counts would also give the ranks different numbers of batches: a hang).
template <class T>
void require_same_count(GradientSync<T>* sync, std::size_t n, const char* what) {
    if (!sync || sync->ranks() == 1) return;
    const double mine = double(n);
    double total = 0;
    if (ranks_agree(*sync, &mine, &total, 1)) return;
    throw DataError(std::string(what) + ": the ranks hold different data: rank " + std::to_string(sync->rank()) +
                    " of " + std::to_string(sync->ranks()) + " has " + std::to_string(n) + " examples, the " +
                    std::to_string(sync->ranks()) + " ranks " + std::to_string(std::uint64_t(total)) +
                    " in all; data-parallel training needs the same data set on every rank (each takes its "
                    "share of every batch)");
}

// Data-parallel: each rank takes its share of the same global batches, shuffled by (seed,
// epoch), so the ranks must agree on the batch size, the seed and drop_last too: different
// batch sizes ran different numbers of steps (reductions paired with the wrong ones, then a
// hang until the timeout), different seeds (seed + rank, as for dropout) trained on an
// arbitrary mix of the examples without a word (found by an attack). The batch size in 32-bit
// halves, so that the sums stay exact.
template <class T>
void require_same_batches(GradientSync<T>* sync, std::size_t batch_size, std::uint32_t seed, bool drop_last) {
    if (!sync || sync->ranks() == 1) return;
    const std::uint64_t batch = batch_size;
    const double mine[4] = {double(batch >> 32), double(batch & 0xffffffffu), double(seed), drop_last ? 1.0 : 0.0};
    double totals[4];
    if (ranks_agree(*sync, mine, totals, 4)) return;
    throw autodiff::Error("Trainer::train_epoch: the ranks train differently: rank " + std::to_string(sync->rank()) +
                          " of " + std::to_string(sync->ranks()) + " has batch size " + std::to_string(batch_size) +
                          ", seed " + std::to_string(seed) + ", drop_last " + (drop_last ? "on" : "off") +
                          ", and another rank not; data-parallel training needs the same batch size, seed and "
                          "drop_last on every rank (each takes its share of the same shuffled global batches)");
}

// The loss's one number. Evaluation does no backward, which refuses a loss of another shape:
// it reported the first element of a 3x8 "loss" as the loss (found by an attack).
template <class T>
T scalar_loss(const autodiff::Var<T>& loss) {
    if (loss.shape() != autodiff::Shape{1, 1})
        throw autodiff::Error("Trainer::evaluate: the loss is " + autodiff::to_string(loss.shape()) +
                              ", not 1x1 (a loss reduces to one number: take its mean or sum)");
    return loss.value()(0, 0);
}

// Every module's mode as it was, put back when this goes out of scope (an exception
// included). Restoring only the root's mode to the whole tree switched a BatchNorm the user
// had frozen in evaluation mode back to training.
template <class T>
class ModesRestored {
public:
    explicit ModesRestored(Module<T>& model) : modes_{{&model, model.is_training()}} {
        for (const auto& m : model.named_modules()) modes_.push_back({m.item, m.item->is_training()});
    }
    ~ModesRestored() {
        // Parents before their children (named_modules is depth first): each train() sets a
        // subtree, whose own modules are set after it.
        for (const auto& [module, training] : modes_) module->train(training);
    }
    ModesRestored(const ModesRestored&) = delete;
    ModesRestored& operator=(const ModesRestored&) = delete;

private:
    std::vector<std::pair<Module<T>*, bool>> modes_;
};

}  // namespace

// A loss left a classification (Loss's default) over an output that is not one column per
// example had the labels read past their end (found by an attack).
template <class T>
std::size_t count_correct(const autodiff::Matrix<T>& logits, const autodiff::Labels& labels) {
    const std::size_t rows = logits.shape()[0], cols = logits.shape()[1];
    if (cols != labels.size())
        throw autodiff::Error("count_correct: the output is " + autodiff::to_string(autodiff::shape_of(logits)) + " (" +
                              std::to_string(cols) + " columns, one per example) but the batch has " +
                              std::to_string(labels.size()) +
                              " labels; a loss that is not a classification says so (Loss::classification = false)");
    std::size_t correct = 0;
    for (std::size_t j = 0; j < cols; ++j) {
        std::size_t best = 0;
        for (std::size_t i = 1; i < rows; ++i)
            if (logits(i, j) > logits(best, j)) best = i;
        correct += (best == labels[j]);
    }
    return correct;
}

template <class T>
void check_dataset(const Dataset<T>& data, const std::string& name) {
    const std::size_t rows = data.features.shape()[0], cols = data.features.shape()[1];
    if (cols != data.labels.size())
        throw DataError(name + ": " + std::to_string(cols) + " examples but " + std::to_string(data.labels.size()) +
                        " labels");
    if (cols == 0 || rows == 0) throw DataError(name + ": the data set is empty");
    for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j)
            if (!std::isfinite(data.features(i, j)))
                throw DataError(name + ": example " + std::to_string(j) + " holds " +
                                std::to_string(data.features(i, j)) + " in feature " + std::to_string(i));
    for (std::size_t j = 0; j < cols; ++j)
        if (data.labels[j] >= data.classes)
            throw DataError(name + ": example " + std::to_string(j) + " has label " + std::to_string(data.labels[j]) +
                            " but there are " + std::to_string(data.classes) + " classes");
}

template <class T>
Loss<T> cross_entropy_loss() {
    return {[](autodiff::Var<T> output, const Batch<T>& b) { return autodiff::softmax_cross_entropy(output, b.labels); },
            true, true};
}

template <class T>
Loss<T> mse_loss() {
    return {[](autodiff::Var<T> output, const Batch<T>& b) {
                // A DataLoader's batches hold labels only: say so, not "constant_ref: empty 0x0 matrix".
                if (b.targets.size() == 0)
                    throw autodiff::Error("mse_loss: the batch has no targets (a DataLoader gives class labels): a "
                                          "regression trains on nn::RegressionData, a classifier with cross_entropy_loss");
                return autodiff::mse(output, output.tape().constant_ref(b.targets));
            },
            false, true};
}

template <class T>
Trainer<T>::Trainer(Module<T>& model, Optimizer<T>& optimizer, std::size_t batch_size, std::uint32_t seed)
    : Trainer(model, optimizer, cross_entropy_loss<T>(), batch_size, seed) {}

template <class T>
Trainer<T>::Trainer(Module<T>& model, Optimizer<T>& optimizer, Loss<T> loss, std::size_t batch_size,
                    std::uint32_t seed)
    : model_(model), optimizer_(optimizer), loss_(std::move(loss)), batch_size_(batch_size), seed_(seed),
      parameters_(model.parameters()), listed_(parameters_), step_(model, loss_) {
    if (batch_size == 0) throw autodiff::Error("Trainer: the batch size must be at least 1");
    if (!loss_.compute) throw autodiff::Error("Trainer: the loss has no compute function");
    registered_.assign(parameters_.begin(), parameters_.end());
    std::sort(registered_.begin(), registered_.end());
    require_optimizer_of_model();
    // Each of the optimizer's parameters is the model's and listed once: as many means all.
    optimizer_covers_model_ = optimizer_.parameters().size() == registered_.size();
}

// An optimizer with no parameters, or with one from elsewhere, trained nothing of the model
// without a word; one listing a parameter twice would update it twice per step.
template <class T>
void Trainer<T>::require_optimizer_of_model() const {
    std::vector<const autodiff::Parameter<T>*> updated(optimizer_.parameters().begin(), optimizer_.parameters().end());
    if (updated.empty())
        throw autodiff::Error("Trainer: the optimizer has no parameters, so training would change nothing in " +
                              model_.who() + "; build it from model.parameters() (or the part to fine-tune)");
    for (const autodiff::Parameter<T>* p : updated)
        if (!std::binary_search(registered_.begin(), registered_.end(), p))
            throw autodiff::Error("Trainer: the optimizer's parameter '" + p->name + "' (" +
                                  autodiff::to_string(p->shape()) + ") is not a parameter of the model " +
                                  model_.who() + "; build the optimizer from model.parameters() (or a part of them)");
    std::sort(updated.begin(), updated.end());
    const auto twice = std::adjacent_find(updated.begin(), updated.end());
    if (twice != updated.end())
        throw autodiff::Error("Trainer: the optimizer lists the parameter '" + (*twice)->name +
                              "' twice, so every step would update it twice");
}

// The schedule computes in double and the optimizer takes a T: a base rate a float holds as 0
// (1e-50) trained every step at rate 0 without a word, and one it holds as infinite (1e39)
// was refused only by the first step's update (found by an attack).
template <class T>
void Trainer<T>::set_schedule(const LearningRateSchedule& schedule) {
    const T base = static_cast<T>(schedule.base());
    if (!(std::isfinite(base) && base > T(0))) {
        std::ostringstream out;
        out << std::setprecision(8) << "Trainer: the schedule's base rate " << schedule.base() << " is " << base
            << " as a " << (sizeof(T) == sizeof(float) ? "float" : "double")
            << " (the Trainer's type): it must be a positive finite number there";
        throw autodiff::Error(out.str());
    }
    schedule_ = schedule;
}

template <class T>
void Trainer<T>::set_clip_grad_norm(double max_norm) {
    if (!(std::isfinite(max_norm) && max_norm >= 0))
        throw autodiff::Error("Trainer: the gradient-norm limit must be finite and >= 0 (0: no clipping)");
    clip_ = max_norm;
}

// A parameter recorded on the tape but absent from the model would get gradients that no
// optimizer applies: say so at the first step instead of training without it. So would one
// the model gained after this Trainer (and its optimizer) listed the model's parameters.
template <class T>
void Trainer<T>::require_registered(const autodiff::Tape<T>& tape) {
    for (std::size_t i = 0; i < tape.size(); ++i) {
        const autodiff::Parameter<T>* p = tape.entry(i).parameter;
        if (p == nullptr || std::binary_search(registered_.begin(), registered_.end(), p)) continue;
        check_registered(tape, model_);  // throws, listing them, unless the model lists them now
        throw autodiff::Error("Trainer: the parameter '" + p->name + "' (" + autodiff::to_string(p->shape()) +
                              ") joined " + model_.who() +
                              " after the Trainer was built, so its optimizer would never update it (its gradient "
                              "would only pile up); build the optimizer and the Trainer once the model is complete");
    }
}

template <class T>
EpochStats Trainer<T>::run_epoch(std::size_t n, const Gather& gather, std::size_t epoch,
                                 const std::function<void(const Progress&)>& progress) {
    // Each epoch's first check read the weights of a layer destroyed since in freed memory
    // (found by an attack).
    listed_.require_alive("Trainer::train_epoch", "the Trainer", kOutliveTrainer);
    GradientSync<T>* const sync = sync_.get("Trainer::train_epoch");
    require_same_count(sync, n, "Trainer::train_epoch");
    require_same_batches(sync, batch_size_, seed_, drop_last_);
    // Else the first step's NaN loss was blamed on the learning rate (found by an attack).
    check_finite_parameters(parameters_, "Trainer::train_epoch: before epoch " + std::to_string(epoch + 1));
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    NumpyRandom shuffle_rng(static_cast<std::uint32_t>(seed_ + epoch));
    shuffle_rng.shuffle(order);
    // A model in evaluation mode is switched to training; one in training mode is left as it
    // is, so that a module the user froze in evaluation mode (a BatchNorm) stays frozen.
    if (!model_.is_training()) model_.train();

    EpochStats stats;
    double loss_sum = 0;
    std::size_t correct = 0;
    // Not (n + batch_size - 1) / batch_size: with a batch size near 2^64 that wrapped around to
    // no batch at all (found by an attack).
    const std::size_t batches = n / batch_size_ + (!drop_last_ && n % batch_size_ != 0);
    if (batches == 0)
        throw autodiff::Error("Trainer::train_epoch: nothing to train on: " +
                              (n == 0 ? std::string("the data holds no examples")
                                      : std::to_string(n) + " examples make no whole batch of " +
                                            std::to_string(batch_size_) + ", and set_drop_last drops a part batch"));
    for (std::size_t b = 0; b < batches; ++b) {
        const std::size_t first = b * batch_size_, global = std::min(batch_size_, n - first);
        const distributed::Share mine = share(global, sync);
        if (sync) sync->begin_step(mine.count, global);
        double loss = 0;  // this rank's mean over its share
        if (mine.count > 0) {  // with more ranks than examples in a last batch, some get none
            const std::size_t count = mine.count;
            Batch<T>& batch = step_.batch(count);
            gather(order.data() + first + mine.begin, count, batch);
            loss = double(step_.run(count));
            require_registered(step_.tape(count));
            loss_sum += loss * double(count);
            if (loss_.classification) correct += count_correct(step_.output(count), batch.labels);
        }
        if (sync) sync->finish();
        if (schedule_) optimizer_.set_learning_rate(T(schedule_->at(epoch * batches + b)));
        apply_step(loss, epoch, b);

        stats.examples += mine.count;
        if (progress)
            progress({b + 1, batches, stats.examples, loss_sum / double(std::max<std::size_t>(stats.examples, 1)),
                      seconds_since(start)});
    }
    sum_over_ranks(sync, loss_sum, correct, stats.examples);
    stats.loss = loss_sum / double(stats.examples);  // n, unless the last batch was dropped
    stats.accuracy = double(correct) / double(stats.examples);
    stats.seconds = seconds_since(start);
    return stats;
}

// Clips, updates and zeroes the gradients after a batch's backward, then checks the result.
template <class T>
void Trainer<T>::apply_step(double loss, std::size_t epoch, std::size_t batch) {
    // Fine-tuning: the norm is that of the gradients the optimizer applies, not the frozen ones'.
    // A loss that is not finite is a divergence, said as one before clipping reads its
    // gradients (found by an attack: clip_grad_norm refused them as a plain autodiff::Error).
    if (clip_ > 0) {
        check_finite_loss(loss, {epoch, batch});
        clip_grad_norm(optimizer_.parameters(), clip_);
    }
    // One pass per parameter where the optimizer can (Adam): the update, zeroing the
    // gradient and checking the new values finite; then only the loss is left to check.
    const bool checked = optimizer_.step_and_zero_grad();
    // The frozen parameters' gradients would otherwise pile up over the steps.
    if (!optimizer_covers_model_) model_.zero_grad();
    if (checked && optimizer_covers_model_)
        check_finite_loss(loss, {epoch, batch});
    else
        check_finite_step(loss, parameters_, {epoch, batch});
}

template <class T>
void Trainer<T>::set_gradient_sync(GradientSync<T>* sync) {
    // Every step's tape is attached: the reductions start during the backward sweeps.
    sync_ = HeldSync<T>(sync);
    step_.set_gradient_sync(sync);
}

template <class T>
EpochStats Trainer<T>::run_evaluation(std::size_t n, const Gather& gather) {
    listed_.require_alive("Trainer::evaluate", "the Trainer", kOutliveTrainer);
    GradientSync<T>* const sync = sync_.get("Trainer::evaluate");
    require_same_count(sync, n, "Trainer::evaluate");
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    EpochStats stats;
    double loss_sum = 0;
    std::size_t correct = 0;
    const distributed::Share mine = share(n, sync);  // data-parallel: each rank a part of the set
    {
        const ModesRestored restored(model_);
        model_.eval();
        // Advanced by what was taken: first + batch_size wrapped around below the end with a
        // batch size near 2^64, and a rank whose share does not start at 0 summed 76
        // overlapping batches (found by an attack).
        for (std::size_t first = mine.begin, count = 0; first < mine.begin + mine.count; first += count) {
            count = std::min(batch_size_, mine.begin + mine.count - first);
            gather(order.data() + first, count, batch_);
            tape_.reset();
            autodiff::NoGrad<T> no_grad(tape_);
            autodiff::Var<T> output = model_(tape_.constant(batch_.X));
            loss_sum += double(scalar_loss(loss_.compute(output, batch_))) * double(count);
            if (loss_.classification) correct += count_correct(output.value(), batch_.labels);
        }
    }
    sum_over_ranks(sync, loss_sum, correct, stats.examples);
    stats.examples = n;
    stats.loss = loss_sum / double(n);
    check_finite_evaluation(stats.loss, parameters_);
    stats.accuracy = double(correct) / double(n);
    stats.seconds = seconds_since(start);
    return stats;
}

namespace {

template <class T>
std::function<void(const std::size_t*, std::size_t, Batch<T>&)> gather_from(const DataLoader<T>& data) {
    return [&data](const std::size_t* indices, std::size_t count, Batch<T>& b) {
        data.gather(indices, count, b.X, b.labels);
    };
}

template <class T>
std::function<void(const std::size_t*, std::size_t, Batch<T>&)> gather_from(const RegressionData<T>& data) {
    if (data.targets.shape()[1] != data.size())
        throw autodiff::Error("RegressionData: " + std::to_string(data.size()) + " inputs (columns) but " +
                              std::to_string(data.targets.shape()[1]) + " targets");
    if (data.size() == 0) throw autodiff::Error("RegressionData: no examples");
    // A NaN target or an infinite input reached the first step's loss, whose update made every
    // weight NaN, reported as a divergence ("try a lower learning rate"; found by an attack).
    for (const auto& [matrix, what] : {std::pair{&data.inputs, "inputs"}, std::pair{&data.targets, "targets"}}) {
        const std::string at = autodiff::first_non_finite(*matrix);
        if (!at.empty())
            throw DataError("RegressionData: the " + std::string(what) + " (" + autodiff::to_string(autodiff::shape_of(*matrix)) +
                            ") hold " + at + " (examples are columns; NaN and Inf are not data)");
    }
    return [&data](const std::size_t* indices, std::size_t count, Batch<T>& b) {
        copy_columns(data.inputs, indices, count, b.X);
        copy_columns(data.targets, indices, count, b.targets);
    };
}

}  // namespace

template <class T>
EpochStats Trainer<T>::train_epoch(const DataLoader<T>& data, std::size_t epoch,
                                   const std::function<void(const Progress&)>& progress) {
    return run_epoch(data.size(), gather_from(data), epoch, progress);
}

// A classification loss given regression data failed in its first step with "logits are 1x8
// but 0 class labels were given".
template <class T>
void Trainer<T>::require_regression_loss() const {
    if (loss_.classification)
        throw autodiff::Error("Trainer: the loss counts accuracy against class labels (Loss::classification), but "
                              "RegressionData has targets and no labels: train a classifier on a DataLoader, or give "
                              "a regression loss (nn::mse_loss)");
}

template <class T>
EpochStats Trainer<T>::train_epoch(const RegressionData<T>& data, std::size_t epoch,
                                   const std::function<void(const Progress&)>& progress) {
    require_regression_loss();
    return run_epoch(data.size(), gather_from(data), epoch, progress);
}

template <class T>
EpochStats Trainer<T>::evaluate(const DataLoader<T>& data) {
    return run_evaluation(data.size(), gather_from(data));
}

template <class T>
EpochStats Trainer<T>::evaluate(const RegressionData<T>& data) {
    require_regression_loss();
    return run_evaluation(data.size(), gather_from(data));
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
    template class Trainer<T>;                                                                    \
    template Loss<T> cross_entropy_loss<T>();                                                     \
    template Loss<T> mse_loss<T>();                                                               \
    template std::size_t count_correct<T>(const autodiff::Matrix<T>&, const autodiff::Labels&); \
    template void check_dataset<T>(const Dataset<T>&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
