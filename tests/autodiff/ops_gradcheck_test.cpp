// Every op, every input, checked by central differences in double over a sweep of shapes.

#include <catch2/catch.hpp>

#include <functional>

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

// Any callable, capturing lambdas included.
void check_unary_fn(const std::function<Var<double>(Var<double>)>& op, double low, double high, double gap) {
    std::mt19937_64 rng(7);
    for (Shape s : test::sweep_shapes(rng))
        require_gradcheck([op](Tape<double>&, const std::vector<Var<double>>& x) { return op(x[0]); },
                          {random_matrix(rng, s, low, high, gap)});
}

// Every op takes its inputs by const reference; the tests' own lambdas take them by value.
using Unary = Var<double> (*)(const Var<double>&);
using UnaryByValue = Var<double> (*)(Var<double>);

void check_unary(Unary op, double low, double high, double gap) { check_unary_fn(op, low, high, gap); }
void check_unary(UnaryByValue op, double low, double high, double gap) { check_unary_fn(op, low, high, gap); }

// Both operand orders and every way the second can broadcast against the first.
void check_binary(Var<double> (*op)(const Var<double>&, const Var<double>&), double gap) {
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

// ---- the op set of issue 11 ----

TEST_CASE("a handle mixed with int, float and double scalars matches finite differences", "[gradcheck]") {
    check_unary([](Var<double> x) { return x + 2; }, -2, 2, 0);
    check_unary([](Var<double> x) { return 1.5f + x; }, -2, 2, 0);
    check_unary([](Var<double> x) { return x - 0.25; }, -2, 2, 0);
    check_unary([](Var<double> x) { return 3 - x; }, -2, 2, 0);
    check_unary([](Var<double> x) { return 2 * x * 0.5f; }, -2, 2, 0);
    check_unary([](Var<double> x) { return x / 4; }, -2, 2, 0);
    check_unary([](Var<double> x) { return 2.0 / x; }, -2, 2, 0.3);
}

TEST_CASE("elementwise functions match finite differences away from their kinks", "[gradcheck]") {
    SECTION("square") { check_unary(square<double>, -2, 2, 0); }
    SECTION("sqrt") { check_unary(sqrt<double>, 0.2, 3, 0); }
    SECTION("abs") { check_unary(abs<double>, -2, 2, 0.01); }
    SECTION("log1p") { check_unary(log1p<double>, -0.8, 3, 0); }
    SECTION("gelu") { check_unary(gelu<double>, -4, 4, 0); }
    SECTION("silu") { check_unary(silu<double>, -6, 6, 0); }
    SECTION("softplus, both sides of its threshold") {
        check_unary([](Var<double> x) { return softplus(x); }, -30, 30, 0);
        check_unary([](Var<double> x) { return softplus(x, 2.0, 5.0); }, -5, 5, 0);
    }
    SECTION("leaky_relu and elu") {
        check_unary([](Var<double> x) { return leaky_relu(x); }, -2, 2, 0.01);
        check_unary([](Var<double> x) { return leaky_relu(x, 0.3); }, -2, 2, 0.01);
        check_unary([](Var<double> x) { return elu(x); }, -3, 2, 0.01);
        check_unary([](Var<double> x) { return elu(x, 0.5); }, -3, 2, 0.01);
    }
    SECTION("clamp") { check_unary([](Var<double> x) { return clamp(x, -0.5, 1.0); }, -2, 2, 0); }
    SECTION("pow") {
        for (double p : {3.0, 2.0, 1.0, 0.0, -2.0})
            check_unary_fn([p](Var<double> x) { return pow(x, p); }, -2, 2, 0.3);
        for (double p : {0.5, 1.7, -0.5}) check_unary_fn([p](Var<double> x) { return pow(x, p); }, 0.2, 3, 0);
    }
}

TEST_CASE("maximum, minimum and where match finite differences under every 2-D broadcast", "[gradcheck]") {
    SECTION("maximum") { check_binary(maximum<double>, 0); }
    SECTION("minimum") { check_binary(minimum<double>, 0); }
    SECTION("where") {
        std::mt19937_64 rng(13);
        for (Shape s : test::sweep_shapes(rng))
            for (Shape p : {s, Shape{s.rows, 1}, Shape{1, s.cols}, Shape{1, 1}})
                for (Shape mask_shape : {s, p}) {
                    const Matrix<double> mask = xt::cast<double>(random_matrix(rng, mask_shape, -1, 1, 0.01) > 0.0);
                    auto f = [mask](Tape<double>&, const std::vector<Var<double>>& x) { return autodiff::where(mask, x[0], x[1]); };
                    require_gradcheck(f, {random_matrix(rng, s), random_matrix(rng, p)});
                    require_gradcheck(f, {random_matrix(rng, p), random_matrix(rng, s)});
                }
    }
}

TEST_CASE("structure ops match finite differences", "[gradcheck]") {
    std::mt19937_64 rng(17);
    for (Shape s : test::sweep_shapes(rng)) {
        for (int axis : {0, 1}) {
            const Shape other = axis == 0 ? Shape{2, s.cols} : Shape{s.rows, 3};
            for (std::size_t parts : {1, 2, 3, 4, 5, 6}) {
                std::vector<Matrix<double>> inputs;
                for (std::size_t i = 0; i < parts; ++i) inputs.push_back(random_matrix(rng, i % 2 ? other : s));
                require_gradcheck([axis](Tape<double>&, const std::vector<Var<double>>& x) { return concat(x, axis); }, inputs);
            }
            const std::size_t n = axis == 0 ? s.rows : s.cols;
            for (std::size_t begin = 0; begin < n; begin += 2)
                for (std::size_t end = begin + 1; end <= n; end += 3)
                    require_gradcheck(
                        [=](Tape<double>&, const std::vector<Var<double>>& x) { return slice(x[0], axis, begin, end); },
                        {random_matrix(rng, s)});
            // ids with repeats; the table's entries along `axis` are its vocabulary
            Labels ids;
            for (std::size_t j = 0; j < 7; ++j) ids.push_back((j * 5) % n);
            require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return gather(x[0], ids, axis); },
                              {random_matrix(rng, s)});
            require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return max(x[0], axis); },
                              {random_matrix(rng, s)});
            require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return softmax(x[0], axis); },
                              {random_matrix(rng, s, -3, 3)});
            require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return log_softmax(x[0], axis); },
                              {random_matrix(rng, s, -3, 3)});
        }
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return max(x[0]); }, {random_matrix(rng, s)});
        require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return reshape(x[0], Shape{s.cols, s.rows}); },
                          {random_matrix(rng, s)});
        require_gradcheck([=](Tape<double>&, const std::vector<Var<double>>& x) { return reshape(x[0], Shape{1, s.size()}); },
                          {random_matrix(rng, s)});
    }
}

TEST_CASE("the new losses match finite differences in every input", "[gradcheck]") {
    std::mt19937_64 rng(19);
    for (Shape s : test::sweep_shapes(rng)) {
        Labels classes(s.cols);
        for (std::size_t j = 0; j < s.cols; ++j) classes[j] = (j * 3) % s.rows;
        const Matrix<double> soft = random_matrix(rng, s, 0, 1);
        auto two = [&](auto op, Matrix<double> a, Matrix<double> b) {
            require_gradcheck([op](Tape<double>&, const std::vector<Var<double>>& x) { return op(x[0], x[1]); }, {a, b});
        };
        two([](auto z, auto y) { return binary_cross_entropy_with_logits(z, y); }, random_matrix(rng, s, -5, 5), soft);
        two([](auto p, auto t) { return huber(p, t); }, random_matrix(rng, s, -3, 3), random_matrix(rng, s));
        two([](auto z, auto y) { return softmax_cross_entropy(z, y); }, random_matrix(rng, s, -3, 3), soft);
        require_gradcheck([&](Tape<double>&, const std::vector<Var<double>>& x) { return nll_loss(log_softmax(x[0]), classes); },
                          {random_matrix(rng, s, -3, 3)});
        for (double eps : {0.1, 0.5}) {
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& x) { return softmax_cross_entropy(x[0], classes, eps); },
                {random_matrix(rng, s, -3, 3)});
            require_gradcheck(
                [&](Tape<double>&, const std::vector<Var<double>>& x) { return softmax_cross_entropy(x[0], soft, eps); },
                {random_matrix(rng, s, -3, 3)});
        }
    }
}

TEST_CASE("layer_norm and batch_norm match finite differences in x, gain and bias", "[gradcheck]") {
    std::mt19937_64 rng(23);
    for (Shape s : test::sweep_shapes(rng)) {
        const Shape per_feature{s.rows, 1};
        auto inputs = [&] {
            return std::vector<Matrix<double>>{random_matrix(rng, s, -3, 3), random_matrix(rng, per_feature, 0.5, 1.5),
                                               random_matrix(rng, per_feature)};
        };
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return layer_norm(x[0]); },
                          {random_matrix(rng, s, -3, 3)});
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return layer_norm(x[0], x[1], x[2]); },
                          inputs());
        if (s.cols < 2) continue;  // batch statistics need two examples
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return batch_norm(x[0]); },
                          {random_matrix(rng, s, -3, 3)});
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return batch_norm(x[0], x[1], x[2]); },
                          inputs());
    }
}

TEST_CASE("dropout matches finite differences with its mask fixed by the seed", "[gradcheck]") {
    std::mt19937_64 rng(29);
    for (Shape s : test::sweep_shapes(rng))
        for (double p : {0.0, 0.3, 0.9})
            require_gradcheck(
                [p](Tape<double>&, const std::vector<Var<double>>& x) {
                    CounterRng drop(42, 7);  // the same mask at every call
                    return dropout(x[0], p, drop);
                },
                {random_matrix(rng, s)});
}
