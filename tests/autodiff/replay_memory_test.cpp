// A Replay keeps the intermediate values and gradients that only its flat steps read in an
// arena of its own, each in a slot for as long as it is live, slots reused by later entries
// (autodiff/replay.cpp, plan_memory). These check that no slot is reused while something
// still reads it (random programs of every flat op, replayed against fresh recordings bit
// for bit), that each op's declared derivative reads are what its backward reads, and what a
// user sees: kept handles, refused reads, refused recording, anomaly detection.

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "autodiff/replay.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;
using Catch::Matchers::Contains;

namespace {

using Unary = std::function<Var<double>(const Var<double>&)>;
using Binary = std::function<Var<double>(const Var<double>&, const Var<double>&)>;

// Every op that runs as a flat step, bounded so that a long program stays finite.
const std::vector<Unary> unary_ops = {
    [](const Var<double>& x) { return sigmoid(x); },       [](const Var<double>& x) { return tanh(x); },
    [](const Var<double>& x) { return exp(tanh(x)); },     [](const Var<double>& x) { return relu(x); },
    [](const Var<double>& x) { return -x; },               [](const Var<double>& x) { return scale(x, 0.75); },
    [](const Var<double>& x) { return square(tanh(x)); },  [](const Var<double>& x) { return x + 0.5; },
    [](const Var<double>& x) { return 0.25 - x; },         [](const Var<double>& x) { return x / 1.5; },
    [](const Var<double>& x) { return leaky_relu(x, 0.1); }, [](const Var<double>& x) { return gelu(x); },
};
const std::vector<Binary> binary_ops = {
    [](const Var<double>& a, const Var<double>& b) { return tanh(a + b); },
    [](const Var<double>& a, const Var<double>& b) { return a - b; },
    [](const Var<double>& a, const Var<double>& b) { return tanh(a * b); },
    [](const Var<double>& a, const Var<double>& b) { return maximum(a, b); },
    [](const Var<double>& a, const Var<double>& b) { return minimum(a, b); },
    [](const Var<double>& a, const Var<double>& b) { return a * a + b; },  // one input twice
    // Affine steps (FlatOp::affine): f(x * w + b), b also a factor, the factors one value.
    [](const Var<double>& a, const Var<double>& b) { return sigmoid(a * b + a); },
    [](const Var<double>& a, const Var<double>& b) { return tanh(b + a * b); },
    [](const Var<double>& a, const Var<double>& b) { return relu(a * a + (a - b)); },
    [](const Var<double>& a, const Var<double>& b) { return exp(tanh(a) * b + b) * 0.5; },
};

// A random program over 14x1 columns: each op reads one or two recent values (so values and
// gradients die at every distance), from parameters, a constant_ref and earlier results.
struct Program {
    std::vector<int> op, left, right;  // op < 0: unary -op-1, else binary; left/right: indices into the values so far
};

Program random_program(std::mt19937_64& rng, int length) {
    Program p;
    for (int i = 0; i < length; ++i) {
        const int available = 3 + i;  // W, B, X, then the results
        std::uniform_int_distribution<int> recent(std::max(0, available - 6), available - 1), any(0, available - 1);
        const bool unary = std::bernoulli_distribution(0.5)(rng);
        p.op.push_back(unary ? -1 - std::uniform_int_distribution<int>(0, int(unary_ops.size()) - 1)(rng)
                             : std::uniform_int_distribution<int>(0, int(binary_ops.size()) - 1)(rng));
        p.left.push_back(recent(rng));
        p.right.push_back(std::bernoulli_distribution(0.2)(rng) ? any(rng) : recent(rng));
    }
    return p;
}

struct Model {
    Parameter<double> w, b;
    Matrix<double> x;
};

struct Leaves {
    Var<double> W, B, X;
};
Leaves record_leaves(Tape<double>& tape, Model& m) { return {tape.parameter(m.w), tape.parameter(m.b), tape.constant_ref(m.x)}; }

// w, b and x: 14x1 columns (w's entries at least `gap` from 0).
Model random_model(std::mt19937_64& rng, double gap = 0) {
    return {Parameter<double>(random_matrix(rng, {14, 1}, -2, 2, gap), "w"), Parameter<double>(random_matrix(rng, {14, 1}), "b"),
            random_matrix(rng, {14, 1})};
}

// The program's loss (the sum of its last values, and of w * b so that it needs a gradient
// whatever the program), recorded on tape; `results` gets every value.
Var<double> record(Tape<double>& tape, Model& m, const Program& p, std::vector<Var<double>>& results) {
    results = {tape.parameter(m.w), tape.parameter(m.b), tape.constant_ref(m.x)};
    for (std::size_t i = 0; i < p.op.size(); ++i) {
        const Var<double>&l = results[p.left[i]], &r = results[p.right[i]];
        results.push_back(p.op[i] < 0 ? unary_ops[-p.op[i] - 1](l) : binary_ops[p.op[i]](l, r));
    }
    const std::size_t n = results.size();
    return sum(results[n - 1] + results[n - 2] * results[n - 3] + results[0] * results[1]);
}

struct Outcome {
    double loss;
    Matrix<double> w_grad, b_grad;
};

Outcome fresh(Model& m, const Program& p) {
    Tape<double> tape;
    std::vector<Var<double>> results;
    m.w.zero_grad(), m.b.zero_grad();
    const Var<double> loss = record(tape, m, p, results);
    tape.backward(loss);
    return {loss.value()(0, 0), m.w.grad, m.b.grad};
}


// x * w overflows at `row` (w there set to `w`): the run must throw an AnomalyError naming mul and the row.
void require_overflow_named(Replay<double>& replay, Model& m, std::size_t row, double w) {
    m.x(row, 0) = 1e308;
    m.w.value(row, 0) = w;
    try {
        replay.run();
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        REQUIRE_THAT(e.what(), Contains("mul") && Contains("row " + std::to_string(row)));
    }
}

}  // namespace

TEST_CASE("a Replay reusing dead values' and gradients' memory equals fresh recordings bit for bit",
          "[replay][memory]") {
    std::mt19937_64 rng(2026);
    for (int trial = 0; trial < 40; ++trial) {
        const Program p = random_program(rng, 60);
        Model m = random_model(rng);
        Tape<double> tape;
        std::vector<Var<double>> results;
        const Var<double> loss = record(tape, m, p, results);
        Replay<double> replay(tape, loss);
        for (int run = 0; run < 3; ++run) {
            INFO("trial " << trial << ", run " << run);
            const Matrix<double> x = random_matrix(rng, {14, 1});
            std::copy(x.begin(), x.end(), m.x.begin());
            const Outcome expected = fresh(m, p);
            m.w.zero_grad(), m.b.zero_grad();
            REQUIRE(replay.run() == expected.loss);
            REQUIRE((m.w.grad == expected.w_grad));
            REQUIRE((m.b.grad == expected.b_grad));
        }
    }
}

// Each op that declares its derivative reads less than everything, with its input's value
// or its own value reused right after its forward unless the declaration keeps it: a wrong
// declaration gives another gradient than a fresh recording.
TEST_CASE("each flat op's declared derivative reads keep what its backward reads", "[replay][memory]") {
    std::mt19937_64 rng(11);
    const std::vector<std::pair<const char*, Unary>> ops = {
        {"sigmoid", [](const Var<double>& x) { return sigmoid(x); }}, {"tanh", [](const Var<double>& x) { return tanh(x); }},
        {"exp", [](const Var<double>& x) { return exp(x); }},         {"relu", [](const Var<double>& x) { return relu(x); }},
        {"neg", [](const Var<double>& x) { return -x; }},             {"scale", [](const Var<double>& x) { return x * 3.0; }},
        {"square", [](const Var<double>& x) { return square(x); }},  {"add_scalar", [](const Var<double>& x) { return x + 1.0; }},
        {"rsub_scalar", [](const Var<double>& x) { return 1.0 - x; }}, {"div_scalar", [](const Var<double>& x) { return x / 4.0; }},
        {"mul", [](const Var<double>& x) { return x * (x + 1.0); }},  {"add", [](const Var<double>& x) { return x + (x * 2.0); }},
        {"sub", [](const Var<double>& x) { return x - (x * 2.0); }},  {"maximum", [](const Var<double>& x) { return maximum(x, -x); }},
        {"minimum", [](const Var<double>& x) { return minimum(x, x * 0.5); }},
    };
    for (const auto& [name, op] : ops) {
        INFO(name);
        Model m = random_model(rng, 0.1);
        // x * w + b dies into op's input; later ops of the same size take its slot, then the
        // loss reads op's value.
        auto step = [&](Tape<double>& tape) {
            const auto [W, B, X] = record_leaves(tape, m);
            const Var<double> y = op(X * W + B);
            const Var<double> later = tanh(tanh(X * B) * W) + tanh(X - W);
            return sum(y * later);
        };
        Tape<double> tape;
        const Var<double> loss = step(tape);
        Replay<double> replay(tape, loss);
        const Matrix<double> x = random_matrix(rng, {14, 1}, -1, 1, 0.1);
        std::copy(x.begin(), x.end(), m.x.begin());
        m.w.zero_grad(), m.b.zero_grad();
        const double replayed = replay.run();
        const Matrix<double> w_grad = m.w.grad, b_grad = m.b.grad;
        Tape<double> fresh_tape;
        m.w.zero_grad(), m.b.zero_grad();
        const Var<double> fresh_loss = step(fresh_tape);
        fresh_tape.backward(fresh_loss);
        REQUIRE(replayed == fresh_loss.value()(0, 0));
        REQUIRE((w_grad == m.w.grad));
        REQUIRE((b_grad == m.b.grad));
    }
}

TEST_CASE("a Replay's intermediates: kept handles read, others refused by name, recording waits for reset",
          "[replay][memory]") {
    std::mt19937_64 rng(5);
    Model m = random_model(rng);
    Tape<double> tape;
    const auto [W, B, X] = record_leaves(tape, m);
    const Var<double> gate = sigmoid(X * W + B);
    const Var<double> pre = X * W;  // its value and gradient only flat steps read
    const Var<double> h = tanh(pre) * gate;  // read by flat steps' backwards: in the Replay's memory too
    const Var<double> squared = h * h;
    const Var<double> loss = sum(squared);

    SECTION("kept handles read the last run's value and gradient") {
        Replay<double> replay(tape, loss, {gate, pre});
        m.x(3, 0) += 1.0;
        replay.run();
        Tape<double> fresh_tape;
        const auto [fW, fB, fX] = record_leaves(fresh_tape, m);
        const Var<double> fgate = sigmoid(fX * fW + fB), fpre = fX * fW;
        const Var<double> fh = tanh(fpre) * fgate;
        fresh_tape.backward(sum(fh * fh));
        REQUIRE((gate.value() == fgate.value()));
        REQUIRE((gate.grad() == fgate.grad()));
        REQUIRE((pre.value() == fpre.value()));
        REQUIRE((pre.grad() == fpre.grad()));
        REQUIRE_NOTHROW(loss.value());  // the output is always kept
    }
    SECTION("the others are refused, naming the entry and the remedy") {
        Replay<double> replay(tape, loss);
        replay.run();
        REQUIRE_THROWS_WITH(pre.value(), Contains("Var::value") && Contains("mul") && Contains("keep"));
        REQUIRE_THROWS_WITH(gate.grad(), Contains("Var::grad") && Contains("sigmoid") && Contains("keep"));
        REQUIRE_THROWS_WITH(h.value(), Contains("Var::value") && Contains("keep"));
        REQUIRE_NOTHROW(squared.value());  // read by sum, an entry running its own code
    }
    SECTION("recording on the tape is refused until it is reset, even before the first run") {
        Replay<double> replay(tape, loss);
        REQUIRE_THROWS_WITH(tanh(pre), Contains("tanh") && Contains("Replay") && Contains("reset()"));
        REQUIRE_THROWS_WITH(tape.constant(m.x), Contains("reset()"));
        REQUIRE(replay.run() == Approx(loss.value()(0, 0)).epsilon(0));  // the replay still runs
        tape.reset();
        const Var<double> again = tanh(tape.constant(m.x));
        REQUIRE(again.value()(0, 0) == std::tanh(m.x(0, 0)));
    }
    SECTION("a Replay with a kept handle of another tape is refused") {
        Tape<double> other;
        const Var<double> elsewhere = other.constant(m.x);
        REQUIRE_THROWS_WITH(Replay<double>(tape, loss, {elsewhere}), Contains("keep"));
    }
}

TEST_CASE("anomaly detection turned on after a Replay was built names the flat step whose value is in its arena",
          "[replay][memory]") {
    std::mt19937_64 rng(9);
    Model m = random_model(rng);
    Tape<double> tape;
    const auto [W, B, X] = record_leaves(tape, m);
    const Var<double> loss = sum(tanh(exp(X * W) + B));  // X * W and exp(...) live in the arena
    Replay<double> replay(tape, loss);
    tape.set_detect_anomaly(true);
    require_overflow_named(replay, m, 2, 10.0);
}

TEST_CASE("anomaly detection names the mul inside an affine step, and a Replay built under it runs the same",
          "[replay][memory]") {
    std::mt19937_64 rng(10);
    Model m = random_model(rng);
    Tape<double> tape;
    const auto [W, B, X] = record_leaves(tape, m);
    const Var<double> loss = sum(sigmoid(X * W + B) * tanh(W * B + X));  // two affine steps
    Replay<double> replay(tape, loss);
    const double clean = replay.run();
    const Matrix<double> clean_grad = m.w.grad;
    tape.set_detect_anomaly(true);
    m.w.zero_grad(), m.b.zero_grad();
    REQUIRE(replay.run() == clean);  // the parts one by one: the same numbers
    REQUIRE((m.w.grad == clean_grad));
    require_overflow_named(replay, m, 4, -10.0);
}

// An affine step's plan holds the mul's step and the activation's, the add's b moved into
// the activation's (FlatStep::fused): a b computed by an entry running its own code (looked
// up each run, its gradient added by that entry's backward), a b that is a leaf (its
// gradient looked up each sweep) and a gate read by such an entry must all land where a
// fresh recording puts them, with anomaly detection naming the add when x * w + b overflows.
TEST_CASE("affine steps whose b is computed by an op's own code, or a leaf, replay bit for bit",
          "[replay][memory]") {
    std::mt19937_64 rng(31);
    Model m = random_model(rng);
    Parameter<double> M(random_matrix(rng, {14, 14}, -0.5, 0.5), "M");
    const Matrix<double> leaf_value = random_matrix(rng, {14, 1});
    Matrix<double> leaf_grad;
    auto step = [&](Tape<double>& tape) {
        const auto [W, B, X] = record_leaves(tape, m);
        const Var<double> L = tape.leaf(leaf_value);
        const Var<double> Mv = tape.parameter(M);
        const Var<double> g1 = sigmoid(X * W + matmul(Mv, X));  // b from a matmul, side 1
        const Var<double> g2 = tanh(L + W * B);                   // b a leaf, side 0
        const Var<double> g3 = sigmoid(g1 * B + matmul(Mv, g2));  // both, and x an affine step's value
        return std::make_pair(sum(matmul(Mv, g3)) + sum(g1 * g2), L);  // g3 read by a matmul's backward
    };
    Tape<double> tape;
    const auto [loss, L] = step(tape);
    Replay<double> replay(tape, loss, {L});
    for (bool anomaly : {false, true}) {
        tape.set_detect_anomaly(anomaly);
        for (int run = 0; run < 3; ++run) {
            INFO("anomaly " << anomaly << ", run " << run);
            const Matrix<double> x = random_matrix(rng, {14, 1});
            std::copy(x.begin(), x.end(), m.x.begin());
            m.w.zero_grad(), m.b.zero_grad(), M.zero_grad();
            const double replayed = replay.run();
            const Matrix<double> w_grad = m.w.grad, b_grad = m.b.grad, M_grad = M.grad, L_grad = L.grad();
            Tape<double> fresh_tape;
            m.w.zero_grad(), m.b.zero_grad(), M.zero_grad();
            const auto [fresh_loss, fresh_L] = step(fresh_tape);
            fresh_tape.backward(fresh_loss);
            REQUIRE(replayed == fresh_loss.value()(0, 0));
            REQUIRE((w_grad == m.w.grad));
            REQUIRE((b_grad == m.b.grad));
            REQUIRE((M_grad == M.grad));
            REQUIRE((L_grad == fresh_L.grad()));
        }
    }
    // x * w is finite and b huge: the add overflows, and is named.
    m.x(3, 0) = 1.0, m.w.value(3, 0) = 1e308;
    M.value.fill(0.0), M.value(3, 3) = 1e308;
    try {
        replay.run();
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        REQUIRE_THAT(e.what(), Contains("add") && Contains("row 3"));
    }
}

// Found by attacking the memory plan: each failed before its fix.
TEST_CASE("the tape's own backward is refused while a Replay keeps its values: it would read stale ones",
          "[replay][memory]") {
    std::mt19937_64 rng(21);
    Model m = random_model(rng);
    Tape<double> tape;
    const auto [W, B, X] = record_leaves(tape, m);
    const Var<double> loss = sum(exp(tanh(X * W)));  // tanh's value lives in the Replay's arena
    Replay<double> replay(tape, loss);
    m.x(0, 0) += 1.0;
    replay.forward();
    REQUIRE_THROWS_WITH(tape.backward(loss), Contains("backward") && Contains("Replay") && Contains("reset()"));
    REQUIRE_THROWS_WITH(tape.backward(loss, Matrix<double>{{1.0}}), Contains("Replay"));
    m.w.zero_grad();
    replay.run();  // the replay itself runs
    const Matrix<double> replayed = m.w.grad;
    Tape<double> fresh;
    const auto [fW, fB, fX] = record_leaves(fresh, m);
    m.w.zero_grad();
    fresh.backward(sum(exp(tanh(fX * fW))));
    REQUIRE((replayed == m.w.grad));
}

TEST_CASE("a Replay cannot be copied (its steps point into its own arena), nor made twice while one keeps values",
          "[replay][memory]") {
    static_assert(!std::is_copy_constructible_v<Replay<double>> && !std::is_copy_assignable_v<Replay<double>>);
    std::mt19937_64 rng(22);
    Model m = random_model(rng);
    Tape<double> tape;
    const auto [W, B, X] = record_leaves(tape, m);
    const Var<double> h = tanh(X * W);
    const Var<double> loss = sum(sigmoid(h * W + B) * h);
    auto first = std::make_unique<Replay<double>>(tape, loss);
    first->run();
    REQUIRE_THROWS_WITH(Replay<double>(tape, loss, {h}), Contains("another Replay") && Contains("destroy it"));
    first.reset();
    // Once it is gone, a new one keeps what it is asked to: h reads this run's value.
    Replay<double> second(tape, loss, {h});
    REQUIRE_THROWS_WITH(h.value(), Contains("not kept"));  // stale until the new Replay runs
    m.x(1, 0) -= 0.5;
    second.run();
    Tape<double> fresh;
    const auto [fW, fB, fX] = record_leaves(fresh, m);
    REQUIRE((h.value() == tanh(fX * fW).value()));
}
