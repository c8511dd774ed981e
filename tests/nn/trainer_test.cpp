// The generic Trainer: any module, classification or regression, schedules, clipping,
// modes, and the registration check.

#include <catch2/catch.hpp>

#include <limits>
#include <memory>

#include "nn/activation_layer.hpp"
#include "nn/data/csv.hpp"
#include "nn/embedding.hpp"
#include "nn/linear.hpp"
#include "nn/normalization.hpp"
#include "nn/optimizers.hpp"
#include "nn/sequential.hpp"
#include "nn/training.hpp"
#include "tolerance.hpp"

using autodiff::Matrix;
using Catch::Matchers::Contains;

namespace {

nn::RegressionData<double> sine(std::size_t n, std::uint32_t seed) {
    nn::NumpyRandom rng(seed);
    nn::RegressionData<double> d{Matrix<double>({1, n}), Matrix<double>({1, n})};
    for (std::size_t j = 0; j < n; ++j) {
        d.inputs(0, j) = rng.uniform() * 2 - 1;
        d.targets(0, j) = std::sin(3 * d.inputs(0, j));
    }
    return d;
}

struct Regressor : nn::Sequential<double> {
    Regressor() {
        add<nn::Linear<double>>(1, 32, 1u, nn::Init::glorot);
        add<nn::Tanh<double>>();
        add<nn::Linear<double>>(32, 1, 2u, nn::Init::glorot);
    }
};

}  // namespace

TEST_CASE("the Trainer fits a regression (y = sin 3x) with the MSE loss", "[trainer]") {
    Regressor net;
    nn::Adam<double> adam(net.parameters(), 0.01);
    nn::Trainer<double> trainer(net, adam, nn::mse_loss<double>(), 32, 0);
    const auto train = sine(256, 1), test = sine(64, 2);
    const double before = trainer.evaluate(test).loss;
    const auto history = trainer.fit(train, test, 0, 150);
    REQUIRE(history.size() == 150);
    REQUIRE(history.back().epoch == 150);
    INFO("test MSE " << before << " -> " << history.back().test.loss);
    REQUIRE(history.back().test.loss < 0.01);
    REQUIRE(history.back().test.accuracy == 0.0);  // regression: no accuracy
    REQUIRE(trainer.fit(train, test, 150, 150).empty());  // a run already trained to its end
    REQUIRE_THROWS_WITH(trainer.fit(train, test, 151, 150), "Trainer::fit: first_epoch 151 is past epochs 150 "
                                                            "(epochs counts all epochs, the ones before first_epoch too)");
}

TEST_CASE("the Trainer reports a parameter the model uses but never registered", "[trainer]") {
    struct Leaky : nn::Module<double> {
        nn::Linear<double> head{4, 3, 0u};
        autodiff::Parameter<double> shift{xt::zeros<double>({3, 1}), "shift"};
        Leaky() { register_modules({{"head", head}}); }
        autodiff::Var<double> forward(autodiff::Var<double> x) override { return head(x) + x.tape().parameter(shift); }
    } model;
    nn::SGD<double> sgd(model.parameters(), 0.1);
    nn::Trainer<double> trainer(model, sgd, 16, 0);
    REQUIRE_THROWS_WITH(trainer.train_epoch(nn::DataLoader<double>(nn::iris<double>()), 0),
                        Contains("'shift' (3x1) took part in the computation but are not registered"));
}

TEST_CASE("evaluate runs in eval mode and restores the mode; training runs in train mode", "[trainer]") {
    struct ModeSpy : nn::Module<double> {
        nn::Linear<double> head{4, 3, 0u};
        std::vector<bool> seen;
        ModeSpy() { register_modules({{"head", head}}); }
        autodiff::Var<double> forward(autodiff::Var<double> x) override {
            seen.push_back(head.is_training());
            return head(x);
        }
    } model;
    nn::SGD<double> sgd(model.parameters(), 0.1);
    nn::Trainer<double> trainer(model, sgd, 150, 0);
    const nn::DataLoader<double> iris(nn::iris<double>());
    model.eval();
    trainer.train_epoch(iris, 0);
    REQUIRE(model.seen == std::vector<bool>{true});
    trainer.evaluate(iris);
    REQUIRE(model.seen == std::vector<bool>{true, false});
    REQUIRE(model.is_training());
}

TEST_CASE("a per-step schedule sets the rate at every step and reaches 0", "[trainer][schedule]") {
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(4, 3, 0u);
    nn::SGD<double> sgd(net.parameters(), 0.1);
    nn::Trainer<double> trainer(net, sgd, 50, 0);  // 150 examples: 3 steps per epoch
    trainer.set_schedule(nn::LearningRateSchedule::cosine(0.1, 4).with_warmup(2));
    trainer.set_clip_grad_norm(1.0);
    const nn::DataLoader<double> iris(nn::iris<double>());
    trainer.train_epoch(iris, 0);  // steps 0, 1, 2: warm-up, then the cosine's step 0
    REQUIRE(sgd.learning_rate() == 0.1);
    trainer.train_epoch(iris, 1);  // steps 3, 4, 5: cosine steps 1 to 3
    REQUIRE(sgd.learning_rate() == Approx(0.1 * 0.5 * (1 + std::cos(3 * 3.14159265358979323846 / 4))).epsilon(0).margin(1e-15));
    trainer.train_epoch(iris, 2);  // cosine steps 4 to 6: the rate is 0 from step 4 on
    REQUIRE(sgd.learning_rate() == 0.0);
}

TEST_CASE("a float Trainer refuses a schedule whose base rate is 0 or infinite as a float", "[trainer][schedule]") {
    nn::Sequential<float> net;
    net.add<nn::Linear<float>>(4, 3, 0u);
    nn::SGD<float> sgd(net.parameters(), 0.1f);
    nn::Trainer<float> trainer(net, sgd, 50, 0);
    const nn::DataLoader<float> iris(nn::iris<float>());
    // Before: a base of 1e-50 trained at rate 0 without a word; 1e39 failed in the first step.
    REQUIRE_THROWS_WITH(trainer.set_schedule(nn::LearningRateSchedule::constant(1e-50)),
                        Contains("the schedule's base rate 1e-50 is 0 as a float"));
    REQUIRE_THROWS_WITH(trainer.set_schedule(nn::LearningRateSchedule::step(1e39, 10)),
                        Contains("the schedule's base rate 1e+39 is inf as a float"));
    const autodiff::Matrix<float> before = net.parameters()[0]->value;
    trainer.train_epoch(iris, 0);  // no schedule was taken: the optimizer's own rate, 0.1
    REQUIRE(sgd.learning_rate() == 0.1f);
    const bool trained = !(net.parameters()[0]->value == before);
    REQUIRE(trained);
    trainer.set_schedule(nn::LearningRateSchedule::constant(1e-30));  // a float holds it
    trainer.train_epoch(iris, 1);
    REQUIRE(sgd.learning_rate() == 1e-30f);
}

namespace {

// 20 token ids (one feature) labelled by their parity: each shuffled batch holds other tokens.
nn::Dataset<double> parity_tokens() {
    nn::Dataset<double> d;
    d.features = Matrix<double>({1, 20});
    for (std::size_t j = 0; j < 20; ++j) {
        d.features(0, j) = double((3 * j) % 10);
        d.labels.push_back((3 * j) % 2);
    }
    d.classes = 2;
    return d;
}

// The training losses of Sequential{Embedding(10, 4), Linear(4, 2)} over three epochs.
std::vector<double> embedding_losses(bool replay) {
    nn::Sequential<double> net;
    net.add<nn::Embedding<double>>(10, 4, 3u);
    net.add<nn::Linear<double>>(4, 2, 5u);
    nn::SGD<double> sgd(net.parameters(), 0.5);
    nn::Trainer<double> trainer(net, sgd, 4, 7);
    trainer.set_replay(replay);
    const nn::DataLoader<double> data(parity_tokens());
    std::vector<double> losses;
    for (std::size_t epoch = 0; epoch < 3; ++epoch) losses.push_back(trainer.train_epoch(data, epoch).loss);
    return losses;
}

}  // namespace

TEST_CASE("a model with an Embedding trains the same with replay on and off", "[trainer][replay]") {
    // The Embedding reads its ids outside the tape: a replay would gather the first batch's
    // tokens every step. The Trainer must record such a model's every step instead.
    const std::vector<double> recorded = embedding_losses(false), replayed = embedding_losses(true);
    REQUIRE(recorded[2] < recorded[0]);  // it does learn
    REQUIRE(replayed == recorded);       // bit for bit
}

TEST_CASE("the Trainer refuses an optimizer with no parameters or with one the model does not have",
          "[trainer][errors]") {
    Regressor net;
    nn::SGD<double> empty(std::vector<autodiff::Parameter<double>*>{}, 0.1);
    REQUIRE_THROWS_WITH(nn::Trainer<double>(net, empty, nn::mse_loss<double>(), 4, 0),
                        Contains("the optimizer has no parameters"));
    autodiff::Parameter<double> stray(Matrix<double>({2, 2}), "stray");
    std::vector<autodiff::Parameter<double>*> list = net.parameters();
    list.push_back(&stray);
    nn::SGD<double> foreign(list, 0.1);
    REQUIRE_THROWS_WITH(nn::Trainer<double>(net, foreign, nn::mse_loss<double>(), 4, 0),
                        Contains("'stray' (2x2)") && Contains("is not a parameter of the model"));
    list.back() = list.front();  // updated twice per step
    nn::SGD<double> twice(list, 0.1);
    REQUIRE_THROWS_WITH(nn::Trainer<double>(net, twice, nn::mse_loss<double>(), 4, 0),
                        Contains("lists the parameter '0.W' twice"));
}

TEST_CASE("fine-tuning the head only: the frozen layer's gradients do not pile up and clipping sees the head's",
          "[trainer][finetune]") {
    // One example, one batch: the Trainer's single step against the same step by hand.
    const nn::RegressionData<double> data = sine(1, 3);
    Regressor net, reference;
    auto& head = static_cast<nn::Linear<double>&>(net[2]);
    auto& body = static_cast<nn::Linear<double>&>(net[0]);
    const Matrix<double> frozen = body.W.value;
    nn::SGD<double> sgd({&head.W, &head.b}, 0.1);
    nn::Trainer<double> trainer(net, sgd, nn::mse_loss<double>(), 1, 0);
    trainer.set_clip_grad_norm(1e-3);
    trainer.train_epoch(data, 0);

    auto& reference_head = static_cast<nn::Linear<double>&>(reference[2]);
    const std::vector<autodiff::Parameter<double>*> head_parameters{&reference_head.W, &reference_head.b};
    autodiff::Tape<double> tape;
    tape.backward(autodiff::mse(reference(tape.constant(data.inputs)), tape.constant(data.targets)));
    REQUIRE(nn::clip_grad_norm(head_parameters, 1e-3) > 1e-2);  // the clipping bites
    nn::SGD<double>(head_parameters, 0.1).step();

    test::require_close(head.W.value, reference_head.W.value, 1e-15);
    test::require_close(head.b.value, reference_head.b.value, 1e-15);
    REQUIRE(test::max_abs_diff(body.W.value, frozen) == 0);
    // Zeroed: the next step starts clean.
    REQUIRE(test::max_abs_diff(body.W.grad, xt::zeros_like(body.W.grad)) == 0);
    REQUIRE(test::max_abs_diff(body.b.grad, xt::zeros_like(body.b.grad)) == 0);
}
TEST_CASE("a container is replayable only when all its children are", "[trainer][replay]") {
    nn::Sequential<double> inner;
    inner.add<nn::Linear<double>>(2, 2);
    nn::Sequential<double> outer;
    outer.append("inner", inner);
    REQUIRE(outer.replayable());
    inner.add<nn::Embedding<double>>(3, 2);
    REQUIRE_FALSE(inner.replayable());
    REQUIRE_FALSE(outer.replayable());
}

TEST_CASE("the Trainer refuses a layer appended to the model after it was built, naming its parameter", "[trainer]") {
    // The appended layer was never trained: the optimizer, built before it, does not list it,
    // and its gradient piled up step after step (-7.08 after one epoch of Iris), silently.
    nn::Sequential<double> model;
    model.add<nn::Linear<double>>(4, 8, 1u);
    nn::Adam<double> adam(model.parameters(), 0.01);
    nn::Trainer<double> trainer(model, adam, 16, 0);
    model.add<nn::Linear<double>>(8, 3, 2u);
    REQUIRE_THROWS_WITH(trainer.train_epoch(nn::DataLoader<double>(nn::iris<double>()), 0),
                        Contains("the parameter '1.b' (3x1) joined Sequential(0=Linear(4, 8), 1=Linear(8, 3))") &&
                            Contains("after the Trainer was built, so its optimizer would never update it"));
}

TEST_CASE("the Trainer refuses a layer of the model destroyed after it was built, naming its parameter", "[trainer]") {
    // A layer appended by reference and destroyed: each epoch's first check read its weights
    // in freed memory (heap-use-after-free under ASan) before the Sequential refused it.
    nn::Sequential<double> model;
    auto first = std::make_unique<nn::Linear<double>>(4, 8, 1u);
    model.append("first", *first);
    model.add<nn::Linear<double>>(8, 3, 2u);
    nn::SGD<double> sgd(model.parameters(), 0.1);
    nn::Trainer<double> trainer(model, sgd, 16, 0);
    first.reset();
    const nn::DataLoader<double> iris(nn::iris<double>());
    REQUIRE_THROWS_WITH(trainer.train_epoch(iris, 0),
                        Contains("Trainer::train_epoch: parameter 'first.W' was destroyed or moved from after the "
                                 "Trainer was made"));
    REQUIRE_THROWS_WITH(trainer.evaluate(iris), Contains("Trainer::evaluate: parameter 'first.W'"));
}

TEST_CASE("a BatchNorm frozen in evaluation mode stays frozen through train_epoch and evaluate", "[trainer]") {
    // Fine-tuning with frozen batch statistics: bn.eval() inside a model in training mode. The
    // Trainer switched the whole model to training mode every epoch, and evaluate() restored
    // the root's mode to every module, so the frozen statistics moved, silently.
    nn::Sequential<double> model;
    model.add<nn::Linear<double>>(4, 6, 1u);
    auto& bn = model.add<nn::BatchNorm<double>>(6);
    model.add<nn::Linear<double>>(6, 3, 2u);
    nn::Adam<double> adam(model.parameters(), 0.01);
    nn::Trainer<double> trainer(model, adam, 16, 0);
    const nn::DataLoader<double> iris(nn::iris<double>());
    bn.eval();
    const autodiff::Matrix<double> mean = bn.running_mean, var = bn.running_var;
    trainer.train_epoch(iris, 0);
    trainer.evaluate(iris);
    CHECK_FALSE(bn.is_training());
    trainer.train_epoch(iris, 1);
    REQUIRE((bn.running_mean == mean));
    REQUIRE((bn.running_var == var));
    REQUIRE(model.is_training());
    REQUIRE(model[0].is_training());
}

// A BatchNorm cannot train on a batch of 1 example: 9 examples in batches of 4 left one over,
// refused at the end of the epoch. set_drop_last leaves that part batch out.
TEST_CASE("set_drop_last leaves out the last part batch, as a BatchNorm needs", "[trainer]") {
    struct Normalized : nn::Sequential<double> {
        Normalized() {
            add<nn::Linear<double>>(1, 8, 1u, nn::Init::glorot);
            add<nn::BatchNorm<double>>(8);
            add<nn::Linear<double>>(8, 1, 2u, nn::Init::glorot);
        }
    };
    const auto data = sine(9, 3);
    Normalized net;
    nn::SGD<double> sgd(net.parameters(), 0.01);
    nn::Trainer<double> trainer(net, sgd, nn::mse_loss<double>(), 4, 0);
    CHECK_THROWS_WITH(trainer.train_epoch(data, 0), Contains("at least 2 examples") && Contains("set_drop_last"));

    Normalized fresh;
    nn::SGD<double> sgd2(fresh.parameters(), 0.01);
    nn::Trainer<double> dropping(fresh, sgd2, nn::mse_loss<double>(), 4, 0);
    dropping.set_drop_last(true);
    std::vector<std::size_t> batches;
    const nn::EpochStats stats = dropping.train_epoch(data, 0, [&](const nn::Progress& p) { batches.push_back(p.batches); });
    CHECK(stats.examples == 8);
    CHECK(batches == std::vector<std::size_t>{2, 2});
    CHECK(std::isfinite(stats.loss));

    // Fewer examples than a batch: nothing to train on, said as such; evaluation takes them all.
    dropping.set_drop_last(true);
    CHECK_THROWS_WITH(dropping.train_epoch(sine(3, 4), 0), Contains("3 examples make no whole batch of 4"));
    CHECK(dropping.evaluate(data).examples == 9);
}

namespace {

struct Transpose : nn::Module<double> {
    autodiff::Var<double> forward(autodiff::Var<double> x) override { return autodiff::transpose(x); }
};

}  // namespace

TEST_CASE("a classification loss whose output has another number of columns than the batch has labels is refused",
          "[trainer]") {
    // Found by an attack: a loss left with Loss::classification's default (true) over an
    // output that is not one column per example had count_correct read the labels past their
    // end (a heap overflow under ASan; garbage accuracies otherwise).
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(4, 3, 1u);
    net.add<Transpose>();
    nn::SGD<double> sgd(net.parameters(), 0.1);
    const nn::Loss<double> loss{[](autodiff::Var<double> out, const nn::Batch<double>&) { return autodiff::mean(out); }};
    nn::Trainer<double> trainer(net, sgd, loss, 2, 1);
    const nn::DataLoader<double> data(nn::iris<double>());
    const std::string refused = "count_correct: the output is 2x3 (3 columns, one per example) but the batch has 2 "
                                "labels; a loss that is not a classification says so (Loss::classification = false)";
    REQUIRE_THROWS_WITH(trainer.train_epoch(data, 0), refused);
    REQUIRE_THROWS_WITH(trainer.evaluate(data), refused);
    // A regression (no labels at all) trained with a loss left a classification: each step
    // read labels of an empty vector (SIGSEGV). It is refused before any step.
    nn::Trainer<double> regression(net, sgd, loss, 2, 1);
    const nn::RegressionData<double> unlabelled{Matrix<double>(xt::ones<double>({4, 4})),
                                                Matrix<double>(xt::ones<double>({3, 4}))};
    REQUIRE_THROWS_WITH(regression.train_epoch(unlabelled, 0),
                        Contains("the loss counts accuracy against class labels (Loss::classification), but "
                                 "RegressionData has targets and no labels"));
}

TEST_CASE("evaluate refuses a loss that is not one number, as training does", "[trainer]") {
    // Found by an attack: evaluation, which runs no backward, reported the first element of a
    // 3x8 "loss" (9.085) as the loss, where train_epoch refused it.
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(4, 3, 1u);
    nn::SGD<double> sgd(net.parameters(), 0.1);
    const nn::Loss<double> loss{[](autodiff::Var<double> out, const nn::Batch<double>&) { return autodiff::square(out); },
                                false};
    nn::Trainer<double> trainer(net, sgd, loss, 8, 1);
    const nn::DataLoader<double> data(nn::iris<double>());
    REQUIRE_THROWS_WITH(trainer.evaluate(data),
                        "Trainer::evaluate: the loss is 3x8, not 1x1 (a loss reduces to one number: take its mean or sum)");
    REQUIRE_THROWS_WITH(trainer.train_epoch(data, 0), Contains("the output is 3x8, not 1x1"));
}

TEST_CASE("a weight given non-finite is named by evaluation and training instead of blamed on the rate or the features",
          "[trainer]") {
    // Found by an attack: a Linear given a NaN weight evaluated to a NaN loss reported as
    // "the model's weights are finite, but the features times the weights overflow".
    Matrix<double> W = xt::ones<double>({3, 4});
    W(1, 2) = std::nan("");
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(W, Matrix<double>(xt::zeros<double>({3, 1})));
    nn::SGD<double> sgd(net.parameters(), 0.1);
    nn::Trainer<double> trainer(net, sgd, 16, 1);
    const nn::DataLoader<double> data(nn::iris<double>());
    REQUIRE_THROWS_WITH(trainer.evaluate(data),
                        Contains("evaluation: the loss is not finite (nan): parameter 0.W is not finite: ") &&
                            Contains("(a weight given or assigned so") && !Contains("weights are finite"));
    // Training from it was stopped by its first step as "the loss is not finite (nan). Try a
    // lower learning rate" (found by an attack).
    REQUIRE_THROWS_WITH(trainer.train_epoch(data, 2),
                        Contains("Trainer::train_epoch: before epoch 3: parameter 0.W is not finite: ") &&
                            Contains("(a weight given or assigned so") && !Contains("learning rate"));
}

// Found by an attack: a NaN target (or an infinite feature) reached the loss of the first
// step, whose update made every weight NaN; training stopped with "the loss is not finite
// (nan). Try a lower learning rate", and the next epoch blamed the weights as "given or
// assigned so". The data is refused instead, naming where, before any weight changes.
TEST_CASE("data holding NaN or Inf is refused by name, before a step changes any weight", "[trainer]") {
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(2, 1, 1u);
    const Matrix<double> W = net.parameters()[0]->value;
    nn::SGD<double> sgd(net.parameters(), 0.01);
    nn::Trainer<double> trainer(net, sgd, nn::mse_loss<double>(), 4, 0);
    const nn::RegressionData<double> nan_target{Matrix<double>{{1, 2, 3, 4}, {0, 1, 0, 1}}, Matrix<double>{{1, NAN, 3, 4}}};
    REQUIRE_THROWS_WITH(trainer.train_epoch(nan_target, 0),
                        Contains("RegressionData: the targets (1x4) hold nan at row 0, column 1") && !Contains("learning rate"));
    REQUIRE_THROWS_WITH(trainer.evaluate(nan_target), Contains("RegressionData: the targets (1x4) hold nan"));
    const nn::RegressionData<double> inf_input{Matrix<double>{{1, 2, 3, 4}, {0, INFINITY, 0, 1}}, Matrix<double>{{1, 2, 3, 4}}};
    REQUIRE_THROWS_WITH(trainer.train_epoch(inf_input, 0), Contains("RegressionData: the inputs (2x4) hold inf at row 1, column 1"));
    REQUIRE((net.parameters()[0]->value == W));

    nn::Dataset<double> classes = nn::iris<double>();
    classes.features(3, 17) = -INFINITY;
    REQUIRE_THROWS_WITH(nn::DataLoader<double>(classes), Contains("DataLoader: the features (4x150) hold -inf at row 3, column 17"));
}

namespace {

// Rank 1 of 2, alone: its sums count every rank as holding what it holds.
struct SecondOfTwo : nn::GradientSync<double> {
    int rank() const override { return 1; }
    int ranks() const override { return 2; }
    void attach(autodiff::Tape<double>&) override {}
    void detach(autodiff::Tape<double>&) override {}
    void begin_step(std::size_t, std::size_t) override {}
    void finish() override {}
    void sum(double* values, std::size_t n) override {
        for (std::size_t i = 0; i < n; ++i) values[i] *= 2;
    }
};

}  // namespace

TEST_CASE("a batch size near 2^64 takes every example in one batch", "[trainer]") {
    // Found by an attack: (n + batch_size - 1) / batch_size wrapped around to 0 batches
    // ("nothing to train on ... set_drop_last drops a part batch", with drop_last off), and an
    // evaluation of rank 1 of 2 stepped first + batch_size around to one example below its
    // start, 76 times over: its loss summed 76 overlapping batches.
    nn::Sequential<double> net;
    net.add<nn::Linear<double>>(4, 3, 1u);
    nn::SGD<double> sgd(net.parameters(), 0.1);
    const std::size_t huge = std::numeric_limits<std::size_t>::max();
    nn::Trainer<double> trainer(net, sgd, huge, 1);
    const nn::DataLoader<double> data(nn::iris<double>());
    std::size_t batches = 0;
    CHECK(trainer.train_epoch(data, 0, [&](const nn::Progress& p) { batches = p.batches; }).examples == 150);
    CHECK(batches == 1);
    SecondOfTwo sync;
    trainer.set_gradient_sync(&sync);
    nn::Trainer<double> whole(net, sgd, 150, 1);
    whole.set_gradient_sync(&sync);
    CHECK(trainer.evaluate(data).loss == whole.evaluate(data).loss);
}

// Found by an attack: each failed in its first step with a message about the tape
// ("constant_ref: empty 0x0 matrix", "logits are 1x8 but 0 class labels were given").
TEST_CASE("data of the wrong kind for the loss is refused naming both", "[trainer]") {
    Regressor regressor;
    nn::SGD<double> sgd(regressor.parameters(), 0.1);
    nn::Trainer<double> classifying(regressor, sgd, 8, 0);
    const std::string regression = "Trainer: the loss counts accuracy against class labels (Loss::classification), but "
                                   "RegressionData has targets and no labels";
    CHECK_THROWS_WITH(classifying.train_epoch(sine(16, 1), 0), Contains(regression));
    CHECK_THROWS_WITH(classifying.evaluate(sine(16, 1)), Contains(regression));

    nn::Linear<double> linear(4, 3, 0u);
    nn::SGD<double> sgd2(linear.parameters(), 0.1);
    nn::Trainer<double> regressing(linear, sgd2, nn::mse_loss<double>(), 8, 0);
    const nn::DataLoader<double> iris(nn::iris<double>());
    const std::string labels = "mse_loss: the batch has no targets (a DataLoader gives class labels)";
    CHECK_THROWS_WITH(regressing.train_epoch(iris, 0), Contains(labels));
    CHECK_THROWS_WITH(regressing.evaluate(iris), Contains(labels));
}
