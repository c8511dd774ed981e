// Training end to end on the embedded Iris data, checkpoints, resuming, and bad options.

#include <catch2/catch.hpp>

#include "nn/data/csv.hpp"
#include "nn/data_error.hpp"
#include "nn/io/model_checkpoint.hpp"
#include "nn/data/split.hpp"
#include "nn/training.hpp"
#include "temp_dir.hpp"

using Catch::Matchers::Contains;

namespace {

template <class T>
struct Run {
    nn::MLP<T> net{{4, 16, 3}, nn::Activation::relu, nn::Init::he, 7};
    std::unique_ptr<nn::Optimizer<T>> optimizer;
    explicit Run(const std::string& name) : optimizer(nn::make_optimizer<T>(name, net.parameters(), T(0.01))) {}
};

template <class T>
bool same_weights(const nn::MLP<T>& a, const nn::MLP<T>& b) {
    for (std::size_t l = 0; l < a.layers.size(); ++l)
        if (a.layers[l].W.value != b.layers[l].W.value || a.layers[l].b.value != b.layers[l].b.value) return false;
    return true;
}

}  // namespace

TEST_CASE("train_test_split names the fraction and the examples when none are left to train on", "[training]") {
    // Found by an attack: a test fraction of 0.999999 was reported as "150 examples are too
    // few to split".
    REQUIRE_THROWS_WITH(nn::train_test_split(nn::iris<double>(), 0.999999, 0),
                        "train_test_split: a test fraction of 0.999999 of 150 examples takes 150 to test and leaves "
                        "none to train on");
    const nn::Dataset<double> one = nn::train_test_split(nn::iris<double>(), 0.2, 0).second;
    std::size_t first = 0;
    nn::Dataset<double> single;
    single.classes = one.classes;
    nn::gather_batch(one, &first, 1, single.features, single.labels);
    REQUIRE_THROWS_WITH(nn::train_test_split(single, 0.2, 0),
                        "train_test_split: a test fraction of 0.200000 of 1 examples takes 1 to test and leaves none "
                        "to train on");
}

TEST_CASE("an MLP learns Iris to at least 93% held-out accuracy", "[training]") {
    const auto [train_set, test_set] = nn::train_test_split(nn::iris<double>(), 0.2, 0);
    REQUIRE(train_set.size() == 120);
    const nn::DataLoader<double> train(train_set), test(test_set);
    Run<double> run("adam");
    nn::Trainer<double> trainer(run.net, *run.optimizer, 16, 1);
    const double initial = trainer.evaluate(train).loss;
    nn::EpochStats last;
    for (std::size_t epoch = 0; epoch < 60; ++epoch) last = trainer.train_epoch(train, epoch);
    const nn::EpochStats held_out = trainer.evaluate(test);
    INFO("loss " << initial << " -> " << last.loss << ", held-out accuracy " << held_out.accuracy);
    REQUIRE(last.loss < initial / 4);
    REQUIRE(held_out.accuracy >= 0.93);
}

TEMPLATE_TEST_CASE("a saved model loads back bit for bit", "[training][checkpoint]", float, double) {
    test_support::TempDir dir("training");
    Run<TestType> run("momentum");
    nn::Trainer<TestType> trainer(run.net, *run.optimizer, 32, 3);
    trainer.train_epoch(nn::DataLoader<TestType>(nn::iris<TestType>()), 0);
    nn::save_model(dir.path / "model", run.net, *run.optimizer, 1);
    const nn::LoadedModel<TestType> loaded = nn::load_model<TestType>(dir.path / "model");
    REQUIRE(loaded.epoch == 1);
    REQUIRE(loaded.optimizer == "momentum");
    REQUIRE(loaded.net->sizes() == run.net.sizes());
    REQUIRE(same_weights(*loaded.net, run.net));
}

TEST_CASE("resuming after N epochs gives the same weights as training straight through", "[training][checkpoint]") {
    const nn::DataLoader<double> data(nn::iris<double>());
    for (const std::string optimizer : {"sgd", "momentum", "adam"}) {
        test_support::TempDir dir("training");
        Run<double> straight(optimizer);
        nn::Trainer<double> t1(straight.net, *straight.optimizer, 20, 5);
        for (std::size_t e = 0; e < 4; ++e) t1.train_epoch(data, e);

        Run<double> first_half(optimizer);
        nn::Trainer<double> t2(first_half.net, *first_half.optimizer, 20, 5);
        for (std::size_t e = 0; e < 2; ++e) t2.train_epoch(data, e);
        nn::save_model(dir.path / "ckpt", first_half.net, *first_half.optimizer, 2);

        nn::LoadedModel<double> resumed = nn::load_model<double>(dir.path / "ckpt");
        auto opt = nn::make_optimizer<double>(resumed.optimizer, resumed.net->parameters(), 0.01);
        nn::restore_optimizer(resumed.checkpoint, *opt);
        nn::Trainer<double> t3(*resumed.net, *opt, 20, 5);
        for (std::size_t e = resumed.epoch; e < 4; ++e) t3.train_epoch(data, e);
        INFO("optimizer " << optimizer);
        REQUIRE(same_weights(*resumed.net, straight.net));
    }
}

TEST_CASE("a checkpoint that does not fit the model is rejected, naming the layer and shapes", "[training][checkpoint]") {
    test_support::TempDir dir("training");
    Run<double> run("sgd");
    nn::save_model(dir.path / "small", run.net, *run.optimizer, 0);
    nn::MLP<double> other({4, 8, 3}, nn::Activation::relu, nn::Init::he, 0);
    const nn::Checkpoint c = nn::load_checkpoint(dir.path / "small");
    REQUIRE_THROWS_WITH(nn::load_weights(c, other), Contains("W1 is 16x4 but layer1 of the model has 8x4"));
    nn::Adam<double> adam(run.net.parameters());
    REQUIRE_THROWS_WITH(nn::restore_optimizer(c, adam), Contains("saved with optimizer 'sgd', not 'adam'"));
}

TEST_CASE("invalid training options and data are refused with a clear message", "[training][errors]") {
    nn::MLP<double> net({4, 3}, nn::Activation::relu, nn::Init::he, 0);
    REQUIRE_THROWS_WITH(nn::SGD<double>(net.parameters(), -0.1), Contains("SGD: learning rate must be a positive finite number, got -0.1"));
    REQUIRE_THROWS_WITH(nn::Adam<double>(net.parameters(), NAN), Contains("Adam: learning rate must be a positive finite number, got nan"));
    REQUIRE_THROWS_WITH(nn::Momentum<double>(net.parameters(), 0.1, 1.5), Contains("momentum must be in [0, 1)"));
    nn::SGD<double> sgd(net.parameters(), 0.1);
    REQUIRE_THROWS_WITH(nn::Trainer<double>(net, sgd, 0, 0), Contains("batch size must be at least 1"));
    REQUIRE_THROWS_WITH(nn::MLP<double>({4, 0, 3}), Contains("layer size 0 in 4-0-3"));

    nn::Dataset<double> empty;
    REQUIRE_THROWS_WITH(nn::DataLoader<double>(empty), Contains("DataLoader: the data set is empty"));
    nn::Dataset<double> mismatched = nn::iris<double>();
    mismatched.labels.resize(151);
    REQUIRE_THROWS_WITH(nn::DataLoader<double>(mismatched), Contains("150 examples (columns) but 151 labels"));

    nn::Adam<double> adam(net.parameters());
    net.layers[0].W.value = xt::ones<double>({64, 4});
    net.layers[0].W.zero_grad();
    REQUIRE_THROWS_WITH(adam.step(), Contains("parameter 'layer1.W' is 64x4 but its first moment is 3x4"));

    nn::Dataset<double> data = nn::iris<double>();
    data.features(2, 37) = NAN;
    REQUIRE_THROWS_WITH(nn::check_dataset(data, "iris"), Contains("iris: example 37 holds nan in feature 2"));
}
