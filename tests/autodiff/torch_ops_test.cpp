// Values and gradients of every op against PyTorch's (float64), on the fixtures written by
// tests/data/torch_ops/generate.py: each case's `out` and `grad_<input>` to 1e-12 relative.

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "torch_fixture.hpp"

using namespace autodiff;
using test::FixtureCase;

namespace {

using CaseOp = std::function<Var<double>(const FixtureCase&, const std::vector<Var<double>>&)>;

// Records `op` over leaves made of the case's `inputs` and compares with PyTorch's.
void check_case(const FixtureCase& c, const std::vector<std::string>& inputs, const CaseOp& op, double absolute = 1e-13) {
    test::check_torch_case(c, inputs, op, 1e-12, absolute);
}

// Runs check_case over the cases of `file` whose name starts with `prefix`; returns how many.
std::size_t check_cases(const std::string& file, const std::string& prefix, const std::vector<std::string>& inputs,
                        const CaseOp& op, double absolute = 1e-13) {
    std::size_t checked = 0;
    for (const FixtureCase& c : test::load_torch_fixture("torch_ops/" + file)) {
        if (c.name.rfind(prefix, 0) != 0) continue;
        check_case(c, inputs, op, absolute);
        ++checked;
    }
    REQUIRE(checked > 0);
    return checked;
}

}  // namespace

TEST_CASE("losses equal PyTorch's values and gradients", "[torch]") {
    SECTION("mse") {
        check_cases("losses.txt", "mse_", {"p", "t"}, [](const FixtureCase&, auto& x) { return mse(x[0], x[1]); });
    }
}

TEST_CASE("a handle mixed with a scalar equals PyTorch", "[torch]") {
    auto c = [](const FixtureCase& f) { return f.scalar("c"); };
    check_cases("scalars.txt", "add_", {"x"}, [&](const FixtureCase& f, auto& x) { return x[0] + c(f); });
    check_cases("scalars.txt", "sub_", {"x"}, [&](const FixtureCase& f, auto& x) { return x[0] - c(f); });
    check_cases("scalars.txt", "rsub_", {"x"}, [&](const FixtureCase& f, auto& x) { return c(f) - x[0]; });
    check_cases("scalars.txt", "mul_", {"x"}, [&](const FixtureCase& f, auto& x) { return x[0] * c(f); });
    check_cases("scalars.txt", "div_", {"x"}, [&](const FixtureCase& f, auto& x) { return x[0] / c(f); });
    check_cases("scalars.txt", "rdiv_", {"x"}, [&](const FixtureCase& f, auto& x) { return c(f) / x[0]; });
}

TEST_CASE("elementwise functions equal PyTorch, kinks included", "[torch]") {
    using F = std::function<Var<double>(const FixtureCase&, Var<double>)>;
    const std::vector<std::pair<std::string, F>> ops = {
        {"square_", [](auto&, auto x) { return square(x); }},
        {"sqrt_", [](auto&, auto x) { return sqrt(x); }},
        {"abs_", [](auto&, auto x) { return abs(x); }},
        {"log1p_", [](auto&, auto x) { return log1p(x); }},
        {"leaky_relu_", [](auto& c, auto x) { return leaky_relu(x, c.scalar("slope")); }},
        {"elu_", [](auto& c, auto x) { return elu(x, c.scalar("alpha")); }},
        {"gelu_", [](auto&, auto x) { return gelu(x); }},
        {"softplus_", [](auto&, auto x) { return softplus(x); }},
        {"silu_", [](auto&, auto x) { return silu(x); }},
        {"clamp_", [](auto& c, auto x) { return clamp(x, c.scalar("lo"), c.scalar("hi")); }},
        {"pow_", [](auto& c, auto x) { return pow(x, c.scalar("p")); }},
    };
    for (const auto& [prefix, op] : ops) {
        INFO(prefix);
        check_cases("elementwise.txt", prefix, {"x"}, [&](const FixtureCase& c, auto& x) { return op(c, x[0]); });
    }
    // The defaults are PyTorch's.
    check_cases("elementwise.txt", "leaky_relu_1", {"x"}, [](auto&, auto& x) { return leaky_relu(x[0]); });
    check_cases("elementwise.txt", "elu_1", {"x"}, [](auto&, auto& x) { return elu(x[0]); });
}

TEST_CASE("where equals PyTorch under every broadcast", "[torch]") {
    for (const FixtureCase& c : test::load_torch_fixture("torch_ops/broadcast.txt")) {
        if (c.name.rfind("where_", 0) != 0) continue;
        check_case(c, {"a", "b"}, [](const FixtureCase& f, auto& x) { return autodiff::where(f["mask"], x[0], x[1]); });
    }
}

TEST_CASE("structure ops equal PyTorch", "[torch]") {
    const auto cases = test::load_torch_fixture("torch_ops/structure.txt");
    std::size_t checked = 0;
    for (const FixtureCase& c : cases) {
        const std::string& n = c.name;
        const int axis = c.has("axis") ? static_cast<int>(c.scalar("axis")) : 0;
        auto starts = [&](const char* p) { return n.rfind(p, 0) == 0; };
        if (starts("concat")) {
            std::vector<std::string> names;
            for (const char* k : {"a", "b", "c", "d", "e"})
                if (c.has(k)) names.push_back(k);
            check_case(c, names, [axis](auto&, auto& x) { return concat(x, axis); });
        } else if (starts("slice")) {
            check_case(c, {"x"}, [axis](auto& f, auto& x) {
                return slice(x[0], axis, std::size_t(f.scalar("begin")), std::size_t(f.scalar("end")));
            });
        } else if (starts("gather")) {
            check_case(c, {"table"}, [axis](auto& f, auto& x) { return gather(x[0], f.indices("ids"), axis); });
        } else if (starts("reshape")) {
            check_case(c, {"x"}, [](auto& f, auto& x) {
                const auto s = f.indices("shape");
                return reshape(x[0], Shape{s[0], s[1]});
            });
        } else if (starts("sum_")) {
            check_case(c, {"x"}, [axis](auto&, auto& x) { return sum(x[0], axis); });
        } else if (starts("mean_")) {
            check_case(c, {"x"}, [axis](auto&, auto& x) { return mean(x[0], axis); });
        } else if (starts("max_")) {
            check_case(c, {"x"}, [axis](auto&, auto& x) { return max(x[0], axis); });
        } else if (starts("softmax_")) {
            check_case(c, {"x"}, [axis](auto&, auto& x) { return softmax(x[0], axis); });
        } else if (starts("log_softmax_")) {
            check_case(c, {"x"}, [axis](auto&, auto& x) { return log_softmax(x[0], axis); });
        } else {
            FAIL("no check for fixture case " << n);
        }
        ++checked;
    }
    REQUIRE(checked == cases.size());
}

TEST_CASE("losses equal PyTorch's", "[torch]") {
    check_cases("losses.txt", "bce_logits", {"z", "y"},
                [](auto&, auto& x) { return binary_cross_entropy_with_logits(x[0], x[1]); });
    check_cases("losses.txt", "bce_logits", {"z"},  // targets as a Matrix: the same value, z's gradient
                [](auto& c, auto& x) { return binary_cross_entropy_with_logits(x[0], c["y"]); });
    check_cases("losses.txt", "nll_", {"logp"}, [](auto& c, auto& x) { return nll_loss(x[0], c.indices("labels")); });
    check_cases("losses.txt", "huber_", {"p", "t"}, [](auto&, auto& x) { return huber(x[0], x[1]); });
    check_cases("losses.txt", "huber_", {"p"}, [](auto& c, auto& x) { return huber(x[0], c["t"]); });
    check_cases("losses.txt", "mse_", {"p"}, [](auto& c, auto& x) { return mse(x[0], c["t"]); });
    check_cases("losses.txt", "sce_labels", {"z"}, [](auto& c, auto& x) {
        return softmax_cross_entropy(x[0], c.indices("labels"), c.scalar("smoothing"));
    });
    check_cases("losses.txt", "sce_labels_ls0.0", {"z"},
                [](auto& c, auto& x) { return softmax_cross_entropy(x[0], c.indices("labels")); });
    check_cases("losses.txt", "sce_probs_ls0.0", {"z", "y"},  // targets as a handle get their gradient too
                [](auto&, auto& x) { return softmax_cross_entropy(x[0], x[1]); });
    check_cases("losses.txt", "sce_probs", {"z"},
                [](auto& c, auto& x) { return softmax_cross_entropy(x[0], c["y"], c.scalar("smoothing")); });
}

TEST_CASE("layer_norm and batch_norm equal PyTorch's", "[torch]") {
    // Over a single feature x_hat is exactly 0 and so is dx; PyTorch's float64 answer is
    // rounding noise times 1/sqrt(eps) (up to 1.1e-13), so those cases are held to 1e-11 absolute.
    auto plain = [](auto&, auto& x) { return layer_norm(x[0]); };
    auto affine = [](auto&, auto& x) { return layer_norm(x[0], x[1], x[2]); };
    check_cases("normalization.txt", "layer_norm_1", {"x"}, plain, 1e-11);
    check_cases("normalization.txt", "layer_norm_affine_1", {"x", "gain", "bias"}, affine, 1e-11);
    for (const char* p : {"layer_norm_3", "layer_norm_4", "layer_norm_6"}) check_cases("normalization.txt", p, {"x"}, plain);
    for (const char* p : {"layer_norm_affine_3", "layer_norm_affine_4", "layer_norm_affine_6"})
        check_cases("normalization.txt", p, {"x", "gain", "bias"}, affine);
    for (const char* p : {"batch_norm_1", "batch_norm_3", "batch_norm_6"})
        check_cases("normalization.txt", p, {"x"}, [](auto&, auto& x) { return batch_norm(x[0]); });
    check_cases("normalization.txt", "batch_norm_affine", {"x", "gain", "bias"},
                [](auto&, auto& x) { return batch_norm(x[0], x[1], x[2]); });
}
