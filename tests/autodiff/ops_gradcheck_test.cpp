// Every op, every input, checked by central differences in double over a sweep of shapes.

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;

namespace {

void require_gradcheck(const TapeFunction<double>& f, const std::vector<Matrix<double>>& inputs) {
    const GradcheckResult result = gradcheck<double>(f, inputs);
    std::string shapes;
    for (const auto& x : inputs) shapes += to_string(shape_of(x)) + " ";
    INFO("input shapes: " << shapes << "\n" << result.summary());
    REQUIRE(result.passed);
    REQUIRE(result.worst_error <= 1e-6);
}

using Unary = Var<double> (*)(Var<double>);

void check_unary(Unary op, double low, double high, double gap) {
    std::mt19937_64 rng(7);
    for (Shape s : test::sweep_shapes(rng))
        require_gradcheck([op](Tape<double>&, const std::vector<Var<double>>& x) { return op(x[0]); },
                          {random_matrix(rng, s, low, high, gap)});
}

// Both operand orders and every way the second can broadcast against the first.
void check_binary(Var<double> (*op)(Var<double>, Var<double>), double gap) {
    std::mt19937_64 rng(11);
    for (Shape s : test::sweep_shapes(rng)) {
        const std::vector<Shape> partners = {s, {s.rows, 1}, {1, s.cols}, {1, 1}};
        for (Shape p : partners) {
            auto f = [op](Tape<double>&, const std::vector<Var<double>>& x) { return op(x[0], x[1]); };
            require_gradcheck(f, {random_matrix(rng, s, -2, 2, gap), random_matrix(rng, p, -2, 2, gap)});
            require_gradcheck(f, {random_matrix(rng, p, -2, 2, gap), random_matrix(rng, s, -2, 2, gap)});
        }
    }
}

}  // namespace

TEST_CASE("unary ops match finite differences on 1x1, 1xm, nx1 and nxm", "[gradcheck]") {
    SECTION("neg") { check_unary(neg<double>, -2, 2, 0); }
    SECTION("exp") { check_unary(exp<double>, -2, 2, 0); }
    SECTION("log") { check_unary(log<double>, 0.2, 3, 0); }
    SECTION("relu") { check_unary(relu<double>, -2, 2, 0.01); }
    SECTION("sigmoid") { check_unary(sigmoid<double>, -4, 4, 0); }
    SECTION("tanh") { check_unary(tanh<double>, -2, 2, 0); }
    SECTION("softmax") { check_unary(softmax<double>, -3, 3, 0); }
    SECTION("log_softmax") { check_unary(log_softmax<double>, -3, 3, 0); }
    SECTION("transpose") { check_unary(transpose<double>, -2, 2, 0); }
    SECTION("sum") { check_unary(sum<double>, -2, 2, 0); }
    SECTION("mean") { check_unary(mean<double>, -2, 2, 0); }
    SECTION("scale") {
        check_unary([](Var<double> x) { return scale(x, -2.5); }, -2, 2, 0);
        check_unary([](Var<double> x) { return 0.5 * x; }, -2, 2, 0);
    }
    SECTION("sum and mean over each axis") {
        check_unary([](Var<double> x) { return sum(x, 0); }, -2, 2, 0);
        check_unary([](Var<double> x) { return sum(x, 1); }, -2, 2, 0);
        check_unary([](Var<double> x) { return mean(x, 0); }, -2, 2, 0);
        check_unary([](Var<double> x) { return mean(x, 1); }, -2, 2, 0);
    }
}

TEST_CASE("binary ops match finite differences under every 2-D broadcast", "[gradcheck]") {
    SECTION("add") { check_binary(add<double>, 0); }
    SECTION("sub") { check_binary(sub<double>, 0); }
    SECTION("mul") { check_binary(mul<double>, 0); }
    SECTION("div") { check_binary(div<double>, 0.3); }
}

TEST_CASE("matmul and linear match finite differences for every inner and outer size", "[gradcheck]") {
    std::mt19937_64 rng(3);
    const std::vector<std::size_t> sizes = {1, 2, 7};
    for (std::size_t n : sizes)
        for (std::size_t k : sizes)
            for (std::size_t m : sizes) {
                const auto W = random_matrix(rng, {n, k}), A = random_matrix(rng, {k, m}), b = random_matrix(rng, {n, 1});
                require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return matmul(x[0], x[1]); },
                                  {W, A});
                require_gradcheck(
                    [](Tape<double>&, const std::vector<Var<double>>& x) { return linear(x[0], x[1], x[2]); },
                    {W, A, b});
            }
}

TEST_CASE("losses match finite differences", "[gradcheck]") {
    std::mt19937_64 rng(5);
    for (Shape s : test::sweep_shapes(rng)) {
        const Matrix<double> Y = test::one_hot(rng, s.rows, s.cols);
        Labels classes(s.cols);
        for (std::size_t j = 0; j < s.cols; ++j) classes[j] = (j * 7) % s.rows;
        const Matrix<double> soft = random_matrix(rng, s, 0, 1);  // not one-hot: the general formula
        require_gradcheck([&](Tape<double>&, const std::vector<Var<double>>& x) { return softmax_cross_entropy(x[0], Y); },
                          {random_matrix(rng, s, -3, 3)});
        require_gradcheck(
            [&](Tape<double>&, const std::vector<Var<double>>& x) { return softmax_cross_entropy(x[0], classes); },
            {random_matrix(rng, s, -3, 3)});
        require_gradcheck(
            [&](Tape<double>&, const std::vector<Var<double>>& x) { return softmax_cross_entropy(x[0], soft); },
            {random_matrix(rng, s, -3, 3)});
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return mse(x[0], x[1]); },
                          {random_matrix(rng, s), random_matrix(rng, s)});
    }
}

TEST_CASE("a composite with a reused node sums the gradients of every use", "[gradcheck]") {
    std::mt19937_64 rng(9);
    require_gradcheck(
        [](Tape<double>&, const std::vector<Var<double>>& x) {
            Var<double> h = tanh(matmul(x[0], x[1]));
            return mean(h * h + h) + sum(sigmoid(h - x[2]));
        },
        {random_matrix(rng, {4, 3}), random_matrix(rng, {3, 5}), random_matrix(rng, {4, 1})});
}
