// The tape's semantics: seeding, accumulation, reuse, stale handles, NoGrad, value_and_grad.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <optional>

#include "autodiff/autodiff.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;

namespace {
Matrix<double> M(std::initializer_list<std::initializer_list<double>> rows) { return Matrix<double>(rows); }
}  // namespace

TEST_CASE("backward from a 1x1 output seeds 1", "[tape]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1, 2}, {3, 4}}));
    Var<double> y = x * x;
    tape.backward(sum(y));
    REQUIRE((x.grad() == M({{2, 4}, {6, 8}})));
    REQUIRE((y.grad() == M({{1, 1}, {1, 1}})));
}

// A recurrent model records hundreds of thousands of entries, far more than the cache holds,
// and each line of an entry is a miss (bench/lstm_misses.sh): what only leaves and a few ops
// keep lives in the entry's extras, not in every entry.
TEST_CASE("a tape entry takes nine cache lines, five of them its inline block", "[tape]") {
    STATIC_REQUIRE(sizeof(Node<double>) == 576);
    STATIC_REQUIRE(sizeof(Node<float>) == 576);
}

// An op's second constant lives in the entry's extras, made only when it is not +0: the
// bound -0.0 must not read back as +0.0, and an entry reused by an op without one reads 0.
// What tells a recording that reads the caller's data anew from one whose replays would run
// on the copy made when it was recorded (nn's ReplayedStep asks it of every entry).
TEST_CASE("an entry that copies a caller's matrix says so, and one released or reused does not", "[tape]") {
    Tape<double> tape;
    Parameter<double> W(M({{0.5, -1.0}, {2.0, 0.25}}), "W");
    const Matrix<double> X = M({{1, 2}, {3, 4}}), Y = M({{1, 0}, {0, 1}});
    const auto copies = [&](const Var<double>& v) { return tape.entry(v.index()).holds_caller_copy(); };
    const Var<double> constant = tape.constant(X), leaf = tape.leaf(X), in_place = tape.constant_ref(X);
    const Var<double> w = tape.parameter(W);
    const Var<double> logits = matmul(w, leaf + in_place);
    CHECK(copies(constant));
    CHECK(copies(leaf));
    CHECK(copies(softmax_cross_entropy(logits, Y)));  // its targets
    CHECK_FALSE(copies(in_place));
    CHECK_FALSE(copies(w));
    CHECK_FALSE(copies(logits));
    CHECK_FALSE(copies(softmax_cross_entropy(logits, Labels{0, 1})));
    CHECK_FALSE(copies(softmax_cross_entropy(logits, tape.constant_ref(Y))));

    tape.reset();
    NoGrad<double> guard(tape);
    const Var<double> x = tape.constant_ref(X);
    std::size_t released = 0;
    {
        const Var<double> gone = tape.constant(X);
        released = gone.index();
    }
    CHECK_FALSE(tape.entry(released).holds_caller_copy());  // no handle left: the entry is forgotten
    const Var<double> reused = relu(x);
    REQUIRE(reused.index() == released);
    CHECK_FALSE(copies(reused));
}

TEST_CASE("an op's second constant keeps its sign of zero, and a reused entry forgets it", "[tape]") {
    Tape<double> tape;
    for (int round = 0; round < 2; ++round) {
        tape.reset();
        Var<double> x = tape.leaf(M({{0.5, -2.0}}));
        Var<double> y = clamp(x, -1.0, -0.0);
        REQUIRE(std::signbit(y.value()(0, 0)));
        REQUIRE(y.value()(0, 1) == -1.0);
        REQUIRE(std::signbit(tape.entry(y.index()).scalar2()));
        tape.reset();
        Var<double> z = tape.leaf(M({{0.5, -2.0}}));
        Var<double> w = clamp(z, -1.0, 0.25);  // the same entry, now with a bound of its own
        REQUIRE(tape.entry(w.index()).scalar2() == 0.25);
        tape.reset();
        Var<double> a = tape.leaf(M({{0.5, -2.0}}));
        Var<double> b = leaky_relu(a, 0.5);  // one constant: the bound is gone
        REQUIRE(tape.entry(b.index()).scalar2() == 0.0);
        REQUIRE(!std::signbit(tape.entry(b.index()).scalar2()));
    }
}

TEST_CASE("backward from a non-scalar output needs a seed of its shape", "[tape]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1, 2}, {3, 4}}));
    Var<double> y = 3.0 * x;
    REQUIRE_THROWS_WITH(tape.backward(y), Contains("2x2, not 1x1"));
    REQUIRE_THROWS_WITH(tape.backward(y, M({{1, 1}})), Contains("seed is 1x2 but the output is 2x2"));
    tape.backward(y, M({{1, 0}, {0, 2}}));
    REQUIRE((x.grad() == M({{3, 0}, {0, 6}})));
}

TEST_CASE("backward refuses a seed that is not finite, and the tape can still be swept", "[tape]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(M({{1, 2}}));
    Var<double> y = 3.0 * x;
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_WITH(tape.backward(y, M({{1, nan}})), Contains("backward: the seed (1x2) holds nan at row 0, column 1"));
    REQUIRE_THROWS_WITH(tape.backward(y, M({{-inf, 1}})), Contains("backward: the seed (1x2) holds -inf at row 0, column 0"));
    tape.backward(y, M({{1, 2}}));
    REQUIRE((x.grad() == M({{3, 6}})));
}

TEST_CASE("parameter gradients accumulate across backward calls until zero_grad", "[tape]") {
    Parameter<double> w(M({{2.0}}), "w");
    Tape<double> tape;
    for (int step = 0; step < 3; ++step) {
        tape.reset();
        Var<double> x = tape.constant(M({{5.0}}));
        tape.backward(tape.parameter(w) * x);
    }
    REQUIRE(w.grad(0, 0) == 15.0);
    w.zero_grad();
    REQUIRE(w.grad(0, 0) == 0.0);
}

TEST_CASE("a parameter used twice gets the sum of both uses", "[tape]") {
    Parameter<double> w(M({{3.0}}));
    Tape<double> tape;
    Var<double> a = tape.parameter(w);
    Var<double> b = tape.parameter(w);
    tape.backward(a * b + a);  // d/dw (w^2 + w) = 2w + 1
    REQUIRE(w.grad(0, 0) == 7.0);
}

// gradient_of found a parameter's entries by address alone: a parameter made where a recorded
// one was destroyed got the dead one's gradient (with accumulation off, where the gradients
// stay on the tape), though it was never recorded.
TEST_CASE("gradient_of a parameter made where a recorded one was destroyed is its own (zero)", "[tape][errors]") {
    Tape<double> tape;
    tape.set_accumulate_into_parameters(false);
    std::optional<Parameter<double>> storage;
    storage.emplace(M({{2.0}}), "recorded");
    const Parameter<double>* recorded_at = &*storage;
    tape.backward(tape.parameter(*storage) * tape.constant(M({{5.0}})));
    REQUIRE(tape.gradient_of(*storage)(0, 0) == 5.0);
    storage.emplace(M({{3.0}}), "new");  // destroys the recorded one, then builds here
    REQUIRE(&*storage == recorded_at);
    CHECK(tape.gradient_of(*storage)(0, 0) == 0.0);
}

TEST_CASE("misuse of the tape throws instead of reading freed memory", "[tape][errors]") {
    Tape<double> tape, other;
    Var<double> x = tape.leaf(M({{1, 2}}));
    Var<double> loss = sum(x);

    SECTION("a second backward on the same recording") {
        tape.backward(loss);
        REQUIRE_THROWS_WITH(tape.backward(loss), Contains("already swept"));
        REQUIRE_THROWS_WITH(exp(x), Contains("after backward()"));
    }
    SECTION("a handle used after reset") {
        tape.reset();
        REQUIRE_THROWS_WITH(x.value(), Contains("stale handle"));
        REQUIRE_THROWS_WITH(exp(x), Contains("exp: stale handle"));
        REQUIRE_THROWS_WITH(tape.backward(loss), Contains("backward: stale handle"));
    }
    SECTION("handles of two tapes mixed in one op") {
        Var<double> y = other.leaf(M({{1, 2}}));
        REQUIRE_THROWS_WITH(x + y, Contains("add: the handle belongs to another tape"));
        REQUIRE_THROWS_WITH(other.backward(loss), Contains("another tape"));
    }
    SECTION("a handle that outlives its tape") {
        Var<double> orphan;
        {
            Tape<double> short_lived;
            orphan = exp(short_lived.leaf(M({{1.0}})));
        }
        Tape<double> successor;  // may well reuse the same address
        REQUIRE_THROWS_WITH(orphan.value(), Contains("stale handle: its tape was reset or destroyed"));
        REQUIRE_THROWS_WITH(exp(orphan), Contains("exp: stale handle"));
        REQUIRE_THROWS_WITH(orphan + successor.leaf(M({{1.0}})), Contains("add: stale handle"));
    }
    SECTION("a parameter resized between recording and backward") {
        Parameter<double> W(M({{1, 2}, {3, 4}}), "W");
        Var<double> y = sum(matmul(tape.parameter(W), tape.constant(M({{1}, {1}}))));
        W.value = xt::ones<double>({40, 2});
        REQUIRE_THROWS_WITH(tape.backward(y), Contains("backward: parameter 'W' was 2x2 when recorded"));
    }
    SECTION("a backward asking for an input its op does not have") {
        auto bad = [](Tape<double>& t, Node<double>& y) { (void)t.input(y, 1); };
        Var<double> y = x.tape().record("one_input", {x}, x.shape(), bad, [](Node<double>&) {});
        REQUIRE_THROWS_WITH(tape.backward(sum(y)), Contains("one_input: its backward asked for input 1 but it has 1 input"));
    }
    SECTION("a default-constructed handle") {
        Var<double> none;
        REQUIRE_THROWS_WITH(exp(none), Contains("never recorded"));
    }
    SECTION("empty matrices") {
        REQUIRE_THROWS_WITH(tape.constant(Matrix<double>({0, 5})), Contains("constant: empty 0x5"));
        REQUIRE_THROWS_WITH(tape.leaf(Matrix<double>({3, 0})), Contains("empty 3x0"));
        REQUIRE_THROWS_WITH(Parameter<double>(Matrix<double>({0, 0}), "W9"), Contains("W9: empty 0x0"));
    }
}

TEST_CASE("constants get no gradient", "[tape]") {
    Tape<double> tape;
    Var<double> c = tape.constant(M({{1, 2}}));
    Var<double> x = tape.leaf(M({{3, 4}}));
    tape.backward(sum(c * x));
    REQUIRE_FALSE(c.requires_grad());
    REQUIRE_THROWS_WITH(c.grad(), Contains("no gradient"));
    REQUIRE((x.grad() == M({{1, 2}})));
}

TEST_CASE("NoGrad records values only", "[tape]") {
    Parameter<double> w(M({{2.0}}));
    Tape<double> tape;
    Var<double> y;
    {
        NoGrad<double> guard(tape);
        y = exp(tape.parameter(w));
        REQUIRE_FALSE(y.requires_grad());
    }
    REQUIRE_THAT(y.value()(0, 0), Catch::Matchers::WithinAbs(std::exp(2.0), 1e-15));
    REQUIRE_THROWS_WITH(tape.backward(y), Contains("NoGrad"));
    REQUIRE(tape.grad_enabled());
}

TEST_CASE("value_and_grad returns the gradients without touching Parameter::grad", "[tape]") {
    Parameter<double> W(M({{1, 2}, {3, 4}})), b(M({{0.5}, {-0.5}}));
    const Matrix<double> x = M({{1, -1, 2}, {0, 3, 1}});
    auto loss = [&](Tape<double>& tape) { return mean(tanh(linear(tape.parameter(W), tape.constant(x), tape.parameter(b)))); };
    Tape<double> tape;
    const ValueAndGrad<double> vg = value_and_grad(tape, loss, {&W, &b});
    REQUIRE((W.grad == xt::zeros<double>({2, 2})));

    tape.reset();
    Var<double> l = loss(tape);
    tape.backward(l);
    REQUIRE(vg.value == l.value()(0, 0));
    REQUIRE((vg.grads[0] == W.grad));
    REQUIRE((vg.grads[1] == b.grad));
}

TEST_CASE("reset keeps the recording reusable with identical results", "[tape]") {
    Parameter<double> w(M({{0.5, -1.0}}));
    Tape<double> tape;
    double first = 0;
    for (int i = 0; i < 3; ++i) {
        tape.reset();
        Var<double> loss = sum(sigmoid(tape.parameter(w) * tape.constant(M({{2.0, 3.0}}))));
        if (i == 0) first = loss.value()(0, 0);
        REQUIRE(loss.value()(0, 0) == first);
        REQUIRE(tape.size() == 5);
    }
}
