// Entries whose value lives inline (Node::in_line: the library's elementwise ops on values of at
// most Node::inline_capacity elements, recorded with gradients): what reads them as a matrix
// gets a copy, what adds to their gradient through Tape::grad_of adds through a matrix that
// the sweep then adds to the entry's block. These check the paths only such entries take, with
// exact numbers; every other test of the suite runs through them too wherever its shapes are
// small.

#include <catch2/catch.hpp>

#include "autodiff/autodiff.hpp"
#include "autodiff/replay.hpp"

using namespace autodiff;
using Catch::Matchers::Contains;

namespace {

using M = Matrix<double>;

bool inline_entry(const Tape<double>& tape, const Var<double>& v) { return tape.node(v).in_line(); }

// y = a + a recorded by a user's op (two inputs, the same entry), whose backward asks
// Tape::grad_of once per input: the two contributions to one inline gradient must add up.
void twice_backward(Tape<double>& tape, Node<double>& n) {
    const double* g = n.grad.data();
    tape.grad_of(n, 0).accumulate([g](std::size_t k) { return g[k]; });
    tape.grad_of(n, 1).accumulate([g](std::size_t k) { return 3 * g[k]; });
}

Var<double> twice(const Var<double>& a) {
    Tape<double>& tape = a.tape();
    return tape.record("twice", {a, a}, a.shape(), twice_backward, [&](Node<double>& n) {
        const M& x = tape.input(n, 0);
        for (std::size_t k = 0; k < x.size(); ++k) n.value.data()[k] = 2 * x.data()[k];
    });
}

// A user's backward that gives its input a new matrix instead of adding to the one it is given.
void replacing_backward(Tape<double>& tape, Node<double>& n) {
    tape.grad_of(n, 0).grad = M({1, 1}, 1.0);
}

}  // namespace

TEST_CASE("small elementwise values recorded with gradients are inline; others are not", "[tape][inline]") {
    Tape<double> tape;
    const Var<double> small = tape.leaf(M({3, 1}, 1.0));
    const Var<double> large = tape.leaf(M({Node<double>::inline_capacity + 1, 1}, 1.0));
    CHECK(inline_entry(tape, small * small));
    CHECK_FALSE(inline_entry(tape, large * large));
    CHECK_FALSE(inline_entry(tape, small));  // a leaf copies the caller's matrix
    CHECK_FALSE(inline_entry(tape, twice(small)));  // a user's op fills its matrix
    NoGrad<double> no_grad(tape);
    CHECK_FALSE(inline_entry(tape, small * small));  // released and reused by size under NoGrad
}

TEST_CASE("an inline entry read as a matrix by a user's op, which asks for its gradient twice", "[tape][inline]") {
    Tape<double> tape;
    const Var<double> x = tape.leaf(M{{1.0}, {2.0}});
    const Var<double> w = tape.leaf(M{{3.0}, {-1.0}});
    const Var<double> a = x * w;  // inline: 3, -2
    REQUIRE(inline_entry(tape, a));
    const Var<double> y = twice(a);
    CHECK((y.value() == M{{6.0}, {-4.0}}));
    tape.backward(sum(y * x));
    // d/da sum((2a) * x) through the op's two contributions: x + 3x = 4x.
    CHECK((a.grad() == M{{4.0}, {8.0}}));
    CHECK((w.grad() == M{{4.0}, {16.0}}));  // 4x * x
    CHECK((x.grad() == M{{3 * 4.0 + 6.0}, {-1 * 8.0 - 4.0}}));  // w * 4x + 2a
}

TEST_CASE("backward from an inline 1x1 output", "[tape][inline]") {
    Tape<double> tape;
    const Var<double> a = tape.leaf(M{{2.0}});
    const Var<double> b = tape.leaf(M{{-5.0}});
    const Var<double> y = a * b;
    REQUIRE(inline_entry(tape, y));
    tape.backward(y);
    CHECK((y.grad() == M{{1.0}}));
    CHECK((a.grad() == M{{-5.0}}));
    CHECK((b.grad() == M{{2.0}}));
    Tape<double> seeded;
    const Var<double> c = seeded.leaf(M{{2.0}, {3.0}});
    const Var<double> z = c * c;
    seeded.backward(z, M{{10.0}, {100.0}});
    CHECK((c.grad() == M{{40.0}, {600.0}}));
}

TEST_CASE("an entry inline in one recording and a matrix in the next, on one tape", "[tape][inline]") {
    Tape<double> tape;
    for (std::size_t rows : {std::size_t(3), Node<double>::inline_capacity + 5, std::size_t(1), std::size_t(40), std::size_t(2)}) {
        tape.reset();
        const Var<double> x = tape.leaf(M({rows, 1}, 2.0));
        const Var<double> y = tanh(x * x) + x;
        CHECK(inline_entry(tape, y) == (rows <= Node<double>::inline_capacity));
        tape.backward(sum(y));
        Tape<double> scratch;  // the engine's tanh (its own kernel, not std::tanh), on a 1x1 matrix
        const double t = tanh(scratch.constant(M{{4.0}})).value()(0, 0);
        for (std::size_t r = 0; r < rows; ++r) {
            CHECK(y.value()(r, 0) == t + 2.0);
            CHECK(x.grad()(r, 0) == (1 - t * t) * 4.0 + 1.0);
        }
    }
}

TEST_CASE("an inline value kept by a Replay reads each run's numbers", "[tape][inline][replay]") {
    Tape<double> tape;
    M x{{1.0}, {2.0}};
    Parameter<double> w(M{{3.0}, {4.0}});
    const Var<double> y = tape.constant_ref(x) * tape.parameter(w);
    REQUIRE(inline_entry(tape, y));
    const Var<double> loss = sum(y * y);
    tape.backward(loss);
    Replay<double> replay(tape, loss, {y});
    x = M{{-1.0}, {5.0}};
    w.zero_grad();
    CHECK(replay.run() == 9.0 + 400.0);
    CHECK((y.value() == M{{-3.0}, {20.0}}));
    CHECK((y.grad() == M{{-6.0}, {40.0}}));
    CHECK((w.grad == M{{6.0}, {200.0}}));  // 2y * x
}

namespace {

// y = a: a user's op whose second input (a selector, say) gets no gradient from it.
void first_only_backward(Tape<double>& tape, Node<double>& n) {
    const double* g = n.grad.data();
    tape.grad_of(n, 0).accumulate([g](std::size_t k) { return g[k]; });
}

}  // namespace

// Anomaly detection read the gradient of every input that needs one after an op's backward,
// started or not: for an inline input the op gave none, the block's second half, which held
// what the entry's last recording left there (here the infinite value of a 1x4 exp), and for
// an entry not inline its matrix's gradient from an earlier recording: an anomaly blamed on an
// op that produced no gradient at all. Found by an attack on the inline entries.
TEST_CASE("anomaly detection does not read an input's gradient that the op's backward did not start",
          "[tape][inline][anomaly]") {
    for (const std::size_t cols : {std::size_t(2), Node<double>::inline_capacity + 6}) {
        Tape<double> tape;
        {  // entry 1 left infinite numbers: an inline value 1 x (2 cols), or a gradient of 1 x cols
            const Var<double> x = tape.leaf(M({1, 2 * cols}, 1000.0));
            const Var<double> e = exp(x);
            (void)e;
            if (cols > Node<double>::inline_capacity) {
                tape.reset();
                const Var<double> z = tape.leaf(M({1, cols}, 1000.0));
                tape.backward(sum(exp(z * z)));
            }
        }
        tape.reset();
        tape.set_detect_anomaly(true);
        const Var<double> x = tape.leaf(M({1, cols}, 3.0));
        const Var<double> selector = x * x;  // entry 1: needs a gradient, gets none from the op
        REQUIRE(selector.index() == 1);
        REQUIRE(inline_entry(tape, selector) == (cols <= Node<double>::inline_capacity));
        const Var<double> y = tape.record("first_only", {x, selector}, x.shape(), first_only_backward,
                                          [&](Node<double>& n) { n.value = tape.input(n, 0); });
        tape.backward(sum(y));
        CHECK((x.grad() == M({1, cols}, 1.0)));
        CHECK_FALSE(tape.gradient_started(selector.index()));
    }
}

namespace {

// x, rows x 1 of ones, and a = x * x: inline at most Node::inline_capacity rows.
std::pair<Var<double>, Var<double>> ones_squared(Tape<double>& tape, std::size_t rows) {
    const Var<double> x = tape.leaf(M({rows, 1}, 1.0));
    const Var<double> a = x * x;
    REQUIRE(inline_entry(tape, a) == (rows <= Node<double>::inline_capacity));
    return {x, a};
}

}  // namespace

// The refusal of a replaced gradient named, for an inline input, only the entry whose gradient
// was replaced ("the gradient of tape entry 1 (mul) was left 1x1"), not the op whose backward
// replaced it, which the same refusal names for an input that is not inline. Now both name it
// alike. Found by an attack on the inline entries.
TEST_CASE("a user's backward that replaces an inline input's gradient is named as for any input", "[tape][inline]") {
    for (const std::size_t rows : {std::size_t(2), Node<double>::inline_capacity + 6}) {
        Tape<double> tape;
        const Var<double> a = ones_squared(tape, rows).second;
        const Var<double> y = tape.record("replacing", {a}, a.shape(), replacing_backward,
                                          [&](Node<double>& n) { n.value = tape.input(n, 0); });
        REQUIRE_THROWS_WITH(tape.backward(sum(y)),
                            "replacing (tape entry 2): its backward left input 0's gradient (tape entry 1, mul) 1x1, but that "
                            "input is " + std::to_string(rows) + "x1: add into the sink Tape::grad_of gives, do not assign it");
    }
}

namespace {

const Var<double>* peeked = nullptr;
double peek_seen = 0;

// y = a: a user's backward that reads its input's gradient so far (to log it) after adding to it.
void peeking_backward(Tape<double>& tape, Node<double>& n) {
    const double* g = n.grad.data();
    tape.grad_of(n, 0).accumulate([g](std::size_t k) { return g[k]; });
    peek_seen = peeked->grad()(0, 0);
}

}  // namespace

// The op's contribution to an inline input went through the entry's `grad` matrix, which
// Var::grad() overwrites with the entry's block: a backward that read its input's gradient
// after adding to it lost its contribution (sum(y + 3a) gave a the gradient 3, not 4), where an
// input of 20 elements or more kept it. The contribution now goes through a matrix of the tape's.
// Found by an attack on the inline entries.
TEST_CASE("a user's backward that reads an inline input's gradient keeps its own contribution", "[tape][inline]") {
    for (const std::size_t rows : {std::size_t(2), Node<double>::inline_capacity + 6}) {
        Tape<double> tape;
        const auto [x, a] = ones_squared(tape, rows);
        peeked = &a;
        const Var<double> z = a * 3.0;
        const Var<double> y = tape.record("peeking", {a}, a.shape(), peeking_backward,
                                          [&](Node<double>& n) { n.value = tape.input(n, 0); });
        tape.backward(sum(y + z));
        CHECK((a.grad() == M({rows, 1}, 4.0)));
        CHECK((x.grad() == M({rows, 1}, 8.0)));
        peeked = nullptr;
    }
}
