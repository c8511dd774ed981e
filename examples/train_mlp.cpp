// Trains an MLP classifier on Fashion-MNIST (Debian's dataset-fashion-mnist), the Iris data
// compiled into the library, or any CSV, with tapegrad's public API only.
//
//   train_mlp                                   784-256-128-10, Adam, 15 epochs
//   train_mlp --dataset iris --epochs 50
//   train_mlp --save model/ ; train_mlp --resume model/ --epochs 20 ; train_mlp --eval model/
//   mpirun -np 4 train_mlp ...                  data-parallel: --batch-size stays the global
//                                               batch; rank 0 prints and writes every file
//
// The last line printed is "test accuracy: 0.XXXX". Errors are printed with exit status 1;
// output paths are checked before training starts; a run whose loss or weights become NaN
// or Inf stops (exit 1) and leaves the last checkpoint saved as it was.

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/idx.hpp"
#include "nn/io/model_checkpoint.hpp"
#include "nn/schedule.hpp"
#include "nn/data/split.hpp"
#include "nn/training.hpp"
#include "support/data_parallel.hpp"
#include "support/guarded_main.hpp"
#include "support/output_paths.hpp"
#include "support/training_run.hpp"

namespace {

struct Options {
    std::string dataset = "fashion-mnist";
    std::string data_dir = nn::fashion_mnist_debian_dir;
    std::string csv;
    std::vector<std::size_t> hidden = {256, 128};
    std::string activation = "relu";
    std::string init = "he";
    std::string optimizer = "adam";
    double learning_rate = 1e-3;
    double momentum = 0.9;
    std::string schedule = "cosine";
    std::size_t batch_size = 128;
    std::size_t epochs = 15;
    std::uint32_t seed = 0;
    std::string dtype = "float";
    int threads = 1;
    bool flush_denormals = false;
    std::string save, resume, eval;
    std::string metrics = "train_mlp_metrics.csv";
    std::string plot;
    std::map<std::string, std::string> settings;  // the training options, as saved in checkpoints
};

// The options that decide how a run trains (examples/support/training_run.hpp keeps and adopts them).
const example::TrainingFlags training_flags = {
    {"--dataset", "--csv", "--optimizer", "--lr", "--schedule", "--momentum", "--batch-size", "--seed", "--dtype",
     "--init"},
    {"--epochs"}};

// The model's shape comes from the checkpoint: a --hidden or --activation that says otherwise
// is a mistake to report, not an option to ignore.
void check_model_options(const CLI::App& app, const Options& o, const std::map<std::string, std::string>& meta,
                         const std::string& dir) {
    if (app.get_option("--hidden")->count() && meta.count("layer_sizes")) {
        const std::string& sizes = meta.at("layer_sizes");
        const auto first = sizes.find(','), last = sizes.rfind(',');
        const std::string saved = first == last ? "" : sizes.substr(first + 1, last - first - 1);
        std::string given;
        for (std::size_t n : o.hidden) given += (given.empty() ? "" : ",") + std::to_string(n);
        if (given != saved)
            throw std::invalid_argument(dir + " holds a network with --hidden " + saved + ", not " + given +
                                        " (leave --hidden out to continue it)");
    }
    if (app.get_option("--activation")->count() && meta.count("activation") &&
        nn::to_string(nn::activation_from_string(o.activation)) != meta.at("activation")) {
        throw std::invalid_argument(dir + " holds a network with --activation " + meta.at("activation") + ", not " +
                                    o.activation + " (leave --activation out to continue it)");
    }
}

template <class T>
nn::TrainTest<T> load_data(const Options& o) {
    if (!o.csv.empty()) {
        auto [train, test] = nn::train_test_split(nn::load_csv_dataset<T>(o.csv), 0.2, o.seed);
        return {std::move(train), std::move(test)};
    }
    if (o.dataset == "iris") {
        auto [train, test] = nn::train_test_split(nn::iris<T>(), 0.2, o.seed);
        return {std::move(train), std::move(test)};
    }
    return nn::load_fashion_mnist<T>(o.data_dir);
}

template <class T>
void require_fits(const nn::MLP<T>& net, const nn::Dataset<T>& data, const std::string& where) {
    if (net.sizes().front() != data.feature_count() || net.sizes().back() != data.classes)
        throw std::invalid_argument(where + ": the model takes " + std::to_string(net.sizes().front()) +
                                    " features and " + std::to_string(net.sizes().back()) + " classes, the data has " +
                                    std::to_string(data.feature_count()) + " and " + std::to_string(data.classes));
}

template <class T>
int run(const Options& o, nn::distributed::Communicator& comm) {
    autodiff::set_blas_threads(o.threads);
    if (o.flush_denormals) autodiff::set_flush_denormals(true);
    const nn::TrainTest<T> data = load_data<T>(o);
    nn::check_dataset(data.train, "training data");
    nn::check_dataset(data.test, "test data");

    if (!o.eval.empty()) {
        nn::LoadedModel<T> saved = nn::load_model<T>(o.eval);
        require_fits(*saved.net, data.test, o.eval);
        auto unused = nn::make_optimizer<T>("sgd", saved.net->parameters(), T(1));
        const nn::EpochStats test =
            nn::Trainer<T>(*saved.net, *unused, o.batch_size, o.seed).evaluate(nn::DataLoader<T>(data.test));
        std::printf("test loss: %.4f\ntest accuracy: %.4f\n", test.loss, test.accuracy);
        return 0;
    }

    std::unique_ptr<nn::MLP<T>> net;
    std::size_t first_epoch = 0;
    nn::Checkpoint resumed;
    if (!o.resume.empty()) {
        nn::LoadedModel<T> saved = nn::load_model<T>(o.resume);
        net = std::move(saved.net);
        first_epoch = saved.epoch;
        resumed = std::move(saved.checkpoint);
        require_fits(*net, data.train, o.resume);
    } else {
        std::vector<std::size_t> sizes = {data.train.feature_count()};
        sizes.insert(sizes.end(), o.hidden.begin(), o.hidden.end());
        sizes.push_back(data.train.classes);
        net = std::make_unique<nn::MLP<T>>(sizes, nn::activation_from_string(o.activation),
                                           nn::init_from_string(o.init), o.seed);
    }
    const T momentum = example::option_as<T>(
        "--momentum", o.momentum, [](double m) { return m >= 0 && m < 1; }, "it must be in [0, 1) there");
    auto optimizer = nn::make_optimizer<T>(o.optimizer, net->parameters(), example::learning_rate_as<T>(o.learning_rate),
                                           momentum);
    if (!o.resume.empty()) nn::restore_optimizer(resumed, *optimizer);
    nn::Trainer<T> trainer(*net, *optimizer, o.batch_size, o.seed);
    const auto data_parallel = example::data_parallel_for(comm, trainer, net->parameters());  // under mpirun only

    std::printf("training %s on %zu examples (%zu test), %s, batch %zu, %s%s\n",
                [&] { std::string s; for (auto n : net->sizes()) s += (s.empty() ? "" : "-") + std::to_string(n); return s; }().c_str(),
                data.train.size(), data.test.size(), o.optimizer.c_str(), o.batch_size, o.dtype.c_str(),
                example::ranks_note(comm).c_str());
    const nn::DataLoader<T> train_batches(data.train), test_batches(data.test);
    example::EpochLoop loop;
    loop.first_epoch = first_epoch;
    loop.epochs = o.epochs;
    loop.schedule = nn::schedule_from_string(o.schedule);
    loop.learning_rate = o.learning_rate;
    loop.metrics = comm.is_root() ? o.metrics : "";  // files: rank 0's alone
    loop.plot = comm.is_root() ? o.plot : "";
    example::run_epochs<T>(trainer, *optimizer, train_batches, test_batches, loop, [&](std::size_t epoch) {
        if (!o.save.empty() && comm.is_root()) nn::save_model(o.save, *net, *optimizer, epoch, o.settings);
    });
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::unique_ptr<nn::distributed::Communicator> comm = example::join_ranks("train_mlp", argc, argv);
    if (!comm) return 1;
    Options o;
    CLI::App app{"Train an MLP classifier with tapegrad (features x examples, W is n_out x n_in)."};
    app.add_option("--dataset", o.dataset, "fashion-mnist or iris (compiled in)")
        ->check(CLI::IsMember({"fashion-mnist", "iris"}))->capture_default_str();
    app.add_option("--data", o.data_dir, "directory of the Fashion-MNIST IDX files")->capture_default_str();
    app.add_option("--csv", o.csv, "train on a CSV file instead (features..., class), 20% held out");
    app.add_option("--hidden", o.hidden, "hidden layer sizes")->delimiter(',')->check(example::layer_size_range(1))->capture_default_str();
    app.add_option("--activation", o.activation, "hidden activation: relu, sigmoid, tanh")->capture_default_str();
    app.add_option("--init", o.init, "initialiser: he, glorot, notebook (randn x 0.01)")->capture_default_str();
    app.add_option("--optimizer", o.optimizer, "sgd, momentum or adam")
        ->check(CLI::IsMember({"sgd", "momentum", "adam"}))->capture_default_str();
    app.add_option("--lr", o.learning_rate, "learning rate")->capture_default_str();
    app.add_option("--schedule", o.schedule, "learning rate per epoch: constant, or cosine decay to 0")
        ->check(CLI::IsMember({"constant", "cosine"}))->capture_default_str();
    app.add_option("--momentum", o.momentum, "momentum (with --optimizer momentum)")->capture_default_str();
    app.add_option("--batch-size", o.batch_size, "examples per minibatch")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--epochs", o.epochs, "epochs to train (in all, when resuming; the cosine schedule spans them)")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the initial weights and the shuffling")->capture_default_str();
    app.add_option("--dtype", o.dtype, "float or double")->check(CLI::IsMember({"float", "double"}))->capture_default_str();
    app.add_option("--threads", o.threads, "BLAS threads")->check(CLI::Range(1, 256))->capture_default_str();
    example::add_flush_denormals_flag(app, o.flush_denormals);
    app.add_option("--save", o.save, "checkpoint directory, written atomically after every epoch");
    app.add_option("--resume", o.resume,
                   "continue training from this checkpoint, with the options it was trained with (--epochs "
                   "may extend it); saves into it unless --save is given");
    app.add_option("--eval", o.eval, "only evaluate this checkpoint on the test set");
    app.add_option("--metrics", o.metrics, "CSV of per-epoch metrics ('' for none)")->capture_default_str();
    app.add_option("--plot", o.plot, "loss/accuracy plot (.png or .svg, needs gnuplot)");
    CLI11_PARSE(app, argc, argv);
    if (!(std::isfinite(o.learning_rate) && o.learning_rate > 0)) {
        std::cerr << "train_mlp: --lr must be a positive finite number, got " << o.learning_rate << "\n";
        return 2;
    }
    // It was ignored without a word with any other optimizer (found by an attack). A resumed
    // run's optimizer comes from its checkpoint, which says whether it takes one.
    if (app.get_option("--momentum")->count() && o.resume.empty() && o.optimizer != "momentum") {
        std::cerr << "train_mlp: --momentum is for --optimizer momentum; " << o.optimizer << " takes none\n";
        return 2;
    }
    return example::guarded_ranks_main("train_mlp", *comm, [&] {
        // --eval reads the checkpoint in the type it was trained in, as --resume does, unless
        // --dtype says otherwise (then a mismatch is reported), and on the run's own test set:
        // its data set and the seed that split it (with seed 0 instead, a run trained with
        // another seed was "tested" on examples it had trained on; found by an attack).
        if (!o.eval.empty()) {
            const std::map<std::string, std::string> meta = nn::load_checkpoint(o.eval).meta;
            if (!app.get_option("--dtype")->count()) o.dtype = meta.count("dtype") && meta.at("dtype") == "float64" ? "double" : "float";
            example::adopt_training_settings(app, {{"--dataset", "--csv", "--seed"}, {}}, meta, o.eval);
        }
        if (!o.resume.empty()) {
            const std::map<std::string, std::string> meta = nn::load_checkpoint(o.resume).meta;
            example::adopt_training_settings(app, training_flags, meta, o.resume);
            check_model_options(app, o, meta, o.resume);
            if (o.save.empty()) {
                o.save = o.resume;
                std::printf("saving into %s, the checkpoint resumed (--save DIR saves elsewhere)\n", o.save.c_str());
            }
        }
        o.settings = example::training_settings(app, training_flags);
        if (o.eval.empty() && comm->is_root()) example::check_run_outputs(o.save, o.metrics, o.plot, o.csv);  // rank 0 alone writes
        return o.dtype == "double" ? run<double>(o, *comm) : run<float>(o, *comm);
    });
}
