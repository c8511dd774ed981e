// Arrays that NumPy saved (tests/interop/fixtures, made by generate.py beside them) load
// into tapegrad with xt::load_npy and work as weights.

#include <catch2/catch.hpp>

#include <xtensor/xnpy.hpp>

#include "autodiff/autodiff.hpp"
#include "nn/linear.hpp"

using autodiff::Matrix;

namespace {

const std::string fixtures = TAPEGRAD_INTEROP_FIXTURES;

// generate.py's formulas, evaluated in the same order, so equality is exact.
Matrix<double> expected_weights() {
    Matrix<double> W({3, 4});
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 4; ++j) W(i, j) = double(i * 4 + j) / 7.0 - 0.5;
    return W;
}

Matrix<double> expected_bias() {
    Matrix<double> b({3, 1});
    for (std::size_t i = 0; i < 3; ++i) b(i, 0) = (double(i) - 1.0) / 3.0;
    return b;
}

}  // namespace

TEST_CASE("float64 arrays saved by numpy.save load exactly", "[interop]") {
    const Matrix<double> W = xt::load_npy<double>(fixtures + "/weights_f64.npy");
    CHECK((W == expected_weights()));
    const Matrix<double> b = xt::load_npy<double>(fixtures + "/bias_f64.npy");
    CHECK((b == expected_bias()));
}

TEST_CASE("a Fortran-ordered NumPy array loads with the same values", "[interop]") {
    const Matrix<double> W = xt::load_npy<double>(fixtures + "/weights_f64_fortran.npy");
    CHECK((W == expected_weights()));
}

TEST_CASE("float32 arrays saved by NumPy load as float", "[interop]") {
    const Matrix<float> W = xt::load_npy<float>(fixtures + "/weights_f32.npy");
    const Matrix<double> expected = expected_weights();
    REQUIRE(W.shape() == expected.shape());
    for (std::size_t k = 0; k < W.size(); ++k) CHECK(W.data()[k] == static_cast<float>(expected.data()[k]));
}

TEST_CASE("NumPy-saved weights drive a tapegrad layer and get gradients", "[interop]") {
    nn::Linear<double> layer(xt::load_npy<double>(fixtures + "/weights_f64.npy"),
                             xt::load_npy<double>(fixtures + "/bias_f64.npy"), "from_numpy");
    const Matrix<double> X = {{1.0, -1.0}, {0.5, 2.0}, {0.0, 1.0}, {-2.0, 0.25}};
    autodiff::Tape<double> tape;
    autodiff::Var<double> Z = layer(tape.constant(X));
    const Matrix<double> W = expected_weights(), b = expected_bias();
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 2; ++j) {
            double z = b(i, 0);
            for (std::size_t k = 0; k < 4; ++k) z += W(i, k) * X(k, j);
            CHECK_THAT(Z.value()(i, j), Catch::Matchers::WithinAbs(z, 1e-14));
        }
    tape.backward(autodiff::sum(Z));
    CHECK((layer.b.grad == Matrix<double>{{2.0}, {2.0}, {2.0}}));
}
