// A Replay runs its elementwise entries as flat steps (autodiff/flat_step.hpp): straight on
// their buffers, deciding where gradients go without reading the entries. These are the
// cases where that could part from a fresh recording: an input used twice, parameters whose
// buffers were replaced between runs, gradients kept on the tape, leaves that are neither
// parameters nor constants, intermediate gradients read after a run, the gradient-ready
// hook, and anomaly detection.

#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "autodiff/autodiff.hpp"
#include "autodiff/replay.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;
using Catch::Matchers::Contains;

namespace {

// One LSTM-like cell step over columns, mixing flat steps (same-shape elementwise ops, a
// parameter used twice in one op, a computed value squared) with entries that run their own
// code (a broadcast add, a matmul, a sum).
struct Step {
    Var<double> hidden, loss;
};

Step record(Tape<double>& tape, Parameter<double>& w, Parameter<double>& b, Parameter<double>& bias_row,
            const Matrix<double>& x, const Var<double>& extra_leaf) {
    const Var<double> W = tape.parameter(w), B = tape.parameter(b), R = tape.parameter(bias_row);
    const Var<double> X = tape.constant_ref(x);
    const Var<double> gate = sigmoid(X * W + B);
    const Var<double> cell = tanh(X * X + W * W) * gate;  // X*X: a constant twice; W*W: a parameter twice
    const Var<double> squared = cell * cell;                // a computed value twice
    const Var<double> mixed = squared + R;                  // broadcast (1 x m row): the entry's own code
    const Var<double> hidden = exp(scale(mixed, 0.5)) - extra_leaf * gate;
    return {hidden, sum(matmul(transpose(hidden), hidden)) + sum(hidden * 3.0)};
}

struct Fixture {
    std::mt19937_64 rng{7};
    Parameter<double> w{random_matrix(rng, {4, 3}, 0.5, 1.5), "w"};
    Parameter<double> b{random_matrix(rng, {4, 3}), "b"};
    Parameter<double> bias_row{random_matrix(rng, {1, 3}), "bias_row"};
    Matrix<double> x = random_matrix(rng, {4, 3});
    Matrix<double> extra = random_matrix(rng, {4, 3});

    void zero_grads() {
        w.zero_grad();
        b.zero_grad();
        bias_row.zero_grad();
    }
    std::vector<Matrix<double>> grads() const { return {w.grad, b.grad, bias_row.grad}; }
    void new_data() {
        const Matrix<double> fresh = random_matrix(rng, {4, 3});
        std::copy(fresh.begin(), fresh.end(), x.begin());
    }
};

// A fresh recording of the same step: its loss, parameter gradients and the gradients of
// the hidden state and of the extra leaf.
struct Fresh {
    double loss;
    std::vector<Matrix<double>> parameter_grads;
    Matrix<double> hidden_grad, leaf_grad;
};

Fresh fresh_recording(Fixture& f) {
    Tape<double> tape;
    f.zero_grads();
    const Var<double> leaf = tape.leaf(f.extra);
    const Step step = record(tape, f.w, f.b, f.bias_row, f.x, leaf);
    tape.backward(step.loss);
    return {step.loss.value()(0, 0), f.grads(), step.hidden.grad(), leaf.grad()};
}

// The step recorded and swept once, then made a Replay (after `prepare`, which may set the tape up).
struct Replayed {
    Fixture f;
    Tape<double> tape;
    Var<double> leaf;
    Step step;
    std::unique_ptr<Replay<double>> replay;
    template <class Prepare>
    explicit Replayed(Prepare&& prepare) {
        prepare(tape);
        leaf = tape.leaf(f.extra);
        step = record(tape, f.w, f.b, f.bias_row, f.x, leaf);
        tape.backward(step.loss);
        replay = std::make_unique<Replay<double>>(tape, step.loss);
    }
    Replayed() : Replayed([](Tape<double>&) {}) {}
};

}  // namespace

TEST_CASE("flat steps give a fresh recording's loss and gradients bit for bit, over new data and new buffers",
          "[replay][flat]") {
    Replayed r;
    Fixture& f = r.f;
    for (int round = 0; round < 4; ++round) {
        INFO("round " << round);
        f.new_data();
        if (round == 1) f.w.value = Matrix<double>(f.w.value + 0.25);  // another buffer, same shape
        if (round == 2) f.b.grad = Matrix<double>();                    // a gradient started afresh elsewhere
        if (round == 3) f.w.grad = Matrix<double>(xt::zeros<double>({4, 3}));
        f.zero_grads();
        const double replayed = r.replay->run();
        const std::vector<Matrix<double>> grads = f.grads();
        const Matrix<double> hidden_grad = r.step.hidden.grad(), leaf_grad = r.leaf.grad();

        const Fresh fresh = fresh_recording(f);
        REQUIRE(replayed == fresh.loss);
        for (std::size_t k = 0; k < grads.size(); ++k) REQUIRE((grads[k] == fresh.parameter_grads[k]));
        REQUIRE((hidden_grad == fresh.hidden_grad));
        REQUIRE((leaf_grad == fresh.leaf_grad));
    }
}

TEST_CASE("flat steps keep gradients on the tape when accumulation into parameters is off", "[replay][flat]") {
    Replayed r([](Tape<double>& tape) { tape.set_accumulate_into_parameters(false); });
    Fixture& f = r.f;
    f.new_data();
    f.zero_grads();
    r.replay->run();
    const Matrix<double> w_on_tape = r.tape.gradient_of(f.w), b_on_tape = r.tape.gradient_of(f.b);
    REQUIRE((f.w.grad == xt::zeros<double>({4, 3})));  // untouched

    const Fresh fresh = fresh_recording(f);
    REQUIRE((w_on_tape == fresh.parameter_grads[0]));
    REQUIRE((b_on_tape == fresh.parameter_grads[1]));
}

TEST_CASE("flat steps call the gradient-ready hook as the sweep passes each parameter", "[replay][flat]") {
    Replayed r;
    Fixture& f = r.f;
    std::vector<Matrix<double>> seen;  // each parameter's gradient when the hook is called
    auto hook = [](void* context, Parameter<double>& p) { static_cast<std::vector<Matrix<double>>*>(context)->push_back(p.grad); };
    r.tape.set_gradient_ready_hook(hook, &seen);
    f.new_data();
    f.zero_grads();
    r.replay->run();
    REQUIRE(seen.size() == 3);
    const Fresh fresh = fresh_recording(f);
    // Recorded first, the parameters are reached last, in reverse: bias_row, b, w; each whole.
    REQUIRE((seen[0] == fresh.parameter_grads[2]));
    REQUIRE((seen[1] == fresh.parameter_grads[1]));
    REQUIRE((seen[2] == fresh.parameter_grads[0]));
}

TEST_CASE("anomaly detection names the flat step that made a non-finite value", "[replay][flat]") {
    Replayed r;
    r.tape.set_detect_anomaly(true);
    r.f.x(0, 0) = 1e200;  // X * X overflows
    r.f.zero_grads();
    try {
        r.replay->run();
        FAIL("no AnomalyError");
    } catch (const AnomalyError& e) {
        REQUIRE_THAT(e.what(), Contains("mul"));
    }
}

namespace {

// A user's replayable op whose forward assigns a new matrix each time (xtensor allocates a
// new buffer for it) instead of filling node.value in place.
void twice_forward(Tape<double>& t, Node<double>& y) { y.value = 2.0 * t.input(y, 0); }
void twice_backward(Tape<double>& t, Node<double>& y) {
    const double* g = y.grad.data();
    t.grad_of(y, 0).accumulate([g](std::size_t k) { return 2.0 * g[k]; });
}
Var<double> twice(const Var<double>& x) { return x.tape().record_op("twice", {x}, x.shape(), twice_forward, twice_backward); }

// ... and one whose backward assigns its input's gradient on the first contribution.
void twice_assigning_backward(Tape<double>& t, Node<double>& y) {
    GradientSink<double> sink = t.grad_of(y, 0);
    if (sink.overwrite)
        sink.grad = 2.0 * y.grad;
    else
        sink.grad += 2.0 * y.grad;
}
Var<double> twice_assigning(const Var<double>& x) {
    return x.tape().record_op("twice_assigning", {x}, x.shape(), twice_forward, twice_assigning_backward);
}

// Replays `f(p, X)`'s loss three times over new X, comparing each run with a fresh recording.
template <class F>
void check_replay_equals_recording(F&& f) {
    std::mt19937_64 rng(11);
    Parameter<double> p(random_matrix(rng, {3, 2}), "p");
    Matrix<double> X = random_matrix(rng, {3, 2});
    Tape<double> tape;
    const Var<double> loss = sum(f(tape.parameter(p), tape.constant_ref(X)));
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    for (int round = 0; round < 3; ++round) {
        const Matrix<double> fresh_x = random_matrix(rng, {3, 2});
        std::copy(fresh_x.begin(), fresh_x.end(), X.begin());
        p.zero_grad();
        const double replayed = replay.run();
        const Matrix<double> replayed_grad = p.grad;
        Tape<double> fresh;
        p.zero_grad();
        const Var<double> fresh_loss = sum(f(fresh.parameter(p), fresh.constant_ref(X)));
        fresh.backward(fresh_loss);
        REQUIRE(replayed == fresh_loss.value()(0, 0));
        REQUIRE((replayed_grad == p.grad));
    }
}

}  // namespace

TEST_CASE("flat steps read what a user's op made on this run, where its forward or backward put it", "[replay][flat]") {
    // Before: the flat tanh read the value buffer twice's forward had freed (ASan: use after
    // free), and the flat mul's backward the gradient buffer twice_assigning had replaced.
    SECTION("a forward that assigns its value") {
        check_replay_equals_recording([](Var<double> p, Var<double> x) { return tanh(twice(p * x)); });
    }
    SECTION("a backward that assigns its input's gradient") {
        check_replay_equals_recording([](Var<double> p, Var<double> x) { return tanh(twice_assigning(p * x)) + p * x; });
    }
}

TEST_CASE("a Replay plans from the shapes recorded, not from a parameter's shape while it is built", "[replay][flat]") {
    // Before: a broadcast mul planned as a flat step from p's temporary 4x3 shape read 12
    // elements of the recorded 1x3 buffer on the run (ASan: heap-buffer-overflow).
    Parameter<double> p(Matrix<double>(xt::ones<double>({1, 3})), "p");
    Matrix<double> X = xt::ones<double>({4, 3});
    Tape<double> tape;
    const Var<double> loss = sum(tape.parameter(p) * tape.constant_ref(X));
    tape.backward(loss);
    const Matrix<double> recorded = p.value;
    p.value = Matrix<double>(xt::ones<double>({4, 3}));
    Replay<double> replay(tape, loss);
    p.value = recorded;
    p.zero_grad();
    REQUIRE(replay.run() == 12.0);
    REQUIRE((p.grad == Matrix<double>{{4.0, 4.0, 4.0}}));
}
