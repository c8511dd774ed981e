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

// Records `op` over leaves made of the case's `inputs`, sweeps back the case's seed and
// compares the value and every input's gradient with PyTorch's.
using CaseOp = std::function<Var<double>(const FixtureCase&, const std::vector<Var<double>>&)>;

void check_case(const FixtureCase& c, const std::vector<std::string>& inputs, const CaseOp& op) {
    INFO(c.file << ": case " << c.name);
    Tape<double> tape;
    std::vector<Var<double>> leaves;
    for (const std::string& name : inputs) leaves.push_back(tape.leaf(c[name]));
    Var<double> y = op(c, leaves);
    test::require_matches_torch(y.value(), c["out"], "value");
    tape.backward(y, c["seed"]);
    for (std::size_t i = 0; i < inputs.size(); ++i)
        test::require_matches_torch(leaves[i].grad(), c["grad_" + inputs[i]], "gradient of " + inputs[i]);
}

// Runs check_case over the cases of `file` whose name starts with `prefix`; returns how many.
std::size_t check_cases(const std::string& file, const std::string& prefix, const std::vector<std::string>& inputs,
                        const CaseOp& op) {
    std::size_t checked = 0;
    for (const FixtureCase& c : test::load_torch_fixture("torch_ops/" + file)) {
        if (c.name.rfind(prefix, 0) != 0) continue;
        check_case(c, inputs, op);
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
