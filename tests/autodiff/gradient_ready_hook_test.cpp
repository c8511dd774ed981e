// The tape's gradient-ready hook: called once per parameter, as soon as the reverse sweep
// has passed every entry that adds to its gradient, in the order the sweep finishes them.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "autodiff/autodiff.hpp"

using namespace autodiff;

namespace {

// What the hook saw: each parameter's name and a copy of its gradient at that moment.
struct Seen {
    std::vector<std::string> names;
    std::vector<Matrix<double>> grads;
};

void remember(void* context, Parameter<double>& p) {
    auto* seen = static_cast<Seen*>(context);
    seen->names.push_back(p.name);
    seen->grads.push_back(p.grad);
}

Matrix<double> filled(std::size_t rows, std::size_t cols, double start) {
    Matrix<double> m = xt::zeros<double>({rows, cols});
    for (std::size_t k = 0; k < m.size(); ++k) m.data()[k] = start + 0.1 * double(k);
    return m;
}

}  // namespace

TEST_CASE("the gradient-ready hook sees each parameter once, final, in reverse recording order", "[tape][hook]") {
    Parameter<double> W1(filled(3, 2, 0.1), "W1"), b1(filled(3, 1, -0.2), "b1");
    Parameter<double> W2(filled(2, 3, -0.3), "W2"), b2(filled(2, 1, 0.05), "b2");
    Parameter<double> unused(filled(1, 1, 1.0), "unused");
    Tape<double> tape;
    Seen seen;
    tape.set_gradient_ready_hook(remember, &seen);
    const Matrix<double> x = filled(2, 4, 0.5);
    // One statement per leaf: the order of evaluation of a call's arguments is unspecified.
    Var<double> w1 = tape.parameter(W1), c1 = tape.parameter(b1);
    Var<double> h = relu(linear(w1, tape.constant(x), c1));
    Var<double> extra = tape.parameter(unused) * 0.0;  // recorded, adds nothing to the loss
    (void)extra;
    Var<double> w2 = tape.parameter(W2), c2 = tape.parameter(b2);
    Var<double> loss = softmax_cross_entropy(linear(w2, h, c2), Labels{0, 1, 1, 0});
    tape.backward(loss);

    REQUIRE(seen.names == std::vector<std::string>{"b2", "W2", "unused", "b1", "W1"});
    const std::vector<const Parameter<double>*> in_order = {&b2, &W2, &unused, &b1, &W1};
    for (std::size_t k = 0; k < in_order.size(); ++k) {
        INFO(seen.names[k]);
        REQUIRE((seen.grads[k] == in_order[k]->grad));  // nothing was added after the hook
    }
}

TEST_CASE("a parameter recorded twice is ready after its earliest leaf, with both uses summed", "[tape][hook]") {
    Parameter<double> W(filled(2, 2, 0.3), "W");
    Tape<double> tape;
    Seen seen;
    tape.set_gradient_ready_hook(remember, &seen);
    Var<double> once = matmul(tape.parameter(W), tape.constant(filled(2, 3, 0.2)));
    Var<double> twice = matmul(tape.parameter(W), tanh(once));
    tape.backward(sum(twice));
    REQUIRE(seen.names == std::vector<std::string>{"W"});
    REQUIRE((seen.grads[0] == W.grad));
}

TEST_CASE("the gradient-ready hook is silent when removed and in value_and_grad mode", "[tape][hook]") {
    Parameter<double> W(filled(2, 2, 0.3), "W");
    Tape<double> tape;
    Seen seen;
    tape.set_gradient_ready_hook(remember, &seen);
    tape.set_gradient_ready_hook(nullptr, nullptr);
    tape.backward(sum(tape.parameter(W) * 2.0));
    REQUIRE(seen.names.empty());

    tape.reset();
    tape.set_gradient_ready_hook(remember, &seen);
    tape.set_accumulate_into_parameters(false);  // p.grad is not where the gradient goes
    tape.backward(sum(tape.parameter(W) * 2.0));
    REQUIRE(seen.names.empty());
}

TEST_CASE("the hook is not called for a parameter recorded under NoGrad, which gets no gradient and may be gone",
          "[tape][hook]") {
    // The NoGrad entry's handle lives on after its parameter was destroyed: the hook used to
    // be handed the destroyed parameter.
    Parameter<double> p(filled(1, 1, 2.0), "p");
    Tape<double> tape;
    Seen seen;
    tape.set_gradient_ready_hook(remember, &seen);
    Var<double> kept;
    {
        Parameter<double> gone(filled(1, 1, 9.0), "gone");
        NoGrad<double> no_grad(tape);
        kept = tape.parameter(gone);
    }
    tape.backward(sum(tape.parameter(p) * tape.parameter(p)));
    CHECK((seen.names == std::vector<std::string>{"p"}));
    CHECK(p.grad(0, 0) == Approx(4.0).epsilon(0));
}

TEST_CASE("a tape refuses to call the hook of an owner destroyed while the hook is set", "[tape][hook]") {
    // Found by an attack: a data-parallel sync destroyed while still attached was called, in
    // freed memory, by the tape's next sweep. An owner's identity is a registry slot, as a
    // Parameter's is; here one is taken and given up by hand.
    Parameter<double> W(filled(2, 2, 0.3), "W");
    Tape<double> tape;
    Seen seen;
    const std::uint32_t slot = detail::TapeRegistry::acquire();
    const std::uint64_t identity = detail::TapeRegistry::next_generation();
    detail::TapeRegistry::generation(slot).store(identity);
    tape.set_gradient_ready_hook(remember, &seen, HookOwner{&detail::TapeRegistry::generation(slot), identity});
    tape.backward(sum(tape.parameter(W) * 2.0));
    REQUIRE(seen.names == std::vector<std::string>{"W"});
    detail::TapeRegistry::release(slot);  // the owner is gone
    tape.reset();
    REQUIRE_THROWS_WITH(tape.backward(sum(tape.parameter(W) * 2.0)),
                        Catch::Matchers::Contains("the gradient-ready hook's owner") &&
                            Catch::Matchers::Contains("was destroyed"));
    REQUIRE(seen.names.size() == 1);  // not called
    tape.reset();
    tape.set_gradient_ready_hook(nullptr, nullptr);
    tape.backward(sum(tape.parameter(W) * 2.0));
    REQUIRE(W.grad(0, 0) == Approx(4.0).epsilon(0));  // the refused sweep added nothing
}
