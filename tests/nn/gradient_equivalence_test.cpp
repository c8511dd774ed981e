// The engine's gradients through nn::MLP against the notebook's hand-written backprop
// (nn::notebook, which uses no autodiff): on the notebook's own data, against NumPy's
// numbers, and on 120 seeded random networks and batches.

#include <random>

#include <catch2/catch.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/mlp.hpp"
#include "nn/notebook/notebook_backprop.hpp"
#include "nn/optimizers.hpp"
#include "tolerance.hpp"

using autodiff::Matrix;
using test::max_abs_diff;

namespace {

nn::notebook::Parameters<double> parameters_of(nn::MLP<double>& net) {
    nn::notebook::Parameters<double> p;
    for (auto& layer : net.layers) {
        p.W.push_back(layer.W.value);
        p.b.push_back(layer.b.value);
    }
    return p;
}

// One engine step's gradients (accumulated into the parameters) and the loss value.
double engine_backward(nn::MLP<double>& net, const Matrix<double>& X, const Matrix<double>& Y) {
    autodiff::Tape<double> tape;
    net.zero_grad();
    autodiff::Var<double> loss = autodiff::softmax_cross_entropy(net(tape, X), Y);
    tape.backward(loss);
    return loss.value()(0, 0);
}

double worst_gradient_gap(nn::MLP<double>& net, const nn::notebook::Gradients<double>& hand) {
    double worst = 0;
    for (std::size_t l = 0; l < net.layers.size(); ++l) {
        worst = std::max(worst, max_abs_diff(net.layers[l].W.grad, hand.dW[l]));
        worst = std::max(worst, max_abs_diff(net.layers[l].b.grad, hand.db[l]));
    }
    return worst;
}

Matrix<double> load(const std::string& name) {
    return xt::load_npy<double>(std::string(TAPEGRAD_TEST_DATA) + "/notebook/" + name + ".npy");
}

}  // namespace

TEST_CASE("nn::MLP with the notebook initialiser draws the notebook's parameters", "[equivalence]") {
    const auto run = nn::notebook::notebook_execution<double>();
    nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, 1);
    for (std::size_t l = 0; l < 3; ++l) {
        REQUIRE((net.layers[l].W.value == run.parameters.W[l]));
        REQUIRE((net.layers[l].b.value == run.parameters.b[l]));
        REQUIRE((net.layers[l].W.value == load("W" + std::to_string(l + 1))));
    }
}

TEST_CASE("on the notebook's data, engine gradients equal the hand-written ones and NumPy's", "[equivalence]") {
    const auto run = nn::notebook::notebook_execution<double>();
    nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, 1);
    engine_backward(net, run.X, run.Y);

    const auto activations = nn::notebook::forward_prop(run.X, run.parameters);
    const auto hand = nn::notebook::backward_prop(run.X, run.Y, run.parameters, activations);
    const double gap = worst_gradient_gap(net, hand);
    INFO("max |engine - hand-written| = " << gap);
    REQUIRE(gap <= 1e-12);
    for (std::size_t l = 0; l < 3; ++l) {
        const std::string n = std::to_string(l + 1);
        REQUIRE(max_abs_diff(net.layers[l].W.grad, load("dL_dW" + n)) <= 1e-12);
        REQUIRE(max_abs_diff(net.layers[l].b.grad, load("dL_db" + n)) <= 1e-12);
    }

    // One SGD step is the notebook's update_parameters.
    nn::SGD<double> sgd(net.parameters(), 0.01);
    sgd.step();
    for (std::size_t l = 0; l < 3; ++l) {
        const std::string n = std::to_string(l + 1);
        REQUIRE(max_abs_diff(net.layers[l].W.value, load("W" + n + "_updated")) <= 1e-14);
        REQUIRE(max_abs_diff(net.layers[l].b.value, load("b" + n + "_updated")) <= 1e-14);
    }
}

TEST_CASE("engine gradients equal the hand-written ones on 120 random networks and batches", "[equivalence]") {
    std::mt19937_64 rng(2024);
    std::uniform_int_distribution<std::size_t> batch(1, 257), width(1, 24), depth(1, 3), classes(2, 9);
    double worst = 0;
    for (int c = 0; c < 120; ++c) {
        std::vector<std::size_t> sizes = {width(rng)};
        const std::size_t hidden_layers = depth(rng);
        for (std::size_t h = 0; h < hidden_layers; ++h) sizes.push_back(width(rng));
        sizes.push_back(classes(rng));
        const std::size_t m = (c < 3) ? std::size_t(1) : batch(rng);  // m = 1 always included
        nn::MLP<double> net(sizes, nn::Activation::relu, c % 2 ? nn::Init::he : nn::Init::notebook,
                            static_cast<std::uint32_t>(c));

        nn::NumpyRandom data_rng(static_cast<std::uint32_t>(1000 + c));
        Matrix<double> X = data_rng.randn(sizes.front(), m);
        // Exact zeros in Z: zero biases plus all-zero example columns make Z = W 0 + 0 = 0,
        // where ReLU's derivative must be 0 in both (the notebook's Z > 0).
        if (c % 3 == 0) {
            for (auto& layer : net.layers) layer.b.value.fill(0.0);
            for (std::size_t j = 0; j < m; j += 2) xt::view(X, xt::all(), j) = 0.0;
        }
        std::vector<std::int64_t> labels = data_rng.choice(static_cast<std::int64_t>(sizes.back()), m);
        const Matrix<double> Y = nn::notebook::one_hot<double>(labels, sizes.back());

        engine_backward(net, X, Y);
        const auto params = parameters_of(net);
        const auto hand = nn::notebook::backward_prop(X, Y, params, nn::notebook::forward_prop(X, params));
        const double gap = worst_gradient_gap(net, hand);
        INFO("case " << c << ", m = " << m << ", worst gap " << gap);
        REQUIRE(gap <= 1e-12);
        worst = std::max(worst, gap);
    }
    WARN("worst |engine - hand-written| over 120 random cases: " << worst);
}

TEST_CASE("an X or Y that does not fit the network names the layer and the shapes", "[equivalence][errors]") {
    nn::MLP<double> net({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, 1);
    autodiff::Tape<double> tape;
    using Catch::Matchers::Contains;
    REQUIRE_THROWS_WITH(net(tape, Matrix<double>(xt::zeros<double>({4, 10}))),
                        Contains("layer1 (Linear(5, 10)): its input is 4x10 but it takes 5 features"));
    tape.reset();
    auto logits = net(tape, Matrix<double>(xt::zeros<double>({5, 10})));
    REQUIRE_THROWS_WITH(autodiff::softmax_cross_entropy(logits, Matrix<double>(xt::zeros<double>({3, 10}))),
                        Contains("logits is 4x10 but Y is 3x10"));
}
