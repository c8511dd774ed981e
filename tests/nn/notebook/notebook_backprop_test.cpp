// nn::notebook (the C++ port of the notebook's hand-written backprop) against NumPy running the
// notebook itself: tests/data/notebook/generate.py wrote every intermediate it prints or returns.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnpy.hpp>

#include "autodiff/error.hpp"
#include "nn/notebook/notebook_backprop.hpp"
#include "tolerance.hpp"

using Catch::Matchers::WithinAbs;
using nn::notebook::Matrix;

namespace {

xt::xarray<double> fixture(const std::string& name) {
    return xt::load_npy<double>(std::string(TAPEGRAD_TEST_DATA) + "/notebook/" + name + ".npy");
}

// Largest |actual - NumPy|; infinite if the shapes differ.
template <class T>
double max_abs_diff(const Matrix<T>& actual, const std::string& name) {
    INFO(name);
    return test::max_abs_diff(actual, fixture(name));
}

// Checks W1, b1, ... (with a prefix and suffix: "dL_dW1", "W1_updated") against the fixtures.
template <class T>
void require_layers_match(const std::vector<Matrix<T>>& W, const std::vector<Matrix<T>>& b,
                          const std::string& prefix, const std::string& suffix, double tolerance) {
    REQUIRE(W.size() == 3);
    REQUIRE(b.size() == 3);
    for (std::size_t l = 0; l < 3; ++l) {
        const std::string layer = std::to_string(l + 1);
        CHECK(max_abs_diff(W[l], prefix + "W" + layer + suffix) <= tolerance);
        CHECK(max_abs_diff(b[l], prefix + "b" + layer + suffix) <= tolerance);
    }
}

// The loss whose gradient the notebook computes: mean cross-entropy of softmax A_L against Y.
double cross_entropy(const Matrix<double>& X, const Matrix<double>& Y,
                     const nn::notebook::Parameters<double>& parameters) {
    const Matrix<double> A_out = nn::notebook::forward_prop(X, parameters).A.back();
    return -xt::sum(Y * xt::log(A_out))() / static_cast<double>(X.shape(1));
}

}  // namespace

TEST_CASE("notebook_execution reproduces the notebook's X, Y and initial parameters exactly",
          "[nn][notebook]") {
    const auto run = nn::notebook::notebook_execution<double>();
    CHECK(max_abs_diff(run.X, "X") == 0.0);
    CHECK(max_abs_diff(run.Y, "Y") == 0.0);
    require_layers_match(run.parameters.W, run.parameters.b, "", "", 0.0);
}

TEST_CASE("forward_prop, backward_prop and update_parameters equal NumPy's notebook step bit for bit",
          "[nn][notebook]") {
    const auto run = nn::notebook::notebook_execution<double>();
    const auto forwardpass = nn::notebook::forward_prop(run.X, run.parameters);
    REQUIRE(forwardpass.Z.size() == 3);
    CHECK(max_abs_diff(forwardpass.A.back(), "A3") == 0.0);

    const auto gradients = nn::notebook::backward_prop(run.X, run.Y, run.parameters, forwardpass);
    require_layers_match(gradients.dW, gradients.db, "dL_d", "", 0.0);

    const auto updated = nn::notebook::update_parameters(run.parameters, gradients,
                                                         nn::notebook::notebook_learning_rate);
    require_layers_match(updated.W, updated.b, "", "_updated", 0.0);
}

TEST_CASE("the float instantiation follows NumPy's double notebook step to single precision",
          "[nn][notebook]") {
    const auto run = nn::notebook::notebook_execution<float>();
    const auto forwardpass = nn::notebook::forward_prop(run.X, run.parameters);
    CHECK(max_abs_diff(forwardpass.A.back(), "A3") <= 1e-6);
    const auto gradients = nn::notebook::backward_prop(run.X, run.Y, run.parameters, forwardpass);
    require_layers_match(gradients.dW, gradients.db, "dL_d", "", 1e-7);
    const auto updated = nn::notebook::update_parameters(run.parameters, gradients, 0.01f);
    require_layers_match(updated.W, updated.b, "", "_updated", 1e-8);
}

TEST_CASE("backward_prop generalised to 1, 2 and 4 layers matches central differences of the loss",
          "[nn][notebook]") {
    const std::vector<std::vector<std::size_t>> networks{{3, 4}, {3, 6, 4}, {3, 7, 6, 5, 4}};
    for (const auto& layer_sizes : networks) {
        CAPTURE(layer_sizes);
        nn::NumpyRandom rng(2024);
        const std::size_t m = 6;
        const Matrix<double> X = rng.randn(layer_sizes.front(), m);
        const Matrix<double> Y = nn::notebook::one_hot<double>(
            rng.choice(static_cast<std::int64_t>(layer_sizes.back()), m), layer_sizes.back());
        auto parameters = nn::notebook::init_parameters<double>(rng, layer_sizes);
        // Weights of order 1, so ReLUs switch and gradients are far from zero.
        for (auto& W : parameters.W) W *= 100.0;
        for (auto& b : parameters.b) b *= 10.0;

        const auto gradients =
            nn::notebook::backward_prop(X, Y, parameters, nn::notebook::forward_prop(X, parameters));
        const double h = 1e-6;
        auto check = [&](Matrix<double>& p, const Matrix<double>& analytic, const std::string& what) {
            for (std::size_t k = 0; k < p.size(); ++k) {
                const double saved = p.flat(k);
                p.flat(k) = saved + h;
                const double loss_plus = cross_entropy(X, Y, parameters);
                p.flat(k) = saved - h;
                const double loss_minus = cross_entropy(X, Y, parameters);
                p.flat(k) = saved;
                const double numeric = (loss_plus - loss_minus) / (2 * h);
                INFO(what << " entry " << k);
                CHECK(std::abs(analytic.flat(k) - numeric) <= std::max(1e-7, 1e-5 * std::abs(numeric)));
            }
        };
        for (std::size_t l = 0; l < parameters.W.size(); ++l) {
            check(parameters.W[l], gradients.dW[l], "dL_dW" + std::to_string(l + 1));
            check(parameters.b[l], gradients.db[l], "dL_db" + std::to_string(l + 1));
        }
    }
}

TEST_CASE("softmax stays finite for huge inputs and each column sums to one", "[nn][notebook]") {
    const Matrix<double> Z = {{1000.0, -1000.0, 1.0}, {1001.0, -999.0, 2.0}, {999.0, -1001.0, 3.0}};
    const Matrix<double> A = nn::notebook::softmax(Z);
    REQUIRE(xt::all(xt::isfinite(A)));
    for (std::size_t j = 0; j < 3; ++j) CHECK_THAT(A(0, j) + A(1, j) + A(2, j), WithinAbs(1.0, 1e-15));
    CHECK_THAT(A(1, 0), WithinAbs(std::exp(1.0) / (1.0 + std::exp(1.0) + std::exp(-1.0)), 1e-15));
}

TEST_CASE("forward_prop, backward_prop and update_parameters reject mismatched shapes, naming them",
          "[nn][notebook]") {
    using Catch::Matchers::Contains;
    const auto run = nn::notebook::notebook_execution<double>();
    const Matrix<double> X_four_features = xt::zeros<double>({4, 10});
    REQUIRE_THROWS_AS(nn::notebook::forward_prop(X_four_features, run.parameters), autodiff::Error);
    REQUIRE_THROWS_WITH(nn::notebook::forward_prop(X_four_features, run.parameters),
                        Contains("forward_prop") && Contains("W1 is 10x5") && Contains("X has 4 rows"));

    auto bad_bias = run.parameters;
    bad_bias.b[1] = xt::zeros<double>({10, 2});
    REQUIRE_THROWS_WITH(nn::notebook::forward_prop(run.X, bad_bias), Contains("b2 is 10x2"));

    const auto forwardpass = nn::notebook::forward_prop(run.X, run.parameters);
    const Matrix<double> Y_three_classes = xt::zeros<double>({3, 10});
    REQUIRE_THROWS_AS(nn::notebook::backward_prop(run.X, Y_three_classes, run.parameters, forwardpass),
                      autodiff::Error);
    REQUIRE_THROWS_WITH(nn::notebook::backward_prop(run.X, Y_three_classes, run.parameters, forwardpass),
                        Contains("backward_prop") && Contains("Y is 3x10") && Contains("A3 is 4x10"));

    auto gradients = nn::notebook::backward_prop(run.X, run.Y, run.parameters, forwardpass);
    gradients.dW[2] = xt::zeros<double>({10, 4});
    REQUIRE_THROWS_WITH(nn::notebook::update_parameters(run.parameters, gradients, 0.01),
                        Contains("update_parameters") && Contains("dL_dW3 is 10x4"));

    REQUIRE_THROWS_AS(nn::notebook::one_hot<double>({0, 4}, 4), autodiff::Error);
    nn::NumpyRandom rng(1);
    REQUIRE_THROWS_AS(nn::notebook::init_parameters<double>(rng, {5}), autodiff::Error);
}

TEST_CASE("init_parameters refuses layer sizes whose weight count wraps around size_t, naming the shape",
          "[nn][notebook]") {
    // randn(2^62, 4): 2^64 numbers wrapped around to an empty buffer, which was then filled
    // (a segmentation fault).
    nn::NumpyRandom rng(1);
    REQUIRE_THROWS_WITH(nn::notebook::init_parameters<double>(rng, {4, std::size_t(1) << 62}),
                        Catch::Matchers::Contains("NumpyRandom::randn: a 4611686018427387904x4 matrix"));
}

TEST_CASE("a layer of no units, or an input of no features, is refused, naming it", "[nn][notebook]") {
    // init_parameters drew 0-row matrices for a size of 0: a last layer of none made an empty
    // output and backward_prop failed inside xtensor ("Incompatible dimension of arrays",
    // naming nothing), and a hidden one of none trained a network whose output ignored X
    // (found by an attack).
    using Catch::Matchers::Contains;
    nn::NumpyRandom rng(1);
    REQUIRE_THROWS_WITH(nn::notebook::init_parameters<double>(rng, {5, 4, 0}),
                        Contains("init_parameters: layer size 2 (of 5, 4, 0) is 0"));
    REQUIRE_THROWS_WITH(nn::notebook::init_parameters<double>(rng, {5, 0, 4}),
                        Contains("init_parameters: layer size 1 (of 5, 0, 4) is 0"));
    REQUIRE_THROWS_WITH(nn::notebook::init_parameters<double>(rng, {0, 3}),
                        Contains("init_parameters: layer size 0 (of 0, 3) is 0"));
    // Matrices of no rows given by hand are refused by the shape check.
    nn::notebook::Parameters<double> empty_layer;
    empty_layer.W = {xt::zeros<double>({0, 5}), xt::zeros<double>({4, 0})};
    empty_layer.b = {xt::zeros<double>({0, 1}), xt::zeros<double>({4, 1})};
    const Matrix<double> X = xt::ones<double>({5, 3});
    REQUIRE_THROWS_WITH(nn::notebook::forward_prop(X, empty_layer), Contains("forward_prop: W1 is 0x5"));
}

TEST_CASE("backward_prop refuses activations that forward_prop did not make of X, naming them", "[nn][notebook]") {
    // A 1x1 Z2 was broadcast into a silently wrong dL_dZ2; a mis-sized A2 failed inside the
    // dot product as "Dot: shape mismatch.", naming neither.
    using Catch::Matchers::Contains;
    const auto run = nn::notebook::notebook_execution<double>();
    auto tampered = nn::notebook::forward_prop(run.X, run.parameters);
    tampered.Z[1] = xt::ones<double>({1, 1});
    REQUIRE_THROWS_WITH(nn::notebook::backward_prop(run.X, run.Y, run.parameters, tampered),
                        Contains("backward_prop: Z2 is 1x1 but must be 10x10 (W2 rows x X's examples)"));
    tampered = nn::notebook::forward_prop(run.X, run.parameters);
    tampered.A[1] = xt::ones<double>({10, 3});
    REQUIRE_THROWS_WITH(nn::notebook::backward_prop(run.X, run.Y, run.parameters, tampered),
                        Contains("backward_prop: A2 is 10x3 but must be 10x10"));
}

TEST_CASE("one_hot refuses a class count whose matrix size wraps around size_t", "[nn][notebook]") {
    // 2^62 classes x 4 labels wrapped around to an empty buffer that the ones were written into.
    REQUIRE_THROWS_WITH(nn::notebook::one_hot<double>({0, 1, 2, 3}, std::size_t(1) << 62),
                        Catch::Matchers::Contains("one_hot: a 4611686018427387904x4 matrix"));
}

TEST_CASE("update_parameters refuses a learning rate that is not finite", "[nn][notebook]") {
    // A NaN rate turned every weight into NaN, silently.
    const auto run = nn::notebook::notebook_execution<double>();
    const auto gradients =
        nn::notebook::backward_prop(run.X, run.Y, run.parameters, nn::notebook::forward_prop(run.X, run.parameters));
    for (const double rate : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
        REQUIRE_THROWS_WITH(nn::notebook::update_parameters(run.parameters, gradients, rate),
                            Catch::Matchers::Contains("update_parameters: learning_rate is " + std::to_string(rate)));
    }
    REQUIRE_NOTHROW(nn::notebook::update_parameters(run.parameters, gradients, 0.01));
}
