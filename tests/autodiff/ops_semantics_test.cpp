// What the gradient sweeps and the PyTorch fixtures cannot show: dropout's mask and its
// reproducibility, scalars of every arithmetic type on float and double tapes, how many
// entries concat records, what slice and gather leave untouched, NaN in max, the batch
// statistics batch_norm exposes, and the errors of bad parameters.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "autodiff/autodiff.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

namespace {
Matrix<double> filled(std::size_t rows, std::size_t cols, double v) {
    Matrix<double> m({rows, cols});
    m.fill(v);
    return m;
}
}  // namespace

TEST_CASE("scalars of any arithmetic type mix with float and double handles", "[ops][scalars]") {
    Tape<float> tape;
    Var<float> x = tape.leaf(Matrix<float>({{1.0f, 2.0f}}));
    Var<float> y = 0.5 * x + 1 - 2.0 / x + x / 2 - (3.0f - x) * 2;  // double, int and float literals
    CHECK(y.value()(0, 0) == Approx(0.5 + 1 - 2 + 0.5 - 4).epsilon(0).margin(1e-6));
    CHECK(y.value()(0, 1) == Approx(1 + 1 - 1 + 1 - 2).epsilon(0).margin(1e-6));
    Tape<double> t64;
    Var<double> z = 2 * t64.leaf(filled(1, 1, 3.0)) + 1u;
    CHECK(z.value()(0, 0) == 7.0);
    CHECK_THROWS_WITH(t64.leaf(filled(1, 2, 1.0)) / 0, StartsWith("div_scalar:"));
    CHECK_THROWS_WITH(1 / t64.leaf(filled(1, 2, 0.0)), StartsWith("rdiv_scalar:") && Contains("row 0, column 0"));
}

// Found by an attack: these took a NaN or infinite constant without a word, and the loss and
// every gradient came out NaN; pow, leaky_relu, elu, clamp and softplus refused one already.
TEST_CASE("a NaN or infinite scalar constant is refused, naming the op", "[ops][scalars]") {
    Tape<double> tape;
    const Var<double> x = tape.leaf(filled(1, 2, 1.0));
    for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        CHECK_THROWS_WITH(scale(x, bad), StartsWith("scale: the factor is") && Contains("(it must be finite)"));
        CHECK_THROWS_WITH(x * bad, StartsWith("scale:"));
        CHECK_THROWS_WITH(x + bad, StartsWith("add_scalar: the scalar is"));
        CHECK_THROWS_WITH(bad - x, StartsWith("rsub_scalar:"));
        CHECK_THROWS_WITH(x / bad, StartsWith("div_scalar: the divisor is"));
        CHECK_THROWS_WITH(bad / x, StartsWith("rdiv_scalar:"));
    }
}

TEST_CASE("dropout zeroes with probability p, scales by 1/(1-p), and its mask follows the seed", "[ops][dropout]") {
    Tape<double> tape;
    const Matrix<double> ones = filled(50, 200, 1.0);
    CounterRng rng(2026);
    Var<double> a = dropout(tape.leaf(ones), 0.25, rng);
    CHECK(rng.counter == 10000);
    std::size_t kept = 0;
    for (double v : a.value()) {
        REQUIRE((v == 0.0 || v == Approx(1 / 0.75).epsilon(0).margin(1e-15)));
        kept += v != 0.0;
    }
    CHECK(kept > 7300);  // binomial(10000, 0.75): mean 7500, sd 43
    CHECK(kept < 7700);
    // The same seed and counter give the same mask; the advanced counter a different one.
    CounterRng again(2026);
    CHECK((dropout(tape.leaf(ones), 0.25, again).value() == a.value()));
    CHECK_FALSE((dropout(tape.leaf(ones), 0.25, again).value() == a.value()));
    // p = 0 keeps everything; the gradient is the mask times the scale.
    CounterRng r0(1);
    CHECK((dropout(tape.leaf(ones), 0.0, r0).value() == ones));
    Var<double> x = tape.leaf(ones);
    CounterRng r1(9);
    Var<double> d = dropout(x, 0.5, r1);
    tape.backward(sum(d));
    CHECK((x.grad() == d.value()));
    for (double p : {-0.1, 1.0, std::nan("")}) {
        Tape<double> t;
        CounterRng r(1);
        CHECK_THROWS_WITH(dropout(t.leaf(ones), p, r), StartsWith("dropout:") && Contains("[0, 1)"));
        CHECK(r.counter == 0);  // a refused call draws nothing
    }
}

TEST_CASE("concat of many parts chains entries of at most 3 inputs", "[ops][structure]") {
    Tape<double> tape;
    std::vector<Var<double>> parts;
    for (int i = 0; i < 7; ++i) parts.push_back(tape.leaf(filled(2, 1, i)));
    const std::size_t before = tape.size();
    Var<double> c = concat(parts, 1);
    CHECK(tape.size() - before == 3);  // 3 + 2 + 2
    CHECK((c.value() == Matrix<double>({{0, 1, 2, 3, 4, 5, 6}, {0, 1, 2, 3, 4, 5, 6}})));
}

TEST_CASE("slice and gather add into their range only; repeated ids sum", "[ops][structure]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(Matrix<double>({{1, 2, 3}, {4, 5, 6}}));
    CHECK((gather(x, Labels{1, 0}, 0).value() == Matrix<double>({{4, 5, 6}, {1, 2, 3}})));
    CHECK_THROWS_WITH(gather(x, Labels{3}, 1), StartsWith("gather:") && Contains("id 3") && Contains("2x3"));
    CHECK_THROWS_WITH(slice(x, 0, 1, 3), StartsWith("slice:") && Contains("[1, 3)") && Contains("2x3"));
    // x is used twice: first in full (its gradient written), then sliced (added in range).
    Var<double> loss = sum(x) + sum(slice(x, 1, 1, 3)) + sum(gather(x, Labels{2, 2, 0}, 1));
    tape.backward(loss);
    CHECK((x.grad() == Matrix<double>({{2, 2, 4}, {2, 2, 4}})));
}

TEST_CASE("max takes the first largest element, and NaN as the largest", "[ops][structure]") {
    Tape<double> tape;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    Var<double> x = tape.leaf(Matrix<double>({{1, 5, 5}, {nan, 0, 2}}));
    Var<double> m = max(x, 1);
    CHECK(m.value()(0, 0) == 5);
    CHECK(std::isnan(m.value()(1, 0)));
    tape.backward(m, filled(2, 1, 1.0));
    CHECK((x.grad() == Matrix<double>({{0, 1, 0}, {1, 0, 0}})));
}

TEST_CASE("batch_norm exposes its batch mean and biased variance", "[ops][normalization]") {
    Tape<double> tape;
    Var<double> y = batch_norm(tape.leaf(Matrix<double>({{1, 3}, {2, 2}})));
    const auto stats = batch_norm_statistics(y);
    CHECK((stats.mean == Matrix<double>({{2}, {2}})));
    CHECK((stats.var == Matrix<double>({{1}, {0}})));
    CHECK_THROWS_WITH(batch_norm_statistics(layer_norm(tape.leaf(filled(2, 2, 1.0)))), Contains("recorded by layer_norm"));
    CHECK_THROWS_WITH(batch_norm(tape.leaf(filled(3, 1, 1.0))), StartsWith("batch_norm:") && Contains("more than 1 example"));
}

TEST_CASE("an op's scalar parameters take double literals on a float tape", "[ops][scalars]") {
    Tape<float> tape;
    Var<float> x = tape.leaf(Matrix<float>({{0.5f, 1.5f}, {2.0f, 0.25f}}));
    CounterRng rng(1);
    Var<float> y = pow(x, 2.0) + clamp(x, 0.0, 1.0) + leaky_relu(x, 0.2) + elu(x, 1.0) + softplus(x, 1.0, 20.0) +
                   scale(x, 0.5) + layer_norm(x, 1e-5) + batch_norm(x, 1e-5) + dropout(x, 0.5, rng);
    Var<float> loss = softmax_cross_entropy(y, Labels{0, 1}, 0.1) + softmax_cross_entropy(y, Matrix<float>({{1, 0}, {0, 1}}), 0.1);
    tape.backward(loss);
    CHECK(std::isfinite(loss.value()(0, 0)));
    CHECK(x.grad().shape()[0] == 2);
}

TEST_CASE("a shape whose element count wraps around is refused, not indexed past its buffer", "[ops][structure]") {
    // 3 * 0xAAAAAAAAAAAAAAAB is 1 modulo 2^64: reshape took it for a 1-element shape.
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(1, 1, 2.0));
    CHECK_THROWS_WITH(reshape(x, Shape{0xAAAAAAAAAAAAAAABull, 3}), Contains("reshape") && Contains("cannot become"));
    // An op of one's own (Tape::record) asking for such a shape gets the same refusal.
    CHECK_THROWS_WITH(tape.record("big", {x}, Shape{std::size_t(1) << 40, std::size_t(1) << 40}, nullptr,
                                  [](Node<double>&) {}),
                      Contains("big") && Contains("more elements than memory can address"));
    CHECK(sum(x).value()(0, 0) == 2.0);  // the tape is as it was
}

// std::to_string's six decimals wrote each of these as 0.000000, the very value the message
// says is wrong or right.
TEST_CASE("a refused real number is written as the value it was, however small", "[ops][scalars][errors]") {
    Tape<double> tape;
    const Var<double> x = tape.leaf(filled(2, 2, 1.0));
    CHECK_THROWS_WITH(clamp(x, 1e-7, 1e-8), Equals("clamp: the bounds are [1e-07, 1e-08] (lo must be <= hi)"));
    CHECK_THROWS_WITH(layer_norm(x, -1e-9), Equals("layer_norm: eps is -1e-09 (it must be finite and > 0)"));
    CHECK_THROWS_WITH(softmax_cross_entropy(x, Labels{0, 1}, -1e-12), Contains("label_smoothing is -1e-12 "));
    Tape<float> floats;
    const double below_floats = 1e-50;  // 0 as a float: the message says what the op was given
    CHECK_THROWS_WITH(layer_norm(floats.leaf(Matrix<float>(xt::ones<float>({2, 2}))), static_cast<float>(below_floats)),
                      Contains("eps is 0 (it must be finite and > 0)"));
}

TEST_CASE("images and windows whose element counts wrap around are refused", "[ops][conv]") {
    // Each side is below the per-size limit; the products C*H*W wrap to 4 and 5.
    Tape<double> tape;
    Var<double> x4 = tape.leaf(filled(4, 1, 1.0));
    const ImageShape wrapping{968973220, 49477, 384773};
    CHECK_THROWS_WITH(max_pool2d(x4, wrapping, Window{1, 1, 1, 0}), Contains("more elements than memory can address"));
    CHECK_THROWS_WITH(avg_pool2d(x4, wrapping, Window{1, 1, 1, 0}), Contains("more elements than memory can address"));
    Var<double> x5 = tape.leaf(filled(5, 1, 1.0));
    Var<double> W = tape.leaf(filled(1, 21, 1.0));
    CHECK_THROWS_WITH(conv2d(x5, ImageShape{21, 823996703, 1066043567}, W, Window{1, 1, 1073741823, 0}),
                      Contains("conv2d") && Contains("more elements than memory can address"));
}

TEST_CASE("conv2d's im2col workspace counts against the tape's memory limit", "[ops][conv]") {
    // One output row of a 1 x 1000 kernel over a 100000-wide image is 1000 x 99001 doubles
    // (792 MB) of workspace for 0.8 MB of values: it was allocated without a word.
    Tape<double> tape;
    tape.set_memory_limit(std::size_t(64) << 20);
    Var<double> x = tape.leaf(filled(100000, 1, 1.0));
    Var<double> W = tape.leaf(filled(1, 1000, 1.0));
    CHECK_THROWS_WITH(conv2d(x, ImageShape{1, 1, 100000}, W, Window{1, 1000, 1, 0}),
                      Contains("im2col workspace") && Contains("memory limit"));
    // A small convolution fits as before.
    Var<double> small = tape.leaf(filled(16, 1, 1.0));
    Var<double> K = tape.leaf(filled(1, 9, 1.0));
    CHECK(conv2d(small, ImageShape{1, 4, 4}, K, Window{3, 3, 1, 0}).value()(0, 0) == 9.0);
}

TEST_CASE("softplus stays finite past e^709 for any threshold, infinite included", "[ops][unary]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(1, 1, 800.0));
    for (double threshold : {1000.0, std::numeric_limits<double>::infinity()}) {
        Var<double> y = softplus(x, 1.0, threshold);
        tape.backward(sum(y));
        CHECK(y.value()(0, 0) == Approx(800.0).epsilon(0));  // log(1 + e^800) = 800 + log1p(e^-800)
        CHECK(x.grad()(0, 0) == Approx(1.0).epsilon(0));
        tape.reset();
        x = tape.leaf(filled(1, 1, 800.0));
    }
}

TEST_CASE("layer_norm and batch_norm refuse finite values whose variance overflows instead of giving NaN or 0",
          "[ops][normalization]") {
    Tape<double> tape;
    Var<double> huge = tape.leaf(Matrix<double>{{1e200}, {-1e200}});  // the math: +1 and -1
    CHECK_THROWS_WITH(layer_norm(huge), Contains("layer_norm") && Contains("variance overflows"));
    CHECK_THROWS_WITH(batch_norm(tape.leaf(Matrix<double>{{1e308, -1e308}})),
                      Contains("batch_norm") && Contains("variance overflows"));
    // A NaN in the input is the input's (as in every op), not refused.
    Var<double> nan = tape.leaf(Matrix<double>{{std::nan("")}, {1.0}});
    CHECK(std::isnan(layer_norm(nan).value()(0, 0)));
}

TEST_CASE("gelu keeps its relative accuracy in the left tail; linear refuses an activation outside the enum",
          "[ops][unary]") {
    Tape<double> tape;
    // x Phi(x) at -10: Phi(-10) = 7.6198530241605e-24 (erfc(10 / sqrt 2) / 2).
    CHECK(gelu(tape.leaf(filled(1, 1, -10.0))).value()(0, 0) ==
          Approx(-7.6198530241605e-23).epsilon(0).margin(1e-33));  // relative 1.3e-11
    Var<double> W = tape.leaf(filled(2, 2, 1.0)), A = tape.leaf(filled(2, 1, 1.0)), b = tape.leaf(filled(2, 1, 0.0));
    CHECK_THROWS_WITH(linear(W, A, b, static_cast<Activation>(42)), Contains("unknown activation 42"));
}
