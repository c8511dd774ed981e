// Every layer's value and gradients against PyTorch in float64 (tests/data/torch_nn/generate.py),
// batch norm in both modes with its running statistics; dropout's masks in both modes.

#include <catch2/catch.hpp>

#include <limits>
#include <string>
#include <utility>

#include "../autodiff/torch_fixture.hpp"
#include "nn/convolution.hpp"
#include "nn/dropout.hpp"
#include "nn/embedding.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/normalization.hpp"
#include "nn/numpy_random.hpp"

using autodiff::Matrix;
using autodiff::Parameter;
using autodiff::Var;
using Catch::Matchers::Contains;

namespace {

constexpr double tolerance = 1e-12;

// Runs the layer on the case's x with its seed; checks the value and every gradient named.
void check(nn::Module<double>& layer, const test::FixtureCase& c,
           const std::vector<std::pair<Parameter<double>*, std::string>>& parameters) {
    for (auto& [p, key] : parameters) p->value = c[key];
    layer.zero_grad();
    autodiff::Tape<double> tape;
    Var<double> x = tape.leaf(c["x"]);
    Var<double> y = layer(x);
    tape.backward(y, c["seed"]);
    test::require_matches_torch(y.value(), c["out"], c.name + " out", tolerance);
    test::require_matches_torch(x.grad(), c["grad_x"], c.name + " grad_x", tolerance);
    for (auto& [p, key] : parameters) test::require_matches_torch(p->grad, c["grad_" + key], c.name + " grad " + key, tolerance);
}

bool starts(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("layers match PyTorch's values and gradients in float64", "[layers][torch]") {
    std::size_t checked = 0;
    for (const test::FixtureCase& c : test::load_torch_fixture("torch_nn/layers.txt")) {
        const std::vector<std::size_t> n = c.numbers();
        INFO(c.name);
        if (starts(c.name, "linear")) {
            nn::Linear<double> layer(n[0], n[1]);
            check(layer, c, {{&layer.W, "weight"}, {&layer.b, "bias"}});
        } else if (starts(c.name, "layernorm")) {
            nn::LayerNorm<double> layer(n[0]);
            check(layer, c, {{&layer.gain, "weight"}, {&layer.bias, "bias"}});
        } else if (starts(c.name, "batchnorm")) {
            nn::BatchNorm<double> layer(n[0]);
            layer.running_mean = c["running_mean_before"];
            layer.running_var = c["running_var_before"];
            layer.train(starts(c.name, "batchnorm_train"));
            check(layer, c, {{&layer.gain, "weight"}, {&layer.bias, "bias"}});
            test::require_matches_torch(layer.running_mean, c["running_mean"], c.name + " running_mean", tolerance);
            test::require_matches_torch(layer.running_var, c["running_var"], c.name + " running_var", tolerance);
        } else if (starts(c.name, "embedding")) {
            nn::Embedding<double> layer(n[0], n[1]);
            layer.table.value = c["table"];
            autodiff::Tape<double> tape;
            Var<double> y = layer(tape, c.indices("ids"));
            tape.backward(y, c["seed"]);
            test::require_matches_torch(y.value(), c["out"], c.name + " out", tolerance);
            test::require_matches_torch(layer.table.grad, c["grad_table"], c.name + " grad table", tolerance);
            // The same through forward(), as in a Sequential: ids as a 1 x m row.
            const Matrix<double> by_ids = y.value();
            tape.reset();
            Var<double> z = layer(tape.constant(c["ids"]));
            REQUIRE((z.value() == by_ids));
        } else if (starts(c.name, "conv2d")) {
            nn::Conv2d<double> layer({n[0], n[2], n[2]}, n[1], n[3], n[4]);
            check(layer, c, {{&layer.W, "weight"}, {&layer.b, "bias"}});
        } else if (starts(c.name, "maxpool")) {
            nn::MaxPool2d<double> layer({n[0], n[1], n[1]}, n[2]);
            check(layer, c, {});
        } else if (starts(c.name, "avgpool")) {
            nn::AvgPool2d<double> layer({n[0], n[1], n[1]}, n[2]);
            check(layer, c, {});
        } else {
            FAIL("no layer for fixture case " << c.name);
        }
        ++checked;
    }
    REQUIRE(checked == 25);
}

TEST_CASE("dropout: inverted masks in training, identity in evaluation, resumable masks", "[layers][dropout]") {
    nn::Dropout<double> drop(0.25, 7);
    nn::NumpyRandom rng(3);
    const Matrix<double> x = rng.randn(40, 50) + 3.0, seed = rng.randn(40, 50);
    autodiff::Tape<double> tape;
    Var<double> in = tape.leaf(x);
    Var<double> y = drop(in);
    tape.backward(y, seed);
    std::size_t dropped = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        const double kept = y.value().data()[k] == 0 ? 0.0 : 1.0;
        dropped += kept == 0;
        REQUIRE_THAT(y.value().data()[k], Catch::Matchers::WithinRel(kept * x.data()[k] / 0.75, 1e-15));
        REQUIRE_THAT(in.grad().data()[k], Catch::Matchers::WithinRel(kept * seed.data()[k] / 0.75, 1e-15));
    }
    REQUIRE(dropped > 400);  // 25% of 2000, give or take
    REQUIRE(dropped < 600);
    REQUIRE(drop.counter() == 2000);

    // A second layer set to the first's counter draws the same next mask.
    const Matrix<double> first_next = [&] {
        tape.reset();
        return Matrix<double>(drop(tape.constant(x)).value());
    }();
    nn::Dropout<double> resumed(0.25, 7);
    for (const auto& b : resumed.named_buffers()) *b.item = Matrix<double>{{0.0}, {0.0}, {2000.0}};
    tape.reset();
    REQUIRE((resumed(tape.constant(x)).value() == first_next));

    drop.eval();
    tape.reset();
    Var<double> e = tape.leaf(x);
    Var<double> ye = drop(e);
    tape.backward(ye, seed);
    REQUIRE((ye.value() == x));
    REQUIRE((e.grad() == seed));
    REQUIRE(drop.counter() == 4000);  // evaluation draws nothing
    REQUIRE_THROWS_WITH(nn::Dropout<double>(1.0), Contains("p must be in [0, 1)"));
    // A p below 1 that a float holds as 1 was refused only by the first training step, as
    // "dropout: p is 1.000000" (found by an attack).
    REQUIRE_THROWS_WITH(nn::Dropout<float>(0.99999999),
                        "Dropout: p 0.99999999 is 1 as a float (the largest float below 1 is 0.99999994)");
    REQUIRE(nn::Dropout<double>(0.99999999).describe() == "Dropout(1, seed=0)");
}

TEST_CASE("a misfit input names the layer, the shape it got and the shape it takes", "[layers][errors]") {
    autodiff::Tape<double> tape;
    nn::Conv2d<double> conv({1, 28, 28}, 4, 3, 1);
    nn::MaxPool2d<double> pool(conv.output_shape(), 2);
    REQUIRE(pool.output_shape().height == 14);
    nn::Conv2d<double> conv2(pool.output_shape(), 8, 3, 1);
    REQUIRE(conv2.describe() == "Conv2d(4x14x14, 8, 3, padding=1)");
    REQUIRE_THROWS_WITH(conv2(tape.constant(xt::zeros<double>({3136, 2}))),
                        Contains("Conv2d(4x14x14, 8, 3, padding=1): its input is 3136x2 but it takes 784 rows: "
                                 "4x14x14 images as columns (channels x height x width)"));
    REQUIRE_THROWS_WITH(pool(tape.constant(xt::zeros<double>({10, 2}))),
                        Contains("MaxPool2d(4x28x28, 2): its input is 10x2 but it takes 3136 rows"));
    nn::BatchNorm<double> bn(3);
    REQUIRE_THROWS_WITH(bn(tape.constant(xt::zeros<double>({3, 1}))), Contains("training needs at least 2 examples"));
    bn.eval();
    REQUIRE(bn(tape.constant(xt::zeros<double>({3, 1}))).shape() == autodiff::Shape{3, 1});
    // A negative running variance (a finite checkpoint's, found by an attack) made every output NaN.
    bn.running_var(1, 0) = -1.0;
    REQUIRE_THROWS_WITH(bn(tape.constant(xt::zeros<double>({3, 1}))),
                        Contains("running_var holds -1.000000 at row 1 (a variance of data is finite and never negative"));
    // A NaN running mean made every output NaN the same way (found by an attack).
    bn.running_var(1, 0) = 1.0;
    bn.running_mean(2, 0) = std::nan("");
    REQUIRE_THROWS_WITH(bn(tape.constant(xt::zeros<double>({3, 1}))), Contains("running_mean holds nan at row 2"));
    // An infinite running variance passed as "never negative": its feature came out as the bias
    // whatever the input, silently (found by an attack).
    bn.running_mean(2, 0) = 0.0;
    bn.running_var(0, 0) = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_WITH(bn(tape.constant(xt::ones<double>({3, 1}))), Contains("running_var holds inf at row 0"));
    bn.running_var(0, 0) = 1.0;
    REQUIRE_THROWS_WITH(nn::LayerNorm<double>(4)(tape.constant(xt::zeros<double>({5, 2}))),
                        Contains("LayerNorm(4, eps=1e-05): its input is 5x2 but it takes 4 features"));
    nn::Embedding<double> emb(5, 2);
    REQUIRE_THROWS_WITH(emb(tape, autodiff::Labels{1, 5}), Contains("id 5 (example 1) is outside the vocabulary of 5"));
}

TEST_CASE("an Embedding refuses an id that is not a whole number inside its vocabulary, naming it", "[layers][errors]") {
    // Inf and ids past 2^64 used to reach an undefined static_cast and came out as token 0.
    autodiff::Tape<double> tape;
    nn::Embedding<double> emb(10, 2);
    const std::pair<double, std::string> bad[] = {
        {std::numeric_limits<double>::infinity(), "inf"},
        {1e30, "1e+30"},
        {18446744073709551616.0, "1.8446744073709552e+19"},  // 2^64
        {10, "10"},
        {-1, "-1"},
        {2.5, "2.5"},
        {std::numeric_limits<double>::quiet_NaN(), "nan"}};
    for (const auto& [id, shown] : bad) {
        CAPTURE(shown);
        Matrix<double> x({1, 2});
        x(0, 0) = 3;
        x(0, 1) = id;
        REQUIRE_THROWS_WITH(emb(tape.constant(x)),
                            Contains("Embedding(10, 2): example 1 holds " + shown +
                                     ", not a token id (a whole number from 0 to 9)"));
    }
}

TEST_CASE("float normalisation layers refuse an eps that is 0 or infinite as a float", "[layers][errors]") {
    // Found by an attack: BatchNorm<float>(3, 0.1, 1e-300) computed with eps 0, and in
    // evaluation a feature whose running variance was 0 made every output NaN, silently.
    REQUIRE_THROWS_WITH(nn::BatchNorm<float>(3, 0.1, 1e-300),
                        "BatchNorm(3, momentum=0.1, eps=1e-300): eps must be a positive finite number as a float too, "
                        "and it is 0.000000 as one");
    REQUIRE_THROWS_WITH(nn::LayerNorm<float>(3, 1e300),
                        "LayerNorm(3, eps=1e+300): eps must be a positive finite number as a float too, and it is "
                        "inf as one");
    REQUIRE(nn::BatchNorm<double>(3, 0.1, 1e-300).describe() == "BatchNorm(3, momentum=0.1, eps=1e-300)");
}

TEST_CASE("an Embedding<float> fed ids as values refuses a vocabulary whose ids a float cannot all hold", "[layers][errors]") {
    // Found by an attack: with a vocabulary of 2^24 + 2, the last ids cannot all be told apart
    // as floats (2^24 + 1 is stored as 2^24, a silent wrong token), and the valid id 2^24 was
    // refused as "holds 16777216, not a token id (a whole number from 0 to 16777217)". The ids
    // given as Labels still reach every token.
    autodiff::Tape<float> tape;
    nn::Embedding<float> wide((std::size_t(1) << 24) + 2, 1);
    const Matrix<float> x = {{16777216.f}};
    REQUIRE_THROWS_WITH(wide(tape.constant(x)),
                        Contains("Embedding(16777218, 1): a vocabulary of 16777218 ids is more than a float holds "
                                 "exactly (ids up to 16777216); give the ids as Labels: operator()(tape, ids)"));
    REQUIRE(wide(tape, autodiff::Labels{16777217}).shape() == autodiff::Shape{1, 1});
    nn::Embedding<float> widest_exact((std::size_t(1) << 24) + 1, 1, 4);
    REQUIRE(widest_exact(tape.constant(x)).value()(0, 0) == widest_exact.table.value(0, 16777216));
}

TEST_CASE("Conv2d checks its kernel against the image before it draws a single weight", "[layers][errors]") {
    // A kernel of 100000 over 28x28 drew 4e10 weights (320 GB) before conv2d's check ran.
    REQUIRE_THROWS_WITH(nn::Conv2d<double>({1, 28, 28}, 4, 100000),
                        Catch::Matchers::Contains("conv2d") && Catch::Matchers::Contains("larger than the padded image"));
    REQUIRE_THROWS_WITH(nn::Conv2d<double>({1, 28, 28}, 4, 0), Catch::Matchers::Contains("conv2d"));
}

TEST_CASE("a layer size whose weight count wraps around size_t is refused, naming the shape", "[layers][errors]") {
    // train_mlp --hidden 4611686018427387904: the 2^62 x 4 weights (2^64 numbers) wrapped
    // around to an empty buffer, which the initialiser then filled (a segmentation fault).
    const std::size_t huge = std::size_t(1) << 62;
    REQUIRE_THROWS_WITH(nn::Linear<double>(4, huge),
                        Contains("initialise_layer: a 4611686018427387904x4 matrix has more bytes than a size_t"));
    REQUIRE_THROWS_WITH(nn::MLP<float>({4, huge, 3}), Contains("4611686018427387904x4 matrix"));
    REQUIRE_THROWS_WITH(nn::NumpyRandom(0).randn(huge, 4), Contains("NumpyRandom::randn: a 4611686018427387904x4"));
    REQUIRE_THROWS_WITH(nn::NumpyRandom(0).rand(3, huge), Contains("NumpyRandom::rand: a 3x4611686018427387904"));
}
