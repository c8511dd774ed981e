#include "nn/training.hpp"

#include <chrono>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "nn/data_error.hpp"
#include "nn/distributed/shard.hpp"
#include "nn/non_finite.hpp"

namespace nn {

namespace {

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

}  // namespace

template <class T>
std::size_t count_correct(const autodiff::Matrix<T>& logits, const autodiff::Labels& labels) {
    const std::size_t rows = logits.shape()[0], cols = logits.shape()[1];
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
Trainer<T>::Trainer(MLP<T>& net, Optimizer<T>& optimizer, std::size_t batch_size, std::uint32_t seed)
    : net_(net), parameters_(net.parameters()), optimizer_(optimizer), batch_size_(batch_size), seed_(seed) {
    if (batch_size == 0) throw std::invalid_argument("Trainer: the batch size must be at least 1");
}

template <class T>
EpochStats Trainer<T>::train_epoch(const DataLoader<T>& data, std::size_t epoch,
                                   const std::function<void(const Progress&)>& progress) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = data.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    NumpyRandom shuffle_rng(static_cast<std::uint32_t>(seed_ + epoch));
    shuffle_rng.shuffle(order);

    EpochStats stats;
    double loss_sum = 0;
    std::size_t correct = 0;
    const std::size_t batches = (n + batch_size_ - 1) / batch_size_;
    for (std::size_t b = 0; b < batches; ++b) {
        const std::size_t first = b * batch_size_, global = std::min(batch_size_, n - first);
        const distributed::Share mine = share(global, sync_);
        if (sync_) sync_->begin_step(mine.count, global);
        double batch_loss = 0;  // this rank's mean over its share
        if (mine.count > 0) {  // with more ranks than examples in a last batch, some get none
            data.gather(order.data() + first + mine.begin, mine.count, X_, y_);
            tape_.reset();
            autodiff::Var<T> logits = net_(tape_, X_);
            autodiff::Var<T> loss = autodiff::softmax_cross_entropy(logits, y_);
            tape_.backward(loss);
            batch_loss = double(loss.value()(0, 0));
            loss_sum += batch_loss * double(mine.count);
            correct += count_correct(logits.value(), y_);
        }
        if (sync_) sync_->finish();
        optimizer_.step();
        optimizer_.zero_grad();
        check_finite_step(batch_loss, parameters_, {epoch, b});

        stats.examples += mine.count;
        if (progress)
            progress({b + 1, batches, stats.examples, loss_sum / double(std::max<std::size_t>(stats.examples, 1)),
                      seconds_since(start)});
    }
    sum_over_ranks(sync_, loss_sum, correct, stats.examples);
    stats.loss = loss_sum / double(n);
    stats.accuracy = double(correct) / double(n);
    stats.seconds = seconds_since(start);
    return stats;
}

template <class T>
void Trainer<T>::set_gradient_sync(GradientSync<T>* sync) {
    if (sync_ && sync_ != sync) tape_.set_gradient_ready_hook(nullptr, nullptr);
    sync_ = sync;
    if (sync_) sync_->attach(tape_);
}

template <class T>
EpochStats Trainer<T>::evaluate(const DataLoader<T>& data) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = data.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    EpochStats stats;
    double loss_sum = 0;
    std::size_t correct = 0;
    const distributed::Share mine = share(n, sync_);  // data-parallel: each rank a part of the set
    for (std::size_t first = mine.begin; first < mine.begin + mine.count; first += batch_size_) {
        const std::size_t count = std::min(batch_size_, mine.begin + mine.count - first);
        data.gather(order.data() + first, count, X_, y_);
        tape_.reset();
        autodiff::NoGrad<T> no_grad(tape_);
        autodiff::Var<T> logits = net_(tape_, X_);
        loss_sum += double(autodiff::softmax_cross_entropy(logits, y_).value()(0, 0)) * double(count);
        correct += count_correct(logits.value(), y_);
    }
    sum_over_ranks(sync_, loss_sum, correct, stats.examples);
    stats.examples = n;
    stats.loss = loss_sum / double(n);
    check_finite_evaluation(stats.loss);
    stats.accuracy = double(correct) / double(n);
    stats.seconds = seconds_since(start);
    return stats;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                   \
    template class Trainer<T>;                                                                    \
    template std::size_t count_correct<T>(const autodiff::Matrix<T>&, const autodiff::Labels&); \
    template void check_dataset<T>(const Dataset<T>&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace nn
