#pragma once
// What train_mlp and train_cnn share: the training options a checkpoint keeps and a resumed
// run adopts, a subset of the data for quick runs, and the epoch loop with its progress bar,
// per-epoch line, metrics CSV, checkpoint after every epoch, plot and final line
// ("test accuracy: 0.XXXX").

#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xview.hpp>

#include "nn/data/dataset.hpp"
#include "nn/schedule.hpp"
#include "nn/training.hpp"
#include "metrics_log.hpp"
#include "progress.hpp"

namespace example {

/// The options that decide how a run trains. Checkpoints keep them ("train.<name>"); --resume
/// takes them from the checkpoint, or checks them against it when given again, so the resumed
/// run shuffles and steps exactly as the first one did. `extendable` ones (--epochs) are
/// taken from the checkpoint when not given but may be given anew.
struct TrainingFlags {
    std::vector<std::string> fixed;
    std::vector<std::string> extendable;
};

/// --flush-denormals, as both examples offer it: off by default (autodiff::set_flush_denormals).
inline void add_flush_denormals_flag(CLI::App& app, bool& flush) {
    app.add_flag("--flush-denormals", flush,
                 "flush subnormal numbers to zero: later epochs run faster (Adam's moments of idle weights decay into them)");
}

/// The sizes a layer may be given on the command line (--hidden, --channels): CLI11 wraps a
/// negative number around to 2^64 - 1, which then failed as an impossible allocation naming
/// neither the option nor the -1 typed; the range refuses it as "--hidden: Value -1 not in range".
inline CLI::Range layer_size_range(int smallest) { return CLI::Range(smallest, 1 << 24); }

/// --lr in the run's number type, refused unless it is positive and finite there: 1e-320 is a
/// positive double but 0 as a float, and the optimizer then said "got 0", a rate nobody gave
/// (found by an attack).
template <class T>
T learning_rate_as(double lr) {
    const T rate = static_cast<T>(lr);
    if (!(std::isfinite(rate) && rate > T(0))) {
        std::ostringstream message;
        message << "--lr " << lr << " is " << rate << " as a " << (sizeof(T) == 4 ? "float" : "double")
                << ": it must be a positive finite number there, from " << std::numeric_limits<T>::denorm_min() << " to "
                << std::numeric_limits<T>::max();
        throw std::invalid_argument(message.str());
    }
    return rate;
}

/// Another option the optimizer takes in the run's number type (--momentum, --weight-decay):
/// refused, naming what was typed, when it is valid as typed (`valid`) but not as a T: a
/// momentum of 0.99999999 is 1 as a float and a weight decay of 1e39 infinite, and the
/// optimizer then said "got 1" or "got inf", a value nobody gave (found by an attack). A value
/// invalid as typed is left to the optimizer, whose message names it.
template <class T, class Valid>
T option_as(const char* option, double value, Valid&& valid, const char* rule) {
    const T converted = static_cast<T>(value);
    if (valid(value) && !valid(static_cast<double>(converted))) {
        std::ostringstream message;
        message << option << " " << std::setprecision(std::numeric_limits<double>::digits10) << value << " is "
                << std::setprecision(std::numeric_limits<T>::digits10) << converted << " as a "
                << (sizeof(T) == 4 ? "float" : "double") << ": " << rule;
        throw std::invalid_argument(message.str());
    }
    return converted;
}

// An option's value as given, the parts of a list joined by ',' ("16,32"), or its default.
inline std::string given_value(const CLI::Option* option) {
    if (option->count() == 0) return option->get_default_str();
    std::string value;
    for (const std::string& part : option->results()) value += (value.empty() ? "" : ",") + part;
    return value;
}

inline std::map<std::string, std::string> training_settings(const CLI::App& app, const TrainingFlags& flags) {
    std::map<std::string, std::string> settings;
    for (const std::vector<std::string>* list : {&flags.fixed, &flags.extendable})
        for (const std::string& flag : *list) settings[flag.substr(2)] = given_value(app.get_option(flag));
    return settings;
}

inline bool same_setting(const std::string& a, const std::string& b) {  // "1e-3" and "0.001" are the same rate
    try {
        std::size_t used_a = 0, used_b = 0;
        const double x = std::stod(a, &used_a), y = std::stod(b, &used_b);
        if (used_a == a.size() && used_b == b.size()) return x == y;
    } catch (const std::exception&) {
    }
    return a == b;
}

inline void adopt_training_settings(CLI::App& app, const TrainingFlags& flags,
                                    const std::map<std::string, std::string>& meta, const std::string& dir) {
    for (const std::string& flag : flags.fixed) {
        const auto saved = meta.find("train." + flag.substr(2));
        if (saved == meta.end()) continue;
        CLI::Option* option = app.get_option(flag);
        if (option->count() == 0) {
            option->add_result(saved->second);
            option->run_callback();
        } else if (!same_setting(given_value(option), saved->second)) {
            throw std::invalid_argument(dir + " was trained with " + flag + " " + saved->second + ", not " +
                                        given_value(option) + " (leave " + flag + " out to continue it as it was)");
        }
    }
    for (const std::string& flag : flags.extendable) {
        const auto saved = meta.find("train." + flag.substr(2));
        CLI::Option* option = app.get_option(flag);
        if (saved == meta.end() || option->count() != 0) continue;
        option->add_result(saved->second);
        option->run_callback();
    }
}

/// The first `limit` examples (all when limit is 0 or larger than the set): quick runs and tests.
template <class T>
nn::Dataset<T> first_examples(const nn::Dataset<T>& data, std::size_t limit) {
    if (limit == 0 || limit >= data.size()) return data;
    nn::Dataset<T> part;
    part.classes = data.classes;
    part.class_names = data.class_names;
    part.features = xt::view(data.features, xt::all(), xt::range(0, limit));
    part.labels.assign(data.labels.begin(), data.labels.begin() + static_cast<std::ptrdiff_t>(limit));
    return part;
}

struct EpochLoop {
    std::size_t first_epoch = 0, epochs = 0;
    nn::Schedule schedule = nn::Schedule::cosine;
    double learning_rate = 1e-3;
    std::string metrics, plot;
};

/// Trains epochs first_epoch .. epochs-1 (the rate set per epoch by the schedule), evaluating
/// on `test` after each and calling save(epoch done); prints one line per epoch and, last,
/// "test accuracy: 0.XXXX".
template <class T>
void run_epochs(nn::Trainer<T>& trainer, nn::Optimizer<T>& optimizer, const nn::DataLoader<T>& train,
                const nn::DataLoader<T>& test, const EpochLoop& loop, const std::function<void(std::size_t)>& save) {
    // --resume of a checkpoint past --epochs trained nothing and said nothing (exit 0).
    if (loop.first_epoch > loop.epochs)
        throw std::invalid_argument("--epochs " + std::to_string(loop.epochs) + " is fewer than the " +
                                    std::to_string(loop.first_epoch) +
                                    " epochs the resumed checkpoint has trained: nothing to train (--epochs counts "
                                    "all epochs; give more to continue, or --eval to evaluate it)");
    if (loop.first_epoch == loop.epochs && loop.epochs > 0)
        std::printf("nothing to train: the checkpoint has trained all %zu epochs (--epochs N continues it)\n",
                    loop.epochs);
    ProgressReporter progress(loop.epochs);
    MetricsLog log(loop.metrics, loop.first_epoch);
    nn::EpochStats tested;
    for (std::size_t epoch = loop.first_epoch; epoch < loop.epochs; ++epoch) {
        optimizer.set_learning_rate(T(nn::learning_rate_at(loop.schedule, loop.learning_rate, epoch, loop.epochs)));
        const nn::EpochStats trained =
            trainer.train_epoch(train, epoch, [&](const nn::Progress& p) { progress(epoch, p); });
        tested = trainer.evaluate(test);
        std::printf("epoch %zu/%zu: loss %.4f, train accuracy %.4f, test accuracy %.4f, %.2f s\n", epoch + 1,
                    loop.epochs, trained.loss, trained.accuracy, tested.accuracy, trained.seconds);
        std::fflush(stdout);
        log.add({epoch + 1, trained, tested});
        if (save) save(epoch + 1);
    }
    if (loop.first_epoch >= loop.epochs) tested = trainer.evaluate(test);
    log.plot_or_say_why(loop.plot);
    std::printf("test accuracy: %.4f\n", tested.accuracy);
}

}  // namespace example
