// Training with the step replayed gives the weights of training with every step recorded
// afresh, bit for bit, over epochs that end in a shorter batch.

#include <catch2/catch.hpp>

#include "nn/data/csv.hpp"
#include "nn/mlp.hpp"
#include "nn/replayed_step.hpp"
#include "nn/training.hpp"

namespace {

template <class T>
struct Run {
    nn::MLP<T> net{{4, 16, 8, 3}, nn::Activation::relu, nn::Init::he, 11};
    nn::Adam<T> optimizer{net.parameters(), T(0.01)};
};

}  // namespace

TEMPLATE_TEST_CASE("a replayed training run equals a recorded one bit for bit", "[replay][training]", float, double) {
    const nn::DataLoader<TestType> data(nn::iris<TestType>());  // 150 examples: batches of 32 end with 22
    Run<TestType> replayed, recorded;
    nn::Trainer<TestType> fast(replayed.net, replayed.optimizer, 32, 5), plain(recorded.net, recorded.optimizer, 32, 5);
    plain.set_replay(false);
    for (std::size_t epoch = 0; epoch < 3; ++epoch) {
        const nn::EpochStats a = fast.train_epoch(data, epoch), b = plain.train_epoch(data, epoch);
        REQUIRE(a.loss == b.loss);
        REQUIRE(a.accuracy == b.accuracy);
    }
    for (std::size_t l = 0; l < replayed.net.layers.size(); ++l) {
        REQUIRE((replayed.net.layers[l].W.value == recorded.net.layers[l].W.value));
        REQUIRE((replayed.net.layers[l].b.value == recorded.net.layers[l].b.value));
    }
}

TEST_CASE("ReplayedStep replays after the first step of each batch size", "[replay]") {
    nn::MLP<double> net({4, 5, 3}, nn::Activation::tanh, nn::Init::he, 2);
    const nn::Loss<double> loss = nn::cross_entropy_loss<double>();
    nn::ReplayedStep<double> step(net, loss);
    const nn::DataLoader<double> data(nn::iris<double>());
    const std::size_t first[] = {0, 1, 2, 3}, second[] = {4, 5};
    for (int round = 0; round < 2; ++round) {
        data.gather(first, 4, step.batch(4).X, step.batch(4).labels);
        step.run(4);
        data.gather(second, 2, step.batch(2).X, step.batch(2).labels);
        step.run(2);
    }
    CHECK(step.replaying(4));
    CHECK(step.replaying(2));
    step.set_replay(false);
    CHECK_FALSE(step.replaying(4));
}

namespace {

// A GradientSync that reduces nothing and counts the gradients the sweeps report ready:
// what a data-parallel sync would start reducing during the sweep.
struct CountingSync : nn::GradientSync<double> {
    std::size_t ready = 0, finished = 0;
    int rank() const override { return 0; }
    int ranks() const override { return 1; }
    static void on_ready(void* self, autodiff::Parameter<double>&) { ++static_cast<CountingSync*>(self)->ready; }
    void attach(autodiff::Tape<double>& tape) override { tape.set_gradient_ready_hook(&on_ready, this); }
    void detach(autodiff::Tape<double>& tape) override { tape.set_gradient_ready_hook(nullptr, nullptr); }
    void begin_step(std::size_t, std::size_t) override {}
    void finish() override { ++finished; }
    void sum(double*, std::size_t) override {}
};

}  // namespace

TEST_CASE("a Trainer's replayed steps report each gradient ready during the sweep", "[replay][distributed]") {
    // Before: the Trainer's tapes were never attached, so a data-parallel run reduced every
    // bucket after the sweep instead of overlapping it.
    Run<double> run;
    nn::Trainer<double> trainer(run.net, run.optimizer, 32, 5);
    CountingSync sync;
    trainer.set_gradient_sync(&sync);
    const nn::DataLoader<double> data(nn::iris<double>());  // 5 steps: 4 of 32 (recorded, then replayed), 1 of 22
    trainer.train_epoch(data, 0);
    CHECK(sync.finished == 5);
    CHECK(sync.ready == 5 * run.net.parameters().size());  // every parameter, every step
    trainer.set_gradient_sync(nullptr);                     // detached: the sweeps report nothing more
    trainer.train_epoch(data, 1);
    CHECK(sync.ready == 5 * run.net.parameters().size());
}
