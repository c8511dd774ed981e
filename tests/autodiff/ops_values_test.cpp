// Forward values against numbers worked out by hand, and the errors each op gives.

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
#include "tolerance.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;

namespace {
Matrix<double> M(std::initializer_list<std::initializer_list<double>> rows) { return Matrix<double>(rows); }

void require_close(const Matrix<double>& a, const Matrix<double>& b, double tolerance = 1e-12) {
    test::require_close(a, b, tolerance);
}
}  // namespace

TEST_CASE("softmax normalises each column (the xtensor 0.24.3 keep_dims case)", "[ops]") {
    Tape<double> tape;
    Var<double> p = softmax(tape.constant(M({{1, 2, 3}, {4, 5, 6}})));
    const double a = 1 / (1 + std::exp(3.0));  // every column differs by 3
    require_close(p.value(), M({{a, a, a}, {1 - a, 1 - a, 1 - a}}));
}

TEST_CASE("linear is W @ A + b with b broadcast over the examples", "[ops]") {
    Tape<double> tape;
    Var<double> Z = linear(tape.constant(M({{1, 2}, {3, 4}, {5, 6}})), tape.constant(M({{1, 0}, {0, 1}})),
                           tape.constant(M({{10}, {20}, {30}})));
    require_close(Z.value(), M({{11, 12}, {23, 24}, {35, 36}}));
}

TEST_CASE("broadcasting add, and reductions over each axis", "[ops]") {
    Tape<double> tape;
    Var<double> x = tape.constant(M({{1, 2, 3}, {4, 5, 6}}));
    require_close((x + tape.constant(M({{10}, {20}}))).value(), M({{11, 12, 13}, {24, 25, 26}}));
    require_close((x + tape.constant(M({{10, 20, 30}}))).value(), M({{11, 22, 33}, {14, 25, 36}}));
    require_close((x - tape.constant(M({{1}}))).value(), M({{0, 1, 2}, {3, 4, 5}}));
    require_close(sum(x, 0).value(), M({{5, 7, 9}}));
    require_close(sum(x, 1).value(), M({{6}, {15}}));
    require_close(mean(x, 0).value(), M({{2.5, 3.5, 4.5}}));
    require_close(mean(x).value(), M({{3.5}}));
    require_close(transpose(x).value(), M({{1, 4}, {2, 5}, {3, 6}}));
    require_close(relu(x - tape.constant(M({{3}}))).value(), M({{0, 0, 0}, {1, 2, 3}}));
}

TEST_CASE("softmax_cross_entropy is stable for logits of +-1e4", "[ops][softmax]") {
    Tape<double> tape;
    Var<double> Z = tape.leaf(M({{1e4, -1e4, 0}, {-1e4, 1e4, 1}, {0, 0, 2}}));
    const Matrix<double> Y = M({{0, 0, 1}, {1, 0, 0}, {0, 1, 0}});
    Var<double> loss = softmax_cross_entropy(Z, Y);
    // Column 0: -log softmax = 2e4; column 1: 1e4; column 2: log(1 + e + e^2) - 0.
    const double expected = (2e4 + 1e4 + std::log(1 + std::exp(1.0) + std::exp(2.0))) / 3;
    REQUIRE(std::isfinite(loss.value()(0, 0)));
    REQUIRE_THAT(loss.value()(0, 0), WithinAbs(expected, 1e-14 * expected));
    tape.backward(loss);
    Tape<double> other;
    Var<double> P = softmax(other.constant(Z.value()));
    Matrix<double> expected_grad = (P.value() - Y) / 3.0;
    require_close(Z.grad(), expected_grad, 1e-15);

    Tape<double> t2;
    Var<double> Z2 = t2.leaf(Z.value());
    Var<double> by_index = softmax_cross_entropy(Z2, Labels{1, 2, 0});
    REQUIRE(by_index.value()(0, 0) == loss.value()(0, 0));
    t2.backward(by_index);
    require_close(Z2.grad(), expected_grad, 1e-15);
}

TEST_CASE("shape errors name the op and both shapes", "[ops][errors]") {
    Tape<double> tape;
    Var<double> W = tape.constant(xt::zeros<double>({10, 5}));
    Var<double> A = tape.constant(xt::zeros<double>({4, 10}));
    REQUIRE_THROWS_WITH(matmul(W, A), Contains("matmul: (10x5) @ (4x10): inner dimensions 5 and 4 differ"));
    REQUIRE_THROWS_WITH(linear(W, A, tape.constant(xt::zeros<double>({10, 1}))), Contains("linear: (10x5) @ (4x10)"));
    Var<double> A5 = tape.constant(xt::zeros<double>({5, 3}));
    REQUIRE_THROWS_WITH(linear(W, A5, tape.constant(xt::zeros<double>({5, 1}))), Contains("b is 5x1 but W is 10x5"));
    REQUIRE_THROWS_WITH(W + A, Contains("add: (10x5) + (4x10): shapes do not broadcast"));
    REQUIRE_THROWS_WITH(W * A, Contains("mul: (10x5) * (4x10)"));
    REQUIRE_THROWS_WITH(softmax_cross_entropy(A, Matrix<double>(xt::zeros<double>({3, 10}))),
                        Contains("softmax_cross_entropy: logits is 4x10 but Y is 3x10"));
    REQUIRE_THROWS_WITH(softmax_cross_entropy(A, Labels{0, 1}), Contains("2 class labels"));
    REQUIRE_THROWS_WITH(softmax_cross_entropy(A, Labels(10, 4)), Contains("label 4 of example 0 is out of range for 4 classes"));
    REQUIRE_THROWS_WITH(mse(W, A), Contains("mse: prediction is 10x5 but target is 4x10"));
    REQUIRE_THROWS_WITH(sum(W, 2), Contains("sum: axis must be 0"));
}

TEST_CASE("log and div refuse inputs that would make a NaN or Inf", "[ops][errors]") {
    Tape<double> tape;
    REQUIRE_THROWS_WITH(log(tape.constant(M({{1, -2}}))), Contains("log: input (1x2) holds -2"));
    REQUIRE_THROWS_WITH(log(tape.constant(M({{NAN}}))), Contains("log: input (1x1) holds nan"));
    REQUIRE_THROWS_WITH(tape.constant(M({{1, 2}})) / tape.constant(M({{1, 0}})),
                        Contains("div: the divisor (1x2) holds 0 at row 0, column 1"));
    REQUIRE_THROWS_WITH(softmax_cross_entropy(tape.constant(M({{1}})), M({{NAN}})), Contains("Y (1x1) holds nan"));
}

TEST_CASE("anomaly detection names the first op that made a NaN or Inf", "[ops][anomaly]") {
    Tape<double> tape;
    SECTION("off by default: values pass through") {
        Var<double> y = exp(tape.leaf(M({{1000.0}})));
        REQUIRE(std::isinf(y.value()(0, 0)));
    }
    SECTION("in a forward value") {
        tape.set_detect_anomaly(true);
        Var<double> x = tape.leaf(M({{1.0, 1000.0}}));
        REQUIRE_THROWS_AS(exp(x), AnomalyError);
        tape.reset();
        x = tape.leaf(M({{1.0, 1000.0}}));
        REQUIRE_THROWS_WITH(exp(x), Contains("anomaly: exp (tape entry 1, inputs 1x2) produced a NaN or Inf value"));
    }
    SECTION("in a backward gradient") {
        tape.set_detect_anomaly(true);
        Var<double> a = tape.leaf(M({{1e200}}));
        Var<double> b = tape.leaf(M({{1e-200}}));
        Var<double> loss = scale(a * b, 1e200);  // finite value, but d loss / d b = 1e400
        REQUIRE_THROWS_WITH(tape.backward(loss), Contains("the backward of mul (tape entry 2) produced a NaN or Inf gradient for its input 1"));
    }
}

TEST_CASE("anomaly errors name the row and column of the first NaN or Inf, and call leaves input data",
          "[ops][anomaly]") {
    Tape<double> tape;
    tape.set_detect_anomaly(true);
    SECTION("an op's value") {
        Var<double> x = tape.leaf(M({{1.0, 2.0}, {1000.0, 3.0}}));
        REQUIRE_THROWS_WITH(exp(x), Contains("anomaly: exp (tape entry 1, inputs 2x2) produced a NaN or Inf value: "
                                             "inf at row 1, column 0 of 2x2"));
    }
    SECTION("a constant, a leaf, a parameter: input data, not an op") {
        REQUIRE_THROWS_WITH(tape.constant(M({{1.0, 2.0}, {NAN, 3.0}})),
                            Contains("anomaly: input data (a constant or leaf, tape entry 0) holds a NaN or Inf value: "
                                     "nan at row 1, column 0 of 2x2"));
        tape.reset();
        REQUIRE_THROWS_WITH(tape.leaf(M({{1.0, INFINITY}})),
                            Contains("anomaly: input data (a constant or leaf, tape entry 0) holds a NaN or Inf value: "
                                     "inf at row 0, column 1 of 1x2"));
        tape.reset();
        Parameter<double> W(M({{1.0, 2.0, -INFINITY}}), "W");
        REQUIRE_THROWS_WITH(tape.parameter(W), Contains("anomaly: input data (parameter 'W', tape entry 0) holds a "
                                                        "NaN or Inf value: -inf at row 0, column 2 of 1x3"));
    }
    SECTION("a gradient") {
        Var<double> a = tape.leaf(M({{1.0, 1e200}}));
        Var<double> b = tape.leaf(M({{1.0, 1e-200}}));
        Var<double> loss = sum(scale(a * b, 1e200));  // d loss / d b = (1e200, 1e400)
        REQUIRE_THROWS_WITH(tape.backward(loss), Contains("the backward of mul (tape entry 2) produced a NaN or Inf "
                                                          "gradient for its input 1 (leaf, 1x2): inf at row 0, column 1"));
    }
}
