// User-defined ops (autodiff/custom_op.hpp and Tape::record) checked as the built-in ops
// are: by central differences in double over a sweep of shapes. The ops are the ones
// examples/custom_op.cpp defines, from its headers.

#include <catch2/catch.hpp>

#include <type_traits>

#include "autodiff/autodiff.hpp"
#include "autodiff/custom_op.hpp"
#include "examples/ops/layer_norm.hpp"
#include "examples/ops/softplus.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;
using Catch::Matchers::WithinAbs;

namespace {

void require_gradcheck(const TapeFunction<double>& f, const std::vector<Matrix<double>>& inputs) {
    const GradcheckResult result = gradcheck<double>(f, inputs);
    INFO("input shape: " << to_string(shape_of(inputs[0])) << "\n" << result.summary());
    REQUIRE(result.passed);
}

// A two-input op through apply(): x * y elementwise, same shapes.
struct Product {
    static constexpr const char* name = "product";
    template <class T>
    static Matrix<T> forward(OpContext<T>&, const Matrix<T>& x, const Matrix<T>& y) {
        return x * y;
    }
    template <class T>
    static Matrix<T> backward(const GradContext<T>& ctx, int input) {
        return ctx.grad_output() * ctx.input(1 - input);
    }
};

// An op whose backward returns the wrong shape.
struct BadShape {
    static constexpr const char* name = "bad_shape";
    template <class T>
    static Matrix<T> forward(OpContext<T>&, const Matrix<T>& x) {
        return x;
    }
    template <class T>
    static Matrix<T> backward(const GradContext<T>&, int) {
        return Matrix<T>({1, 1}, T(1));
    }
};

// An op whose backward reads a matrix its forward never saved.
struct ForgotToSave {
    static constexpr const char* name = "forgot_to_save";
    template <class T>
    static Matrix<T> forward(OpContext<T>&, const Matrix<T>& x) {
        return x;
    }
    template <class T>
    static Matrix<T> backward(const GradContext<T>& ctx, int) {
        return ctx.grad_output() * ctx.saved();
    }
};

}  // namespace

TEST_CASE("custom softplus (apply) matches finite differences", "[custom_op][gradcheck]") {
    std::mt19937_64 rng(3);
    for (Shape s : test::sweep_shapes(rng))
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return example::softplus(x[0]); },
                          {random_matrix(rng, s, -4, 4, 0)});
}

TEST_CASE("custom softplus values are stable and match log(1 + exp(x))", "[custom_op]") {
    Tape<double> tape;
    const Matrix<double> x = {{-800.0, -1.0, 0.0, 1.0, 800.0}};
    const Matrix<double>& y = example::softplus(tape.constant(x)).value();
    CHECK_THAT(y(0, 0), WithinAbs(0.0, 1e-300));
    CHECK_THAT(y(0, 1), WithinAbs(std::log1p(std::exp(-1.0)), 1e-15));
    CHECK_THAT(y(0, 2), WithinAbs(std::log(2.0), 1e-15));
    CHECK_THAT(y(0, 3), WithinAbs(std::log1p(std::exp(1.0)), 1e-15));
    CHECK_THAT(y(0, 4), WithinAbs(800.0, 1e-13));
}

TEST_CASE("custom layer_norm (Tape::record) matches finite differences", "[custom_op][gradcheck]") {
    std::mt19937_64 rng(5);
    for (Shape s : test::sweep_shapes(rng)) {
        if (s.rows < 2) continue;  // one row normalises to 0: nothing to check
        require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& x) { return example::layer_norm(x[0]); },
                          {random_matrix(rng, s, -2, 2, 0)});
    }
}

TEST_CASE("custom ops compose with built-in ops and reused inputs", "[custom_op][gradcheck]") {
    std::mt19937_64 rng(9);
    const Matrix<double> x = random_matrix(rng, {4, 3}, -2, 2, 0);
    const Matrix<double> W = random_matrix(rng, {5, 4}, -1, 1, 0);
    require_gradcheck(
        [](Tape<double>&, const std::vector<Var<double>>& in) {
            Var<double> h = example::softplus(matmul(in[1], in[0]));
            return apply<Product>(example::layer_norm(h), h);  // h is used twice
        },
        {x, W});
    require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& in) { return apply<Product>(in[0], in[0]); }, {x});
}

TEST_CASE("custom ops: only inputs that need a gradient get one; errors name the op", "[custom_op]") {
    Tape<double> tape;
    Var<double> a = tape.leaf(Matrix<double>{{1.0, 2.0}});
    Var<double> c = tape.constant(Matrix<double>{{3.0, 4.0}});
    Var<double> y = sum(apply<Product>(a, c));
    tape.backward(y);
    CHECK(a.grad() == Matrix<double>{{3.0, 4.0}});
    CHECK_THROWS_WITH(c.grad(), Catch::Contains("constant"));

    Tape<double> other;
    Var<double> b = other.leaf(Matrix<double>{{1.0, 2.0}});
    tape.reset();
    Var<double> a2 = tape.leaf(Matrix<double>{{1.0, 2.0}});
    CHECK_THROWS_WITH(apply<Product>(a2, b), Catch::Contains("product") && Catch::Contains("another tape"));

    tape.reset();
    Var<double> z = sum(apply<BadShape>(tape.leaf(Matrix<double>{{1.0, 2.0}})));
    CHECK_THROWS_WITH(tape.backward(z), Catch::Contains("bad_shape") && Catch::Contains("1x1") && Catch::Contains("1x2"));

    // It was xtensor's "Incompatible dimension of arrays" (or, read by index, out of bounds).
    tape.reset();
    Var<double> f = sum(apply<ForgotToSave>(tape.leaf(Matrix<double>{{1.0, 2.0}})));
    CHECK_THROWS_WITH(tape.backward(f), Catch::StartsWith("forgot_to_save: backward reads saved(), but forward saved nothing"));
}

TEST_CASE("custom ops: a backward that writes a gradient into a parameter recorded under NoGrad is refused",
          "[custom_op]") {
    // Found by an attack: a Tape::record op whose backward skipped tape.needs_grad (rule 3)
    // wrote the gradient of a parameter read under NoGrad, which takes none, straight into its
    // Parameter::grad: a frozen parameter got a gradient, and an optimizer moved it, silently.
    Parameter<double> w(Matrix<double>{{1.0}, {1.0}}, "w"), frozen(Matrix<double>{{2.0}, {2.0}}, "frozen");
    Tape<double> tape;
    Var<double> f;
    {
        NoGrad<double> off(tape);
        f = tape.parameter(frozen);
    }
    const Var<double> W = tape.parameter(w);
    auto backward = [](Tape<double>& t, Node<double>& node) {
        const double* g = node.grad.data();
        for (int i = 0; i < 2; ++i) t.grad_of(node, i).accumulate([g](std::size_t k) { return g[k]; });  // no needs_grad
    };
    const Var<double> y = tape.record("careless_add", {W, f}, Shape{2, 1}, backward, [&](Node<double>& n) {
        for (std::size_t k = 0; k < 2; ++k) n.value.data()[k] = tape.input(n, 0).data()[k] + tape.input(n, 1).data()[k];
    });
    CHECK_THROWS_WITH(tape.backward(sum(y)),
                      "careless_add: its backward asked Tape::grad_of for input 1, the parameter 'frozen' (2x1) "
                      "recorded under NoGrad, which takes no gradient; test tape.needs_grad(node, 1) first");
    CHECK((frozen.grad == Matrix<double>{{0.0}, {0.0}}));
}

TEST_CASE("custom ops: a GradContext cannot be kept beyond its backward call", "[custom_op]") {
    // It refers to the tape's entry: a copy kept by an op's backward read the tape after a
    // reset (another step's entry) or after its destruction (freed memory), with no error.
    CHECK_FALSE(std::is_copy_constructible<GradContext<double>>::value);
    CHECK_FALSE(std::is_copy_constructible<GradContext<float>>::value);
}

TEST_CASE("custom ops record nothing to differentiate under NoGrad", "[custom_op]") {
    Tape<double> tape;
    Var<double> a = tape.leaf(Matrix<double>{{0.5, -0.5}});
    {
        NoGrad<double> off(tape);
        CHECK_FALSE(example::softplus(a).requires_grad());
        CHECK_FALSE(example::layer_norm(a).requires_grad());
    }
    CHECK(example::softplus(a).requires_grad());
}

TEST_CASE("the example layer_norm refuses an eps that is not a positive finite number", "[custom_op]") {
    // eps 0 normalised a constant column to 0/0 = NaN; a negative eps took the root of a negative number.
    Tape<double> tape;
    Var<double> x = tape.leaf(Matrix<double>{{2.0, 1.0}, {2.0, 3.0}});  // column 0 is constant
    for (const double eps : {0.0, -1.0, std::nan("")})
        CHECK_THROWS_WITH(example::layer_norm(x, eps),
                          Catch::Contains("layer_norm: eps must be a positive finite number, got " + std::to_string(eps)));
    CHECK(example::layer_norm(x, 1e-5).value()(0, 0) == 0.0);
}
