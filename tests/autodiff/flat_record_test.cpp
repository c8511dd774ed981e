// Same-shape elementwise ops record through Tape::record_flat (autodiff/flat_step.hpp), and
// run their kernels through run_flat, which splits sizes FlatStep::n cannot count. These
// check what that path must keep of record_op's: values and gradients, a tape unchanged
// after a refusal, anomaly detection naming the op, entries reused under NoGrad, and the
// pieces adding up to the whole.

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "autodiff/flat_step.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;

namespace {
Matrix<double> random_matrix(Shape shape, unsigned seed) {
    std::mt19937_64 rng(seed);
    return test::random_matrix(rng, shape);
}
}  // namespace

TEST_CASE("run_flat: a kernel run in pieces equals one run over the whole, forward and backward", "[flat]") {
    const std::size_t n = 10;
    std::vector<double> a(n), b(n), y_whole(n), y_pieces(n), g(n), ga_whole(n, 1.0), ga_pieces(n, 1.0);
    for (std::size_t k = 0; k < n; ++k) a[k] = 0.5 + k, b[k] = 2.0 - 0.25 * k, g[k] = 1.0 + 0.125 * k;
    auto forward = [](const FlatStep<double>& s) {
        for (std::size_t k = 0; k < s.n; ++k) s.y[k] = s.x[0][k] * s.x[1][k];
    };
    // Adds g * b into the first input's gradient; the second input needs none (null).
    auto backward = [](const FlatStep<double>& s) {
        REQUIRE(s.gx[1] == nullptr);
        for (std::size_t k = 0; k < s.n; ++k) s.gx[0][k] += s.gy[k] * s.x[1][k];
    };
    FlatStep<double> step;
    step.x[0] = a.data(), step.x[1] = b.data(), step.gy = g.data();
    step.y = y_whole.data(), step.gx[0] = ga_whole.data();
    run_flat(step, n, forward);
    run_flat(step, n, backward);
    step.y = y_pieces.data(), step.gx[0] = ga_pieces.data();
    std::size_t calls = 0;
    run_flat(step, n, [&](const FlatStep<double>& s) { ++calls, forward(s); }, 3);
    CHECK(calls == 4);  // 3 + 3 + 3 + 1
    run_flat(step, n, backward, 3);
    for (std::size_t k = 0; k < n; ++k) {
        CHECK(y_pieces[k] == a[k] * b[k]);
        CHECK(y_whole[k] == y_pieces[k]);
        CHECK(ga_pieces[k] == 1.0 + g[k] * b[k]);
        CHECK(ga_whole[k] == ga_pieces[k]);
    }
}

TEST_CASE("flat recording: values and gradients of same-shape ops, exactly", "[flat]") {
    for (Shape shape : {Shape{1, 1}, Shape{1, 5}, Shape{4, 1}, Shape{3, 4}}) {
        const Matrix<double> xv = random_matrix(shape, 1), wv = random_matrix(shape, 2);
        Tape<double> tape;
        Parameter<double> w(wv);
        const Var<double> x = tape.leaf(xv), W = tape.parameter(w);
        const Var<double> y = sigmoid(x * W + W) - x;  // mul, add, sigmoid, sub: all flat
        const Var<double> loss = sum(y);
        tape.backward(loss);
        for (std::size_t k = 0; k < xv.size(); ++k) {
            const double xk = xv.data()[k], wk = wv.data()[k];
            const double t = xk * wk + wk, s = 1.0 / (1.0 + std::exp(-t)), ds = s * (1.0 - s);
            CHECK(y.value().data()[k] == Approx(s - xk).epsilon(0).margin(1e-15));
            CHECK(x.grad().data()[k] == Approx(ds * wk - 1.0).epsilon(0).margin(1e-15));
            CHECK(w.grad.data()[k] == Approx(ds * (xk + 1.0)).epsilon(0).margin(1e-15));
        }
    }
}

TEST_CASE("flat recording: a refusal leaves the tape as it was", "[flat]") {
    Tape<double> tape;
    const Var<double> a = tape.leaf(random_matrix({64, 64}, 3));
    const Var<double> b = tape.leaf(random_matrix({64, 64}, 4));
    const std::size_t entries = tape.size(), bytes = tape.recorded_bytes();
    tape.set_memory_limit(bytes + 2 * sizeof(Node<double>) + 10);  // room for an entry, not its value
    CHECK_THROWS_WITH(a * b, Contains("mul"));
    CHECK_THROWS_WITH(sigmoid(a), Contains("sigmoid"));
    CHECK(tape.size() == entries);
    CHECK(tape.recorded_bytes() == bytes);
    tape.set_memory_limit(0);
    CHECK((mul(a, b).value() == a.value() * b.value()));
}

TEST_CASE("flat recording: anomaly detection names the op that made the non-finite value", "[flat]") {
    Tape<double> tape;
    tape.set_detect_anomaly(true);
    Matrix<double> big = random_matrix({2, 3}, 5);
    big(1, 2) = 1e200;
    const Var<double> x = tape.leaf(big);
    CHECK_THROWS_WITH(x * x, Contains("anomaly: mul") && Contains("row 1, column 2"));
    CHECK_THROWS_WITH(exp(x), Contains("anomaly: exp"));
}

TEST_CASE("flat recording under NoGrad: released entries are reused, values stay right", "[flat]") {
    Tape<double> tape;
    const Matrix<double> xv = random_matrix({14, 1}, 6);
    const Var<double> x = tape.constant(xv);
    NoGrad<double> no_grad(tape);
    Var<double> h = x;
    for (int step = 0; step < 1000; ++step) h = tanh(h * x + x);
    CHECK(tape.live_entries() < 8);
    // The same loop on a tape that reuses nothing: the same kernels, so the same bits.
    Tape<double> plain;
    const Var<double> xp = plain.constant(xv);
    Var<double> expected = xp;
    for (int step = 0; step < 1000; ++step) expected = tanh(expected * xp + xp);
    CHECK((h.value() == expected.value()));
    CHECK_FALSE(h.requires_grad());
}

TEST_CASE("an entry anomaly detection refuses under NoGrad is released: a loop catching the errors holds nothing",
          "[flat]") {
    Tape<double> tape;
    tape.set_detect_anomaly(true);
    Matrix<double> big = random_matrix({3, 2}, 7), bad = big;
    big(0, 1) = 1e300;
    bad(1, 1) = std::nan("");
    const Var<double> x = tape.constant(big), huge = tape.constant(Matrix<double>({{1e300}}));
    NoGrad<double> no_grad(tape);
    const std::size_t live = tape.live_entries(), bytes = tape.recorded_bytes();
    for (int k = 0; k < 100; ++k) {
        CHECK_THROWS_AS(exp(x), AnomalyError);                  // the flat path
        CHECK_THROWS_AS(x * huge, AnomalyError);                // broadcasting: record()'s
        CHECK_THROWS_AS(tape.constant(bad), AnomalyError);      // a leaf
    }
    CHECK(tape.live_entries() == live);
    CHECK(tape.recorded_bytes() == bytes);
}
