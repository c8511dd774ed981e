// Misuse of the engine that the tape and ops tests do not already cover: every op given a
// shape it cannot take, empty (0 x m, n x 0) matrices at each entry point, handles that
// outlived a reset or belong to another tape, and backward from a non-scalar without a seed.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "nn/linear.hpp"
#include "nn/mlp.hpp"
#include "nn/optimizers.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

Matrix<double> filled(std::size_t rows, std::size_t cols, double v = 0.5) {
    Matrix<double> m({rows, cols});
    m.fill(v);
    return m;
}

struct BadCall {
    const char* op;  // the name the message must start with
    std::function<void(Tape<double>&)> call;
    const char* mentions = "";  // and a part it must contain (the shapes, the value, the rule)
};

// Every op, each called with operands whose shapes it cannot take.
std::vector<BadCall> bad_shape_calls() {
    auto c = [](Tape<double>& t, std::size_t r, std::size_t k) { return t.leaf(filled(r, k)); };
    return {
        {"matmul", [=](Tape<double>& t) { matmul(c(t, 3, 4), c(t, 5, 2)); }},
        {"linear", [=](Tape<double>& t) { linear(c(t, 3, 4), c(t, 5, 2), c(t, 3, 1)); }},
        {"linear", [=](Tape<double>& t) { linear(c(t, 3, 4), c(t, 4, 2), c(t, 4, 1)); }},
        {"linear", [=](Tape<double>& t) { linear(c(t, 3, 4), c(t, 4, 2), c(t, 3, 2)); }},
        {"add", [=](Tape<double>& t) { add(c(t, 3, 4), c(t, 2, 4)); }},
        {"add", [=](Tape<double>& t) { add(c(t, 3, 4), c(t, 3, 2)); }},
        {"sub", [=](Tape<double>& t) { sub(c(t, 3, 4), c(t, 4, 3)); }},
        {"mul", [=](Tape<double>& t) { mul(c(t, 3, 1), c(t, 2, 4)); }},
        {"div", [=](Tape<double>& t) { div(c(t, 1, 3), c(t, 2, 2)); }},
        {"softmax_cross_entropy",
         [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 4), Matrix<double>(filled(3, 5))); }},
        {"softmax_cross_entropy",
         [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 4), Matrix<double>(filled(4, 4))); }},
        {"softmax_cross_entropy", [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 4), Labels{0, 1, 2}); }},
        {"softmax_cross_entropy", [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 2), Labels{0, 3}); }},
        {"mse", [=](Tape<double>& t) { mse(c(t, 3, 4), c(t, 3, 1)); }},
        {"sum", [=](Tape<double>& t) { sum(c(t, 3, 4), -1); }},
        {"mean", [=](Tape<double>& t) { mean(c(t, 3, 4), 2); }},
        // the op set of issue 11: shapes and parameters each op cannot take
        {"div_scalar", [=](Tape<double>& t) { (void)(c(t, 2, 2) / 0); }, "by the scalar 0"},
        {"rdiv_scalar", [=](Tape<double>& t) { (void)(1.0 / t.leaf(filled(2, 2, 0.0))); }, "must not be 0"},
        {"sqrt", [=](Tape<double>& t) { sqrt(t.leaf(filled(2, 2, -1.0))); }, "x >= 0"},
        {"log1p", [=](Tape<double>& t) { log1p(t.leaf(filled(2, 2, -2.0))); }, "x >= -1"},
        {"pow", [=](Tape<double>& t) { pow(t.leaf(filled(2, 2, -1.0)), 0.5); }, "integer exponent"},
        {"pow", [=](Tape<double>& t) { pow(t.leaf(filled(2, 2, 0.0)), -1.0); }, "a negative one x != 0"},
        {"pow", [=](Tape<double>& t) { pow(c(t, 2, 2), std::nan("")); }},
        {"clamp", [=](Tape<double>& t) { clamp(c(t, 2, 2), 1.0, -1.0); }, "lo must be <= hi"},
        {"leaky_relu", [=](Tape<double>& t) { leaky_relu(c(t, 2, 2), std::nan("")); }},
        {"elu", [=](Tape<double>& t) { elu(c(t, 2, 2), HUGE_VAL); }},
        {"softplus", [=](Tape<double>& t) { softplus(c(t, 2, 2), 0.0); }, "beta"},
        {"maximum", [=](Tape<double>& t) { maximum(c(t, 3, 4), c(t, 2, 4)); }, "(3x4)"},
        {"minimum", [=](Tape<double>& t) { minimum(c(t, 3, 4), c(t, 3, 2)); }},
        {"where", [=](Tape<double>& t) { autodiff::where(filled(3, 4, 1), c(t, 2, 4), c(t, 3, 4)); }, "2x4"},
        {"where", [=](Tape<double>& t) { autodiff::where(filled(2, 4, 1), c(t, 3, 4), c(t, 3, 4)); }, "mask (2x4)"},
        {"where", [=](Tape<double>& t) { autodiff::where(c(t, 3, 4), c(t, 3, 4), c(t, 3, 4)); }},  // a mask with a gradient
        {"concat", [=](Tape<double>& t) { concat({c(t, 3, 4), c(t, 2, 5)}, 0); }, "same number of columns"},
        {"concat", [=](Tape<double>& t) { concat({c(t, 3, 4), c(t, 2, 4)}, 1); }, "same number of rows"},
        {"concat", [=](Tape<double>& t) { concat({c(t, 3, 4), c(t, 3, 4)}, 2); }},
        {"concat", [=](Tape<double>&) { concat(std::vector<Var<double>>{}, 0); }},
        {"slice", [=](Tape<double>& t) { slice(c(t, 3, 4), 0, 2, 4); }, "3x4"},
        {"slice", [=](Tape<double>& t) { slice(c(t, 3, 4), 1, 2, 2); }},
        {"slice", [=](Tape<double>& t) { slice(c(t, 3, 4), -1, 0, 1); }},
        {"gather", [=](Tape<double>& t) { gather(c(t, 3, 4), Labels{0, 4}, 1); }, "features x vocab"},
        {"gather", [=](Tape<double>& t) { gather(c(t, 3, 4), Labels{3}, 0); }},
        {"gather", [=](Tape<double>& t) { gather(c(t, 3, 4), Labels{}, 1); }},
        {"reshape", [=](Tape<double>& t) { reshape(c(t, 3, 4), Shape{5, 2}); }, "3x4 cannot become 5x2"},
        {"max", [=](Tape<double>& t) { max(c(t, 3, 4), 3); }},
        {"softmax", [=](Tape<double>& t) { softmax(c(t, 3, 4), 2); }},
        {"log_softmax", [=](Tape<double>& t) { log_softmax(c(t, 3, 4), -1); }},
        {"binary_cross_entropy_with_logits", [=](Tape<double>& t) { binary_cross_entropy_with_logits(c(t, 3, 4), c(t, 4, 3)); }},
        {"binary_cross_entropy_with_logits",
         [=](Tape<double>& t) { binary_cross_entropy_with_logits(c(t, 3, 4), filled(3, 4, std::nan(""))); }},
        {"nll_loss", [=](Tape<double>& t) { nll_loss(c(t, 3, 2), Labels{0, 3}); }, "out of range for 3 classes"},
        {"nll_loss", [=](Tape<double>& t) { nll_loss(c(t, 3, 2), Labels{0}); }, "classes x examples"},
        {"huber", [=](Tape<double>& t) { huber(c(t, 3, 4), filled(3, 1)); }},
        {"mse", [=](Tape<double>& t) { mse(c(t, 3, 4), filled(4, 4)); }},
        {"softmax_cross_entropy", [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 4), c(t, 3, 1)); }},
        {"softmax_cross_entropy", [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 2), Labels{0, 1}, 1.5); }, "label_smoothing"},
        {"softmax_cross_entropy", [=](Tape<double>& t) { softmax_cross_entropy(c(t, 3, 2), filled(3, 2), -0.1); }},
        {"layer_norm", [=](Tape<double>& t) { layer_norm(c(t, 3, 4), c(t, 4, 1), c(t, 3, 1)); }, "gain is 4x1"},
        {"layer_norm", [=](Tape<double>& t) { layer_norm(c(t, 3, 4), c(t, 3, 1), c(t, 1, 3)); }},
        {"layer_norm", [=](Tape<double>& t) { layer_norm(c(t, 3, 4), 0.0); }},
        {"batch_norm", [=](Tape<double>& t) { batch_norm(c(t, 3, 4), c(t, 3, 4), c(t, 3, 1)); }},
        {"batch_norm", [=](Tape<double>& t) { batch_norm(c(t, 3, 1)); }, "more than 1 example"},
        {"batch_norm", [=](Tape<double>& t) { batch_norm(c(t, 3, 4), -1e-5); }},
        {"batch_norm_statistics", [=](Tape<double>& t) { batch_norm_statistics(c(t, 3, 4)); }},
        {"dropout", [=](Tape<double>& t) { CounterRng r(1); dropout(c(t, 3, 4), 1.0, r); }, "[0, 1)"},
        {"dropout", [=](Tape<double>& t) { CounterRng r(1); dropout(c(t, 3, 4), -0.5, r); }},
        {"backward", [=](Tape<double>& t) { t.backward(c(t, 3, 4), filled(4, 3)); }},
        {"backward", [=](Tape<double>& t) { t.backward(c(t, 3, 4)); }},
        // conv2d and the pools: images are columns, (C*H*W) x m; W is C_out x (C_in*kh*kw).
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 49, 2), {2, 5, 5}, c(t, 4, 18), c(t, 4, 1), {3, 3}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 9), c(t, 4, 1), {3, 3}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 18), c(t, 3, 1), {3, 3}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 18), c(t, 4, 2), {3, 3}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 18), c(t, 4, 1), {3, 3, 0}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 72), {6, 6}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 5, 5}, c(t, 4, 2), {0, 1}); }},
        {"conv2d", [=](Tape<double>& t) { conv2d(c(t, 50, 2), {2, 25, 0}, c(t, 4, 2), {1, 1}); }},
        {"conv2d", [](Tape<double>&) { conv2d_output_shape({1, 5, 5}, 0, {3, 3}); }},
        {"max_pool2d", [=](Tape<double>& t) { max_pool2d(c(t, 50, 2), {2, 5, 5}, {3, 3, 1, 2}); }},
        {"max_pool2d", [=](Tape<double>& t) { max_pool2d(c(t, 50, 2), {2, 5, 5}, {2, 2, 0, 0}); }},
        {"max_pool2d", [=](Tape<double>& t) { max_pool2d(c(t, 50, 2), {2, 5, 5}, 6); }},
        {"max_pool2d", [=](Tape<double>& t) { max_pool2d(c(t, 51, 2), {2, 5, 5}, 2); }},
        {"avg_pool2d", [=](Tape<double>& t) { avg_pool2d(c(t, 50, 2), {2, 5, 5}, {2, 2, 2, 2}); }},
        {"avg_pool2d", [=](Tape<double>& t) { avg_pool2d(c(t, 50, 2), {5, 2, 4}, 2); }},
        {"avg_pool2d", [=](Tape<double>& t) { avg_pool2d(c(t, 50, 2), {2, 5, 5}, 0); }},
        {"pool2d", [](Tape<double>&) { pool2d_output_shape({1, 2, 2}, {3, 3, 1, 0}); }},
    };
}

}  // namespace

TEST_CASE("every op refuses a shape it cannot take, naming itself", "[hardening][errors]") {
    for (const BadCall& bad : bad_shape_calls()) {
        INFO("op: " << bad.op);
        Tape<double> tape;
        try {
            bad.call(tape);
            FAIL("no exception from " << bad.op);
        } catch (const Error& e) {
            CHECK_THAT(e.what(), StartsWith(std::string(bad.op) + ":") && Contains(bad.mentions));
        }
    }
}

TEST_CASE("empty matrices are refused at every entry point", "[hardening][errors]") {
    for (const auto& shape : std::vector<std::pair<std::size_t, std::size_t>>{{0, 4}, {4, 0}, {0, 0}}) {
        const Matrix<double> empty({shape.first, shape.second});
        INFO("shape " << shape.first << "x" << shape.second);
        Tape<double> tape;
        CHECK_THROWS_AS(tape.constant(empty), Error);
        CHECK_THROWS_AS(tape.leaf(empty), Error);
        CHECK_THROWS_AS(Parameter<double>(empty, "W"), Error);
        // An empty seed, empty one-hot targets, no labels: each is a shape mismatch.
        Var<double> x = tape.leaf(filled(2, 3));
        CHECK_THROWS_WITH(tape.backward(x, empty), StartsWith("backward:"));
        CHECK_THROWS_WITH(softmax_cross_entropy(x, empty), StartsWith("softmax_cross_entropy:"));
        // nn: a layer of zero units is refused before any tape sees it.
        CHECK_THROWS_AS(nn::Linear<double>(empty, Matrix<double>({shape.first, 1}), "L1"), std::exception);
    }
    Tape<double> tape;
    CHECK_THROWS_AS(softmax_cross_entropy(tape.leaf(filled(2, 3)), Labels{}), Error);
    CHECK_THROWS_AS(nn::MLP<double>({4, 0, 3}), std::invalid_argument);
    CHECK_THROWS_AS(nn::MLP<double>({0, 3}), std::invalid_argument);
}

TEST_CASE("a handle from before reset throws even where a new entry took its index", "[hardening][errors]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(2, 2));
    Var<double> loss = sum(x * x);
    tape.reset();
    Var<double> x2 = tape.leaf(filled(2, 2, 1.0));
    Var<double> loss2 = sum(x2 * x2);
    REQUIRE(x2.index() == x.index());
    REQUIRE(loss2.index() == loss.index());
    CHECK_THROWS_WITH(tape.backward(loss), Contains("backward: stale handle"));
    CHECK_THROWS_WITH(x.grad(), Contains("stale handle"));
    CHECK_THROWS_WITH(x2 + x, Contains("add: stale handle"));
    // The refusals left the new recording intact.
    tape.backward(loss2);
    CHECK((x2.grad() == filled(2, 2, 2.0)));
}

TEST_CASE("backward on a reset tape with nothing recorded throws", "[hardening][errors]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(1, 1));
    tape.backward(x);
    tape.reset();
    CHECK(tape.size() == 0);
    CHECK_THROWS_AS(tape.backward(x), Error);
    CHECK_THROWS_AS(tape.backward(Var<double>()), Error);
}

TEST_CASE("every op refuses a handle from another tape, naming itself", "[hardening][errors]") {
    Tape<double> tape, other;
    Var<double> a = tape.leaf(filled(2, 2)), b = tape.leaf(filled(2, 2)), b1 = tape.leaf(filled(2, 1));
    Var<double> f = other.leaf(filled(2, 2)), f1 = other.leaf(filled(2, 1));
    const std::vector<std::pair<const char*, std::function<void()>>> calls = {
        {"matmul", [&] { matmul(a, f); }},        {"linear", [&] { linear(a, b, f1); }},
        {"linear", [&] { linear(f, b, b1); }},    {"add", [&] { add(f, a); }},
        {"sub", [&] { sub(a, f); }},              {"mul", [&] { mul(a, f); }},
        {"div", [&] { div(f, a); }},              {"mse", [&] { mse(a, f); }},
        {"conv2d", [&] { conv2d(a, {1, 2, 1}, f, {1, 1}); }},
        {"conv2d", [&] { conv2d(a, {1, 2, 1}, b, f1, {1, 1}); }},
        {"backward", [&] { tape.backward(sum(f)); }},
        {"backward", [&] { tape.backward(f, filled(2, 2)); }},
    };
    for (const auto& [op, call] : calls) {
        INFO("op: " << op);
        CHECK_THROWS_WITH(call(), StartsWith(std::string(op) + ":") && Contains("another tape"));
    }
}

TEST_CASE("backward from a row or column output without a seed throws", "[hardening][errors]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(3, 4));
    CHECK_THROWS_WITH(tape.backward(sum(x, 0)), Contains("1x4, not 1x1"));
    CHECK_THROWS_WITH(tape.backward(sum(x, 1)), Contains("3x1, not 1x1"));
}

TEST_CASE("an optimizer step between forward and backward is refused, not silently wrong", "[hardening][parameter]") {
    nn::MLP<double> net({3, 4, 2}, nn::Activation::relu, nn::Init::he, 7);
    nn::SGD<double> opt(net.parameters(), 0.1);
    Tape<double> tape;
    auto loss = softmax_cross_entropy(net(tape, filled(3, 5)), Labels{0, 1, 0, 1, 1});
    opt.step();  // updates every parameter in place
    CHECK_THROWS_WITH(tape.backward(loss), Contains("modified in place after it was recorded"));
}

TEST_CASE("conv2d and the pools name the shapes, the geometry and the convention", "[hardening][errors]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(filled(50, 2)), W = tape.leaf(filled(4, 18)), b = tape.leaf(filled(4, 1));
    CHECK_THROWS_WITH(conv2d(tape.leaf(filled(49, 2)), {2, 5, 5}, W, b, {3, 3}),
                      Contains("x is 49x2 but the image is 2x5x5") && Contains("C*H*W = 50 rows") &&
                          Contains("features in C x H x W order"));
    CHECK_THROWS_WITH(conv2d(x, {2, 5, 5}, tape.leaf(filled(4, 9)), b, {3, 3}),
                      Contains("W is 4x9") && Contains("C_out x (C_in*kh*kw) = C_out x 18"));
    CHECK_THROWS_WITH(conv2d(x, {2, 5, 5}, W, tape.leaf(filled(3, 1)), {3, 3}),
                      Contains("b is 3x1 but W is 4x18: b must be 4x1"));
    CHECK_THROWS_WITH(conv2d(x, {2, 5, 5}, tape.leaf(filled(4, 72)), {6, 6, 1, 0}),
                      Contains("6x6 kernel is larger than the padded image 5x5") && Contains("padding 0"));
    CHECK_THROWS_WITH(conv2d(x, {2, 5, 5}, W, b, {3, 3, 0, 1}), Contains("stride 0"));
    CHECK_THROWS_WITH(max_pool2d(x, {2, 5, 5}, {3, 3, 1, 2}),
                      Contains("padding 2 with a 3x3 kernel") && Contains("at most half the kernel"));
}
