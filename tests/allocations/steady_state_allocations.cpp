// Recording the same training step again with the same shapes allocates nothing: the tape
// keeps its buffers across reset(). Counted with a replaced global operator new.

#include <atomic>
#include <cstdlib>
#include <new>

#include <catch2/catch.hpp>

#include <xtensor/xnoalias.hpp>

#include "autodiff/autodiff.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace autodiff;

TEST_CASE("a steady-state training step of an MLP allocates nothing", "[allocations]") {
    Parameter<double> W1(xt::ones<double>({10, 5}) * 0.1), b1(xt::zeros<double>({10, 1}));
    Parameter<double> W2(xt::ones<double>({4, 10}) * -0.1), b2(xt::zeros<double>({4, 1}));
    const Matrix<double> X = xt::ones<double>({5, 32});
    Labels y(32, 2);
    Tape<double> tape;
    std::vector<long> per_step;
    for (int step = 0; step < 5; ++step) {
        const long before = allocations.load();
        tape.reset();
        Var<double> A1 = relu(linear(tape.parameter(W1), tape.constant(X), tape.parameter(b1)));
        Var<double> loss = softmax_cross_entropy(linear(tape.parameter(W2), A1, tape.parameter(b2)), y);
        tape.backward(loss);
        for (Parameter<double>* p : {&W1, &b1, &W2, &b2}) {
            xt::noalias(p->value) -= 0.1 * p->grad;
            p->zero_grad();
        }
        per_step.push_back(allocations.load() - before);
    }
    INFO("allocations per step: " << per_step[0] << " " << per_step[1] << " " << per_step[4]);
    REQUIRE(per_step[0] > 0);
    for (std::size_t s = 1; s < per_step.size(); ++s) REQUIRE(per_step[s] == 0);
}
