// Exception safety of recording (issue 10, item 4): an allocation that fails anywhere in a
// training step (xtensor sets a matrix's shape before it allocates its storage) leaves the
// tape consistent, so recording again after reset() never writes past a buffer. The k-th
// allocation of the step throws std::bad_alloc, for every k until the step needs fewer;
// then the same tape records the step cleanly and must give the reference loss and
// gradients exactly. Run under AddressSanitizer by the CI's sanitizer stage. A program of
// its own: it replaces the global operator new.

#include <atomic>
#include <cstdlib>
#include <new>

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
#include "autodiff/replay.hpp"
#include "nn/mlp.hpp"

namespace {
std::atomic<long> fail_countdown{0};  // > 0: the allocation that brings it to 0 throws

void* allocate(std::size_t size) {
    if (fail_countdown.load() > 0 && --fail_countdown == 0) throw std::bad_alloc();
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
// The nothrow form too (Catch2 uses it): otherwise it comes from the runtime, and
// AddressSanitizer reports our delete's free() of its memory as a mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size ? size : 1); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

using autodiff::Matrix;

namespace {

struct StepResult {
    double loss = 0;
    std::vector<Matrix<double>> grads;
};

StepResult record_step(autodiff::Tape<double>& tape, nn::MLP<double>& net, const Matrix<double>& X,
                       const autodiff::Labels& y) {
    tape.reset();
    auto loss = autodiff::softmax_cross_entropy(net(tape, X), y);
    tape.backward(loss);
    StepResult r{loss.value()(0, 0), {}};
    for (auto* p : net.parameters()) r.grads.push_back(p->grad);
    return r;
}

// Runs `body` with its k-th allocation failing: whether it threw std::bad_alloc (false: it
// needs fewer than k allocations, so every k has been tried).
template <class Body>
bool fails_at_allocation(long k, Body&& body) {
    fail_countdown = k;
    bool threw = false;
    try {
        body();
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    fail_countdown = 0;
    return threw;
}

}  // namespace

TEST_CASE("an allocation failing anywhere in a training step leaves the tape consistent", "[allocations]") {
    Matrix<double> X({5, 16});
    autodiff::Labels y(16);
    for (std::size_t j = 0; j < 16; ++j) {
        for (std::size_t i = 0; i < 5; ++i) X(i, j) = 0.1 * double((i * 7 + j * 3) % 11) - 0.5;
        y[j] = j % 4;
    }
    const auto make_net = [] { return nn::MLP<double>({5, 10, 10, 4}, nn::Activation::relu, nn::Init::notebook, 1); };
    StepResult reference;
    {
        auto net = make_net();
        autodiff::Tape<double> tape;
        reference = record_step(tape, net, X, y);
    }

    long failures = 0;
    for (long k = 1;; ++k) {
        auto net = make_net();
        autodiff::Tape<double> tape;  // fresh: its first step allocates every buffer
        if (!fails_at_allocation(k, [&] { record_step(tape, net, X, y); })) break;
        ++failures;
        net.zero_grad();
        const StepResult again = record_step(tape, net, X, y);  // same tape, reusing what it kept
        INFO("allocation " << k << " failed");
        REQUIRE(again.loss == reference.loss);
        for (std::size_t i = 0; i < again.grads.size(); ++i) REQUIRE((again.grads[i] == reference.grads[i]));
    }
    CHECK(failures > 10);  // the step did allocate, and each of those allocations failed once
}

// The same for a Replay: an allocation failing anywhere in making one (its plan, its arena,
// the list of entries whose memory it owns) or in its first run leaves the tape able to make
// another, which gives the gradients of the recording exactly.
TEST_CASE("an allocation failing anywhere in making or running a Replay leaves the tape able to make another",
          "[allocations]") {
    Matrix<double> x({14, 1}), w0({14, 1}), b0({14, 1});
    for (std::size_t i = 0; i < 14; ++i) x(i, 0) = 0.1 * double(i) - 0.6, w0(i, 0) = 0.05 * double(i % 5), b0(i, 0) = 0.2;
    autodiff::Parameter<double> w(w0), b(b0);
    autodiff::Tape<double> tape;
    const auto X = tape.constant_ref(x);
    auto h = autodiff::sigmoid(X * tape.parameter(w) + tape.parameter(b));  // an affine step
    h = autodiff::tanh(h * h) * h;
    const auto loss = autodiff::sum(h);
    tape.backward(loss);
    const Matrix<double> reference_w = w.grad, reference_b = b.grad;

    long failures = 0;
    for (long k = 1;; ++k) {
        w.zero_grad(), b.zero_grad();
        if (!fails_at_allocation(k, [&] { autodiff::Replay<double>(tape, loss).run(); })) break;
        ++failures;
        INFO("allocation " << k << " failed");
        w.zero_grad(), b.zero_grad();
        autodiff::Replay<double> again(tape, loss);
        again.run();
        REQUIRE((w.grad == reference_w));
        REQUIRE((b.grad == reference_b));
    }
    CHECK(failures > 5);
}

// A same-shape op records through Tape::record_flat: an allocation failing anywhere in it
// (its value's buffer, or pinning a parameter read under NoGrad, which lists it for backward's
// checks) leaves the tape as it was: no entry left over.
TEST_CASE("an allocation failing while a same-shape op records leaves no entry behind", "[allocations]") {
    long failures = 0;
    for (long k = 1;; ++k) {
        autodiff::Parameter<double> p(xt::ones<double>({4, 1}));
        autodiff::Tape<double> tape;
        autodiff::Var<double> P;
        {
            autodiff::NoGrad<double> no_grad(tape);
            P = tape.parameter(p);  // an entry recorded under NoGrad: pinned when a recorded op reads it
        }
        const std::size_t entries = tape.size(), live = tape.live_entries();
        if (!fails_at_allocation(k, [&] { (void)autodiff::tanh(P); })) break;
        ++failures;
        INFO("allocation " << k << " failed");
        REQUIRE(tape.size() == entries);
        REQUIRE(tape.live_entries() == live);
    }
    CHECK(failures >= 2);  // the value's buffer, then the list of in-place entries
}

// Under NoGrad a recording may reuse a released entry, the tape's last one among them; an
// allocation failing after that (the entry's extras: a parameter's record, clamp's second
// bound) gave the entry back by shrinking the tape, as for a new one: size() fell by one.
TEST_CASE("an allocation failing while a NoGrad recording reuses the tape's last entry keeps its size",
          "[allocations]") {
    const Matrix<double> m = xt::ones<double>({2, 3});
    autodiff::Parameter<double> p(xt::ones<double>({2, 3}));
    (void)autodiff::clamp(autodiff::Tape<double>().constant(m), -0.5, 0.5);  // registers clamp's kernels first
    auto last_entry_released = [&](autodiff::Tape<double>& tape, autodiff::Var<double>& kept, int released) {
        kept = tape.constant(m);
        std::vector<autodiff::Var<double>> dead;
        for (int i = 0; i < released; ++i) dead.push_back(tape.constant(m));
    };
    auto check = [&](const char* what, int released, auto&& record) {
        long failures = 0;
        for (long k = 1;; ++k) {
            autodiff::Tape<double> tape;
            autodiff::NoGrad<double> no_grad(tape);
            autodiff::Var<double> x;
            last_entry_released(tape, x, released);
            const std::size_t entries = tape.size(), live = tape.live_entries();
            if (!fails_at_allocation(k, [&] { record(tape, x); })) break;
            ++failures;
            INFO(what << ": allocation " << k << " failed");
            REQUIRE(tape.size() == entries);
            REQUIRE(tape.live_entries() == live);
            record(tape, x);  // and the tape records it afterwards
            REQUIRE(tape.size() == entries);
        }
        CHECK(failures >= 1);
    };
    check("clamp", 1, [](autodiff::Tape<double>&, const autodiff::Var<double>& x) { (void)autodiff::clamp(x, -0.5, 0.5); });
    // 32 released entries waiting: the last is taken whatever its size.
    check("parameter", 40, [&](autodiff::Tape<double>& tape, const autodiff::Var<double>&) { (void)tape.parameter(p); });
    check("constant_ref", 40, [&](autodiff::Tape<double>& tape, const autodiff::Var<double>&) { (void)tape.constant_ref(m); });
}
