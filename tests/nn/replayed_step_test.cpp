// Training with the step replayed gives the weights of training with every step recorded
// afresh, bit for bit, over epochs that end in a shorter batch.

#include <catch2/catch.hpp>

#include <memory>
#include <set>

#include "nn/data/csv.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/normalization.hpp"
#include "nn/replayed_step.hpp"
#include "nn/sequential.hpp"
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
    void attach(autodiff::Tape<double>& tape) override { tape.set_gradient_ready_hook(&on_ready, this, hook_owner()); }
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

TEST_CASE("a tape refuses the hook of a gradient sync destroyed while attached", "[replay][distributed]") {
    // Found by an attack: the sweep called the destroyed sync's hook in freed memory. The
    // engine knows the sync only as the hook's owner (it names no nn type).
    Run<double> run;
    autodiff::Tape<double> tape;
    auto sync = std::make_unique<CountingSync>();
    sync->attach(tape);
    sync.reset();
    const auto loss = sum(run.net(tape.constant(autodiff::Matrix<double>(xt::ones<double>({4, 3})))));
    REQUIRE_THROWS_WITH(tape.backward(loss), "backward: the gradient-ready hook's owner was destroyed while the hook was set; "
                                             "detach it (set_gradient_ready_hook(nullptr, nullptr)) before destroying it");
}

TEST_CASE("a Trainer refuses a gradient sync destroyed while set and forgets it when told", "[replay][distributed]") {
    // Found by an attack: the next epoch called the destroyed sync, and so did the sweeps of
    // the replayed steps' tapes (freed memory under ASan; no error in a release build).
    Run<double> run;
    nn::Trainer<double> trainer(run.net, run.optimizer, 32, 5);
    const nn::DataLoader<double> data(nn::iris<double>());
    auto sync = std::make_unique<CountingSync>();
    trainer.set_gradient_sync(sync.get());
    trainer.train_epoch(data, 0);
    sync.reset();
    const std::string destroyed = ": the GradientSync given to set_gradient_sync was destroyed first; give "
                                  "set_gradient_sync(nullptr) (or another sync) before destroying it";
    REQUIRE_THROWS_WITH(trainer.train_epoch(data, 1), "Trainer::train_epoch" + destroyed);
    REQUIRE_THROWS_WITH(trainer.evaluate(data), "Trainer::evaluate" + destroyed);
    trainer.set_gradient_sync(nullptr);  // the tapes forget it without calling it
    CHECK(trainer.train_epoch(data, 1).examples == 150);
    CountingSync another;
    trainer.set_gradient_sync(&another);
    trainer.train_epoch(data, 2);
    CHECK(another.ready == 5 * run.net.parameters().size());
}

namespace {

// A module whose forward records something else in evaluation mode, with no buffer to make
// ReplayedStep record every step (a user's noise layer, say).
struct DoubledInTraining : nn::Module<double> {
    autodiff::Var<double> forward(autodiff::Var<double> x) override { return this->is_training() ? x * 2.0 : x; }
};

// Two copies of a model, one stepped with replay and one recorded every step, fed the same
// batches of 6 Iris examples; `change(model, step)` alters both the same way between steps.
struct SideBySide {
    nn::Sequential<double> replayed, recorded;
    nn::Loss<double> loss = nn::cross_entropy_loss<double>();
    nn::ReplayedStep<double> fast{replayed, loss, true}, plain{recorded, loss, false};
    nn::DataLoader<double> data{nn::iris<double>()};

    template <class Change>
    void run(int steps, Change change) {
        for (int step = 0; step < steps; ++step) {
            change(replayed, step);
            change(recorded, step);
            std::size_t examples[6];
            for (std::size_t i = 0; i < 6; ++i) examples[i] = (std::size_t(step) * 31 + i * 23) % 150;
            data.gather(examples, 6, fast.batch(6).X, fast.batch(6).labels);
            data.gather(examples, 6, plain.batch(6).X, plain.batch(6).labels);
            INFO("step " << step);
            REQUIRE(fast.run(6) == plain.run(6));
        }
    }
};

}  // namespace

// Before: ReplayedStep judged the model once, when built, and kept replaying the first
// recording whatever happened to the model after: a BatchNorm appended after it was built had
// its running statistics updated by the first step only, a layer appended after the first
// step was never run, and a train()/eval() switch went unnoticed.
TEST_CASE("ReplayedStep records afresh when the model changed, as recording every step does", "[replay]") {
    SECTION("a BatchNorm appended after the step was built updates its running statistics every step") {
        SideBySide s;
        s.run(4, [](nn::Sequential<double>& m, int step) {
            if (step > 0) return;
            m.add<nn::Linear<double>>(4, 5, 3u);
            m.add<nn::BatchNorm<double>>(5);
            m.add<nn::Linear<double>>(5, 3, 4u);
        });
        auto& fast_bn = static_cast<nn::BatchNorm<double>&>(s.replayed[1]);
        auto& plain_bn = static_cast<nn::BatchNorm<double>&>(s.recorded[1]);
        CHECK((fast_bn.running_mean == plain_bn.running_mean));
        CHECK((fast_bn.running_var == plain_bn.running_var));
        CHECK_FALSE(s.fast.replaying(6));
    }
    SECTION("a layer appended after the replay was built is run") {
        SideBySide s;
        s.run(4, [](nn::Sequential<double>& m, int step) {
            if (step == 0) m.add<nn::Linear<double>>(4, 3, 3u);
            if (step == 2) m.add<nn::Linear<double>>(3, 3, 4u);
        });
        CHECK(s.fast.replaying(6));
    }
    SECTION("a switch to evaluation mode and back records the mode's step") {
        SideBySide s;
        s.run(5, [](nn::Sequential<double>& m, int step) {
            if (step == 0) {
                m.add<nn::Linear<double>>(4, 3, 3u);
                m.add<DoubledInTraining>();
            }
            if (step == 2) m.eval();
            if (step == 4) m.train();
        });
        CHECK(s.fast.replaying(6));
    }
}

// Found by an attack: a model whose hidden layer was resized by hand (consistently) trained on
// with every step recorded, while the default, replayed, threw that a parameter had another shape.
TEST_CASE("a Trainer replays on after a layer was resized by hand, as recording every step does", "[replay][training]") {
    const nn::DataLoader<double> data(nn::iris<double>());
    nn::MLP<double> fast_net({4, 5, 3}, nn::Activation::tanh, nn::Init::he, 3), plain_net({4, 5, 3}, nn::Activation::tanh, nn::Init::he, 3);
    nn::SGD<double> fast_sgd(fast_net.parameters(), 0.05), plain_sgd(plain_net.parameters(), 0.05);
    nn::Trainer<double> fast(fast_net, fast_sgd, 32, 1), plain(plain_net, plain_sgd, 32, 1);
    plain.set_replay(false);
    CHECK(fast.train_epoch(data, 0).loss == plain.train_epoch(data, 0).loss);
    for (nn::MLP<double>* net : {&fast_net, &plain_net}) {  // the hidden layer: 5 -> 6 units
        net->layers[0].W.value = autodiff::Matrix<double>({6, 4}, 0.1);
        net->layers[0].b.value = autodiff::Matrix<double>({6, 1}, 0.0);
        net->layers[1].W.value = autodiff::Matrix<double>({3, 6}, 0.1);
        net->zero_grad();
    }
    CHECK(fast.train_epoch(data, 1).loss == plain.train_epoch(data, 1).loss);
    CHECK((fast_net.layers[0].W.value == plain_net.layers[0].W.value));
}

TEST_CASE("ReplayedStep keeps at most 4 batch sizes recorded, reusing the least recently used", "[replay]") {
    // Every new batch size kept a tape of its own forever: 256 sizes of a 784-512-512-10 MLP
    // held 522 MB. The fifth size now takes over the least recently used recording.
    SideBySide s;
    s.replayed.add<nn::Linear<double>>(4, 3, 3u);
    s.recorded.add<nn::Linear<double>>(4, 3, 3u);
    const std::size_t sizes[] = {2, 3, 4, 5, 2, 6, 7, 2, 3, 2};
    for (std::size_t round = 0; round < 2; ++round) {
        for (std::size_t count : sizes) {
            std::size_t examples[7];
            for (std::size_t i = 0; i < count; ++i) examples[i] = (round * 50 + count * 11 + i * 17) % 150;
            s.data.gather(examples, count, s.fast.batch(count).X, s.fast.batch(count).labels);
            s.data.gather(examples, count, s.plain.batch(count).X, s.plain.batch(count).labels);
            INFO("round " << round << ", " << count << " examples");
            REQUIRE(s.fast.run(count) == s.plain.run(count));
        }
    }
    CHECK(s.fast.replaying(2));  // used all along: never taken over
    // A size never seen takes over one of the 4 recordings kept (its buffers): none is added.
    std::set<const nn::Batch<double>*> kept;
    for (std::size_t count : {2, 3, 6, 7}) kept.insert(&s.fast.batch(count));
    CHECK(kept.size() == 4);
    CHECK(kept.count(&s.fast.batch(100)) == 1);
}

// Found by an attack: a loss that says it is replayable but takes the labels somewhere other
// than a final softmax_cross_entropy entry (nll_loss; a cross-entropy scaled after), or copies
// the targets into a constant, was replayed on the first batch's labels, silently.
TEST_CASE("a replayable loss that copies the batch elsewhere trains as recording every step does", "[replay][training]") {
    using V = autodiff::Var<double>;
    const std::vector<nn::Loss<double>> losses = {
        {[](V out, const nn::Batch<double>& b) { return autodiff::nll_loss(autodiff::log_softmax(out), b.labels); }, true, true},
        {[](V out, const nn::Batch<double>& b) { return autodiff::softmax_cross_entropy(out, b.labels) * 2.0; }, true, true},
        {[](V out, const nn::Batch<double>& b) {
             autodiff::Matrix<double> onehot = xt::zeros<double>(out.value().shape());
             for (std::size_t j = 0; j < b.labels.size(); ++j) onehot(b.labels[j], j) = 1.0;
             return autodiff::softmax_cross_entropy(out, out.tape().constant(onehot));
         },
         true, true},
        // The loss entry itself, but with a copied target matrix, which a replay cannot refill,
        // or with labels other than the batch's, which a replay would replace with the batch's
        // (found by an attack: both were replayed, on the first batch's targets and on the raw
        // labels).
        {[](V out, const nn::Batch<double>& b) {
             autodiff::Matrix<double> onehot = xt::zeros<double>(out.value().shape());
             for (std::size_t j = 0; j < b.labels.size(); ++j) onehot(b.labels[j], j) = 1.0;
             return autodiff::softmax_cross_entropy(out, onehot);
         },
         true, true},
        {[](V out, const nn::Batch<double>& b) {
             autodiff::Labels shifted(b.labels.size());
             for (std::size_t j = 0; j < b.labels.size(); ++j) shifted[j] = (b.labels[j] + 1) % 3;
             return autodiff::softmax_cross_entropy(out, shifted);
         },
         true, true},
    };
    const nn::DataLoader<double> data(nn::iris<double>());
    for (std::size_t k = 0; k < losses.size(); ++k) {
        INFO("loss " << k);
        Run<double> replayed, recorded;
        nn::Trainer<double> fast(replayed.net, replayed.optimizer, losses[k], 16, 5);
        nn::Trainer<double> plain(recorded.net, recorded.optimizer, losses[k], 16, 5);
        plain.set_replay(false);
        for (std::size_t epoch = 0; epoch < 2; ++epoch) REQUIRE(fast.train_epoch(data, epoch).loss == plain.train_epoch(data, epoch).loss);
        for (std::size_t l = 0; l < replayed.net.layers.size(); ++l)
            REQUIRE((replayed.net.layers[l].W.value == recorded.net.layers[l].W.value));
    }
}
