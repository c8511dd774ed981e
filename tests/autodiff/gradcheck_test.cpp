// gradcheck itself: float gets defaults (step, tolerance) for which correct ops pass, and
// a wrong gradient still fails in either type.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "autodiff/autodiff.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;

namespace {

struct FloatCase {
    const char* name;
    TapeFunction<float> f;
    double low = -2, high = 2, gap = 0;  // the inputs' range, as in ops_gradcheck_test
    bool two_inputs = false;
};

Matrix<float> as_float(const Matrix<double>& m) { return xt::cast<float>(m); }

// 3x: its backward claims 2 (written with the public recording API).
template <class T>
Var<T> wrong_triple(Var<T> x) {
    auto backward = [](Tape<T>& tape, Node<T>& y) {
        const T* g = y.grad.data();
        tape.grad_of(y, 0).accumulate([&](std::size_t k) { return 2 * g[k]; });
    };
    return x.tape().record("wrong_triple", {x}, x.shape(), backward, [&](Node<T>& y) {
        for (std::size_t k = 0; k < y.value.size(); ++k) y.value.data()[k] = 3 * x.value().data()[k];
    });
}

}  // namespace

TEST_CASE("gradcheck<float> passes correct ops with its own defaults", "[gradcheck][float]") {
    using V = Var<float>;
    using X = const std::vector<V>&;
    const std::vector<FloatCase> cases = {
        {"exp", [](Tape<float>&, X x) { return exp(x[0]); }},
        {"log", [](Tape<float>&, X x) { return log(x[0]); }, 0.2, 3},
        {"relu", [](Tape<float>&, X x) { return relu(x[0]); }, -2, 2, 0.05},
        {"sigmoid", [](Tape<float>&, X x) { return sigmoid(x[0]); }, -4, 4},
        {"tanh", [](Tape<float>&, X x) { return tanh(x[0]); }},
        {"softmax", [](Tape<float>&, X x) { return softmax(x[0]); }, -3, 3},
        {"log_softmax", [](Tape<float>&, X x) { return log_softmax(x[0]); }, -3, 3},
        {"mean", [](Tape<float>&, X x) { return mean(x[0]); }},
        {"mul", [](Tape<float>&, X x) { return x[0] * x[1]; }, -2, 2, 0, true},
        {"div", [](Tape<float>&, X x) { return x[0] / x[1]; }, -2, 2, 0.3, true},
        {"mse", [](Tape<float>&, X x) { return mse(x[0], x[1]); }, -2, 2, 0, true},
        {"matmul", [](Tape<float>&, X x) { return matmul(x[0], transpose(x[1])); }, -2, 2, 0, true},
        {"composite", [](Tape<float>&, X x) {
             V h = tanh(matmul(x[0], transpose(x[1])));
             return mean(h * h + h) + sum(sigmoid(x[0] * x[1] - x[1]));
         }, -2, 2, 0, true},
    };
    std::mt19937_64 rng(17);
    double worst = 0;
    for (Shape s : test::sweep_shapes(rng)) {
        const Matrix<double> Y = test::one_hot(rng, s.rows, s.cols);
        std::vector<FloatCase> all = cases;
        all.push_back({"softmax_cross_entropy", [Y](Tape<float>&, X x) { return softmax_cross_entropy(x[0], as_float(Y)); },
                       -3, 3});
        for (const FloatCase& c : all) {
            std::vector<Matrix<float>> inputs = {as_float(random_matrix(rng, s, c.low, c.high, c.gap))};
            if (c.two_inputs) inputs.push_back(as_float(random_matrix(rng, s, c.low, c.high, c.gap)));
            const GradcheckResult result = gradcheck<float>(c.f, inputs);
            INFO(c.name << " on " << to_string(s) << ": " << result.summary());
            CHECK(result.passed);
            worst = std::max(worst, result.worst_error);
        }
    }
    std::printf("gradcheck<float>: worst error %.3g over the sweep\n", worst);
}

TEST_CASE("gradcheck passes a correct function whose kink lies within the step", "[gradcheck]") {
    // The false failure fuzz_ops found (corpus/ops/regress_relu_kink_in_step): relu of
    // 1024 (exp(x) - w v) where exp(x) - w v = 1.7e-6, so x +- 1e-6 puts relu's 0 between
    // the two points. The derivative at x is 1024 exp(x); the one central difference said
    // 0.63 of it.
    auto grid = [](int byte) { return (byte - 10) / 245.0 * 8.0 - 4.0; };  // fuzz_ops' values
    const Matrix<double> x = {{grid(179)}}, w = {{grid(201)}}, v = {{grid(195)}};
    const GradcheckResult result = gradcheck<double>(
        [](Tape<double>&, const std::vector<Var<double>>& in) {
            return relu(scale(exp(in[0]) - in[1] * in[2], 1024.0));
        },
        {x, w, v});
    INFO(result.summary());
    CHECK(result.passed);
    CHECK(result.worst_error <= 1e-6);
}

TEST_CASE("gradcheck catches a wrong gradient in float and in double", "[gradcheck][float]") {
    std::mt19937_64 rng(1);
    const Matrix<double> x = random_matrix(rng, {2, 3});
    const GradcheckResult in_double =
        gradcheck<double>([](Tape<double>&, const std::vector<Var<double>>& v) { return wrong_triple(v[0]); }, {x});
    const GradcheckResult in_float =
        gradcheck<float>([](Tape<float>&, const std::vector<Var<float>>& v) { return wrong_triple(v[0]); },
                         {as_float(x)});
    CHECK_FALSE(in_double.passed);
    CHECK_FALSE(in_float.passed);
    CHECK(in_double.worst_error > 0.1);  // analytic 2R against numeric 3R
    CHECK(in_float.worst_error > 0.1);
}

TEST_CASE("gradcheck refuses a step or tolerance that would fail a correct op", "[gradcheck]") {
    // A step of 0 made every difference NaN: tanh was reported FAILED, nothing saying why.
    const TapeFunction<double> f = [](Tape<double>&, const std::vector<Var<double>>& x) { return sum(tanh(x[0])); };
    const std::vector<Matrix<double>> inputs{Matrix<double>{{0.3, -0.2}}};
    for (double step : {0.0, -1e-6, std::nan("")}) {
        GradcheckOptions options;
        options.step = step;
        CHECK_THROWS_WITH(gradcheck<double>(f, inputs, options), Catch::Contains("gradcheck: step"));
    }
    for (double tolerance : {-1.0, std::nan("")}) {
        GradcheckOptions options;
        options.tolerance = tolerance;
        CHECK_THROWS_WITH(gradcheck<double>(f, inputs, options), Catch::Contains("gradcheck: tolerance"));
    }
    CHECK(gradcheck<double>(f, inputs).passed);
}

TEST_CASE("gradcheck refuses a step that rounds away in the element type", "[gradcheck]") {
    // Found by an attack: a step of 1e-9 in float (1e-18 in double) leaves x + h and x - h the
    // same number, a step of 0 in effect: a correct x^2 was reported "FAILED: worst error inf
    // ... numeric -nan".
    const TapeFunction<float> f = [](Tape<float>&, const std::vector<Var<float>>& x) { return sum(x[0] * x[0]); };
    GradcheckOptions options;
    options.step = 1e-9;
    CHECK_THROWS_WITH(gradcheck<float>(f, {Matrix<float>{{1.0f, 2.0f}}}, options),
                      "gradcheck: step 1e-09 does not move element (0, 0) of input 0 (1) as a float: x + h and x - h "
                      "round to the same number; take a larger step (float's default is 0.01)");
    const TapeFunction<double> g = [](Tape<double>&, const std::vector<Var<double>>& x) { return sum(x[0] * x[0]); };
    options.step = 1e-18;
    CHECK_THROWS_WITH(gradcheck<double>(g, {Matrix<double>{{0.5, 2.0}}}, options),
                      "gradcheck: step 1e-18 does not move element (0, 0) of input 0 (0.5) as a double: x + h and x - h "
                      "round to the same number; take a larger step (double's default is 1e-06)");
    options.step = 1e-5;  // small, but it moves every element: the finer retries need not
    CHECK(gradcheck<double>(g, {Matrix<double>{{0.5, 2.0}}}, options).passed);
}

TEST_CASE("gradcheck refuses a function whose output's shape depends on the input values", "[gradcheck]") {
    // The random projection took the shape of the first output; an output 4 times as wide
    // at x + h was read beyond it (heap overflow under ASan), and a narrower one in part only.
    const TapeFunction<double> grows = [](Tape<double>&, const std::vector<Var<double>>& x) {
        return x[0].value()(0, 0) > 1.0 ? concat({x[0], x[0], x[0], x[0]}, 1) : x[0];
    };
    const TapeFunction<double> shrinks = [](Tape<double>&, const std::vector<Var<double>>& x) {
        return x[0].value()(0, 0) > 1.0 ? slice(x[0], 1, 0, 1) : x[0];
    };
    const std::vector<Matrix<double>> inputs{Matrix<double>{{1.0, 0.5}}};
    for (const TapeFunction<double>* f : {&grows, &shrinks}) {
        CHECK_THROWS_WITH(gradcheck<double>(*f, inputs),
                          Catch::Contains("gradcheck: f returned a 1x") &&
                              Catch::Contains("with element (0, 0) of input 0 moved, but a 1x2 output at the inputs given"));
    }
}

TEST_CASE("gradcheck reports a gradient lost through a constant instead of refusing the output", "[gradcheck]") {
    // Every path to the output went through tape.constant(x.value()): backward() refused the
    // output ("depends on no parameter or leaf") and gradcheck threw, naming neither itself
    // nor the lost gradient. Now the analytic gradient is 0 and the differences say so.
    const TapeFunction<double> lost = [](Tape<double>& tape, const std::vector<Var<double>>& x) {
        return sum(tape.constant(x[0].value()) * 2.0);
    };
    const GradcheckResult result = gradcheck<double>(lost, {Matrix<double>{{0.5, -1.5}}});
    CHECK_FALSE(result.passed);
    CHECK(result.analytic == 0.0);
    CHECK(std::abs(result.numeric) > 0.1);  // 2 R, R the random projection of the 1x1 output
    // A function that truly ignores its input has the zero gradient it reports.
    const TapeFunction<double> constant = [](Tape<double>& tape, const std::vector<Var<double>>&) {
        return sum(tape.constant(Matrix<double>{{1.0, 2.0}}));
    };
    CHECK(gradcheck<double>(constant, {Matrix<double>{{0.5, -1.5}}}).passed);
    // An output recorded on another tape is still refused, naming gradcheck.
    Tape<double> other;
    const TapeFunction<double> elsewhere = [&other](Tape<double>&, const std::vector<Var<double>>& x) {
        return sum(other.leaf(x[0].value()));
    };
    CHECK_THROWS_WITH(gradcheck<double>(elsewhere, {Matrix<double>{{0.5}}}),
                      Catch::StartsWith("gradcheck (f's output): the handle belongs to another tape"));
}
