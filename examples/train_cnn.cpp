// Trains a small convolutional network on Fashion-MNIST (Debian's dataset-fashion-mnist) with
// tapegrad's public API only: two conv/relu/max-pool blocks, dropout and a linear head, as an
// nn::Module whose parameters, buffers and dropout state the optimizer and the checkpoint
// find by name. Command line as train_mlp's.
//
//   train_cnn                                 16 and 32 channels, a 128-unit hidden layer, AdamW, 12 epochs
//   train_cnn --save cnn/ ; train_cnn --resume cnn/ --epochs 12 ; train_cnn --eval cnn/
//   train_cnn --limit 2000 --epochs 1         a quick run on the first 2000 training images
//   mpirun -np 2 train_cnn                    data-parallel: each rank a share of every batch
//
// The last line printed is "test accuracy: 0.XXXX".

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/convolution.hpp"
#include "nn/data/idx.hpp"
#include "nn/dropout.hpp"
#include "nn/io/module_checkpoint.hpp"
#include "nn/activation_layer.hpp"
#include "nn/linear.hpp"
#include "nn/sequential.hpp"
#include "nn/training.hpp"
#include "support/data_parallel.hpp"
#include "support/guarded_main.hpp"
#include "support/output_paths.hpp"
#include "support/training_run.hpp"

namespace {

/// conv(3x3, pad 1) -> relu -> max-pool 2, twice, then dropout and a linear head over the
/// flattened feature maps (already flat: images are columns): one hidden ReLU layer of
/// `hidden` units, then the classes (hidden 0: the classes straight away).
template <class T>
struct ConvNet : nn::Module<T> {
    nn::Conv2d<T> conv1;
    nn::MaxPool2d<T> pool1;
    nn::Conv2d<T> conv2;
    nn::MaxPool2d<T> pool2;
    nn::Dropout<T> drop;
    nn::Sequential<T> head;

    ConvNet(autodiff::ImageShape image, std::size_t classes, std::size_t c1, std::size_t c2, std::size_t hidden,
            double dropout, std::uint32_t seed)
        : conv1(image, c1, 3, 1, seed),
          pool1(conv1.output_shape(), 2),
          conv2(pool1.output_shape(), c2, 3, 1, seed + 1),
          pool2(conv2.output_shape(), 2),
          drop(dropout, seed + 2) {
        const std::size_t features = pool2.output_shape().size();
        if (hidden > 0) {
            head.template add<nn::Linear<T>>(features, hidden, seed + 3);
            head.template add<nn::ReLU<T>>();
        }
        head.template add<nn::Linear<T>>(hidden > 0 ? hidden : features, classes, seed + 4);
        this->register_modules({{"conv1", conv1}, {"pool1", pool1}, {"conv2", conv2}, {"pool2", pool2},
                                {"drop", drop}, {"head", head}});
    }
    autodiff::Var<T> forward(autodiff::Var<T> x) override {
        return head(drop(pool2(relu(conv2(pool1(relu(conv1(x))))))));
    }
    std::string type() const override { return "ConvNet"; }
};

struct Options {
    std::string data_dir = nn::fashion_mnist_debian_dir;
    std::vector<std::size_t> channels = {16, 32};
    std::size_t hidden = 128;
    double dropout = 0.25;
    std::string optimizer = "adamw";
    double learning_rate = 2e-3;
    double weight_decay = 1e-4;
    std::string schedule = "cosine";
    std::size_t batch_size = 64;
    std::size_t epochs = 12;
    std::size_t limit = 0, test_limit = 0;
    std::uint32_t seed = 0;
    int threads = 1;
    bool flush_denormals = false;
    std::string save, resume, eval;
    std::string metrics = "train_cnn_metrics.csv";
    std::string plot;
    std::map<std::string, std::string> settings;
};

// What --eval takes from the checkpoint: the network's shape (the rest concerns training).
const example::TrainingFlags architecture_flags = {{"--channels", "--hidden", "--dropout"}, {}};

const example::TrainingFlags training_flags = {
    {"--channels", "--hidden", "--dropout", "--optimizer", "--lr", "--weight-decay", "--schedule", "--batch-size", "--seed",
     "--limit", "--test-limit"},
    {"--epochs"}};

template <class T>
int run(const Options& o, nn::distributed::Communicator& comm) {
    using Net = ConvNet<float>;
    autodiff::set_blas_threads(o.threads);
    if (o.flush_denormals) autodiff::set_flush_denormals(true);
    const nn::TrainTest<float> all = nn::load_fashion_mnist<float>(o.data_dir);
    const nn::Dataset<float> train_set = example::first_examples(all.train, o.limit);
    const nn::Dataset<float> test_set = example::first_examples(all.test, o.test_limit);
    nn::check_dataset(train_set, "training data");
    nn::check_dataset(test_set, "test data");
    const autodiff::ImageShape image{1, 28, 28};
    if (train_set.feature_count() != image.size())
        throw std::invalid_argument("train_cnn: the images have " + std::to_string(train_set.feature_count()) +
                                    " pixels, not 28x28");
    Net net(image, train_set.classes, o.channels.at(0), o.channels.at(1), o.hidden, o.dropout, o.seed);
    const float weight_decay = example::option_as<float>(
        "--weight-decay", o.weight_decay, [](double d) { return std::isfinite(d) && d >= 0; },
        "it must be a finite number >= 0 there");
    auto optimizer = nn::make_optimizer<float>(o.optimizer, net.parameters(), example::learning_rate_as<float>(o.learning_rate), 0.9f,
                                               weight_decay);
    const nn::DataLoader<float> train_batches(train_set), test_batches(test_set);
    nn::Trainer<float> trainer(net, *optimizer, o.batch_size, o.seed);
    if (!o.eval.empty()) {
        nn::load(o.eval, net);
        const nn::EpochStats test = trainer.evaluate(test_batches);
        std::printf("test loss: %.4f\ntest accuracy: %.4f\n", test.loss, test.accuracy);
        return 0;
    }
    example::EpochLoop loop;
    loop.epochs = o.epochs;
    loop.schedule = nn::schedule_from_string(o.schedule);
    loop.learning_rate = o.learning_rate;
    loop.metrics = comm.is_root() ? o.metrics : "";  // files: rank 0's alone
    loop.plot = comm.is_root() ? o.plot : "";
    if (!o.resume.empty()) {
        const nn::Checkpoint c = nn::load(o.resume, net, *optimizer);
        const auto epoch = c.meta.find("epoch");
        if (epoch == c.meta.end() || epoch->second.empty() || epoch->second.size() > 9 ||
            epoch->second.find_first_not_of("0123456789") != std::string::npos)
            throw nn::DataError(o.resume + ": the manifest has no whole-number 'epoch' entry");
        loop.first_epoch = std::stoul(epoch->second);
    }
    const auto data_parallel = example::data_parallel_for(comm, trainer, net.parameters());  // under mpirun only
    std::printf("training %s (%zu parameters) on %zu examples (%zu test), %s, batch %zu%s\n", net.describe().c_str(),
                net.parameter_count(), train_set.size(), test_set.size(), o.optimizer.c_str(), o.batch_size,
                example::ranks_note(comm).c_str());
    example::run_epochs<float>(trainer, *optimizer, train_batches, test_batches, loop, [&](std::size_t epoch) {
        if (o.save.empty() || !comm.is_root()) return;
        std::map<std::string, std::string> meta;
        for (const auto& [key, value] : o.settings) meta["train." + key] = value;
        meta["epoch"] = std::to_string(epoch);
        nn::save(o.save, net, *optimizer, meta);
    });
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::unique_ptr<nn::distributed::Communicator> comm = example::join_ranks("train_cnn", argc, argv);
    if (!comm) return 1;
    Options o;
    CLI::App app{"Train a small CNN on Fashion-MNIST with tapegrad (images are columns: 784 x examples)."};
    app.add_option("--data", o.data_dir, "directory of the Fashion-MNIST IDX files")->capture_default_str();
    app.add_option("--channels", o.channels, "channels of the two conv layers")->delimiter(',')->expected(2)
        ->check(example::layer_size_range(1))->capture_default_str();
    app.add_option("--hidden", o.hidden, "units of the hidden layer of the head (0: none)")
        ->check(example::layer_size_range(0))->capture_default_str();
    app.add_option("--dropout", o.dropout, "dropout before the head")->check(CLI::Range(0.0, 0.95))->capture_default_str();
    app.add_option("--optimizer", o.optimizer, "sgd, momentum, adam or adamw")
        ->check(CLI::IsMember({"sgd", "momentum", "adam", "adamw"}))->capture_default_str();
    app.add_option("--lr", o.learning_rate, "learning rate")->capture_default_str();
    app.add_option("--weight-decay", o.weight_decay, "weight decay (decoupled for adamw, L2 otherwise)")->capture_default_str();
    app.add_option("--schedule", o.schedule, "learning rate per epoch: constant, step, or cosine decay to 0")
        ->check(CLI::IsMember({"constant", "step", "cosine"}))->capture_default_str();
    app.add_option("--batch-size", o.batch_size, "examples per minibatch")->check(CLI::Range(2, 1 << 20))->capture_default_str();
    app.add_option("--epochs", o.epochs, "epochs to train (in all, when resuming)")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--limit", o.limit, "train on the first N training images only (0: all)")->capture_default_str();
    app.add_option("--test-limit", o.test_limit, "test on the first N test images only (0: all)")->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the initial weights, the shuffling and dropout")->capture_default_str();
    app.add_option("--threads", o.threads, "BLAS threads")->check(CLI::Range(1, 256))->capture_default_str();
    example::add_flush_denormals_flag(app, o.flush_denormals);
    app.add_option("--save", o.save, "checkpoint directory, written atomically after every epoch");
    app.add_option("--resume", o.resume, "continue from this checkpoint with the options it was trained with; saves into it unless --save is given");
    app.add_option("--eval", o.eval, "only evaluate this checkpoint on the test set");
    app.add_option("--metrics", o.metrics, "CSV of per-epoch metrics ('' for none)")->capture_default_str();
    app.add_option("--plot", o.plot, "loss/accuracy plot (.png or .svg, needs gnuplot)");
    CLI11_PARSE(app, argc, argv);
    if (!(std::isfinite(o.learning_rate) && o.learning_rate > 0)) {
        std::cerr << "train_cnn: --lr must be a positive finite number, got " << o.learning_rate << "\n";
        return 2;
    }
    return example::guarded_ranks_main("train_cnn", *comm, [&] {
        if (!o.resume.empty()) {
            example::adopt_training_settings(app, training_flags, nn::load_checkpoint(o.resume).meta, o.resume);
            if (o.save.empty()) {
                o.save = o.resume;
                std::printf("saving into %s, the checkpoint resumed (--save DIR saves elsewhere)\n", o.save.c_str());
            }
        }
        if (!o.eval.empty())  // the network as saved, as train_mlp rebuilds it from the checkpoint
            example::adopt_training_settings(app, architecture_flags, nn::load_checkpoint(o.eval).meta, o.eval);
        o.settings = example::training_settings(app, training_flags);
        if (o.eval.empty()) example::check_run_outputs(o.save, o.metrics, o.plot);
        return run<float>(o, *comm);
    });
}
