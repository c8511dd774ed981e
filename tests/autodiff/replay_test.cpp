// Replay: a recorded step run again over new data gives the values and gradients of a fresh
// recording bit for bit, for every built-in op; and it refuses what it cannot run again.

#include <catch2/catch.hpp>

#include <limits>
#include <memory>
#include <optional>

#include "autodiff/autodiff.hpp"
#include "autodiff/custom_op.hpp"
#include "autodiff/replay.hpp"
#include "random_matrices.hpp"

using namespace autodiff;
using test::random_matrix;
using Catch::Matchers::Contains;

namespace {

// f(p, q, x): p and q are parameters, x is data read in place; Y and labels are the
// targets of the losses that take them.
struct Case {
    const char* name;
    Shape p, q, x;
    Var<double> (*f)(Var<double> p, Var<double> q, Var<double> x, const Matrix<double>& Y, const Labels& labels);
};

using M = const Matrix<double>&;
using L = const Labels&;

// Every built-in op, each squared and summed into a 1x1 loss so that every gradient is nontrivial.
const Case cases[] = {
    {"matmul", {3, 4}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return matmul(p, x); }},
    {"linear", {3, 4}, {3, 1}, {4, 5}, [](auto p, auto q, auto x, M, L) { return linear(p, x, q); }},
    {"linear with relu (fused)", {3, 4}, {3, 1}, {4, 5},
     [](auto p, auto q, auto x, M, L) { return linear(p, x, q, Activation::relu); }},
    {"linear with tanh (fused)", {3, 4}, {3, 1}, {4, 5},
     [](auto p, auto q, auto x, M, L) { return linear(p, x, q, Activation::tanh); }},
    {"transpose", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return transpose(p * x); }},
    {"add (broadcast nx1)", {4, 1}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return p + x; }},
    {"sub (broadcast 1xm)", {1, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return x - p; }},
    {"mul (broadcast 1x1)", {1, 1}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return p * x; }},
    {"div", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return x / p; }},
    {"neg", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return -(p * x); }},
    {"scale", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return 2.5 * (p * x); }},
    {"exp", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return exp(p * x); }},
    {"log", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return log(exp(p) + x * x); }},
    {"relu", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return relu(p + x); }},
    {"sigmoid", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return sigmoid(p + x); }},
    {"tanh", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return tanh(p + x); }},
    {"softmax", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return softmax(p + x); }},
    {"log_softmax", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return log_softmax(p + x); }},
    {"softmax_cross_entropy (targets)", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M Y, L) { return softmax_cross_entropy(p * x, Y); }},
    {"softmax_cross_entropy (labels)", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L labels) { return softmax_cross_entropy(p * x, labels); }},
    {"sum", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return sum(p * x); }},
    {"sum over axis 0", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return sum(p * x, 0); }},
    {"mean", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return mean(p * x); }},
    {"mean over axis 1", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return mean(p * x, 1); }},
    {"mse", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return mse(p, x); }},
    // the op set of issue 11 (targets that are not replaced by set_targets/set_labels are read from x or fixed)
    {"scalars", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return (2 - p * x + 1.5) / 4 + 3 / p; }},
    {"square, sqrt, pow", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L) { return square(p * x) + sqrt(p + x * x) + pow(p, 1.7); }},
    {"abs, clamp, log1p", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L) { return abs(p * x) + clamp(p * x, -0.5, 0.5) + log1p(x * x + p); }},
    {"leaky_relu, elu, gelu", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L) { return leaky_relu(p * x) + elu(p * x) + gelu(p * x); }},
    {"softplus, silu", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return softplus(p * x) + silu(p * x); }},
    {"maximum, minimum", {4, 1}, {1, 5}, {4, 5}, [](auto p, auto q, auto x, M, L) { return maximum(p, x) + minimum(x, q); }},
    {"where", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) { return where(relu(x), p, p * x); }},
    {"concat", {4, 5}, {4, 1}, {4, 5},
     [](auto p, auto q, auto x, M, L) { return sum(concat({p, x, p * x, x}, 0), 0) + sum(concat({q, x * x, q}, 1)); }},
    {"slice, gather, reshape", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) {
         return reshape(slice(p * x, 1, 1, 4), Shape{3, 4}) + reshape(gather(p, Labels{0, 2, 2}, 1), Shape{3, 4});
     }},
    {"max", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L) { return max(p * x, 0) + max(p * x, 1) + max(p * x); }},
    {"softmax, log_softmax over axis 1", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L) { return softmax(p + x, 1) + log_softmax(p * x, 1); }},
    {"bce, huber, nll", {4, 5}, {1, 1}, {4, 5}, [](auto p, auto, auto x, M, L) {
         return binary_cross_entropy_with_logits(p * x, x) + huber(p, x) +
                nll_loss(log_softmax(p + x), Labels{0, 1, 2, 3, 0});
     }},
    {"softmax_cross_entropy (labels, smoothing)", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M, L labels) { return softmax_cross_entropy(p * x, labels, 0.1); }},
    {"softmax_cross_entropy (targets, smoothing)", {4, 5}, {1, 1}, {4, 5},
     [](auto p, auto, auto x, M Y, L) { return softmax_cross_entropy(p * x, Y, 0.2); }},
    {"layer_norm", {4, 1}, {4, 1}, {4, 5}, [](auto p, auto q, auto x, M, L) { return layer_norm(x, p, q) + layer_norm(p * x); }},
    {"batch_norm", {4, 1}, {4, 1}, {4, 5}, [](auto p, auto q, auto x, M, L) { return batch_norm(x, p, q) + batch_norm(p * x); }},
};

Labels random_labels(std::mt19937_64& rng, std::size_t classes, std::size_t examples) {
    std::uniform_int_distribution<std::size_t> pick(0, classes - 1);
    Labels labels(examples);
    for (std::size_t& c : labels) c = pick(rng);
    return labels;
}

struct Recorded {
    Var<double> out, loss;
};

Recorded record(const Case& c, Tape<double>& tape, Parameter<double>& p, Parameter<double>& q, const Matrix<double>& x,
                const Matrix<double>& Y, const Labels& labels) {
    Var<double> out = c.f(tape.parameter(p), tape.parameter(q), tape.constant_ref(x), Y, labels);
    return {out, sum(out * out)};
}

}  // namespace

TEST_CASE("a replayed step equals a fresh recording bit for bit, for every built-in op", "[replay]") {
    for (const Case& c : cases) {
        INFO("op: " << c.name);
        std::mt19937_64 rng(42);
        Parameter<double> p(random_matrix(rng, c.p, 0.5, 1.5), "p"), q(random_matrix(rng, c.q), "q");
        Matrix<double> x = random_matrix(rng, c.x);
        Matrix<double> Y = test::one_hot(rng, c.x.rows, c.x.cols);
        Labels labels = random_labels(rng, c.x.rows, c.x.cols);

        Tape<double> tape;
        const Recorded recorded = record(c, tape, p, q, x, Y, labels);
        tape.backward(recorded.loss);
        Replay<double> replay(tape, recorded.loss);
        const Node<double>& out = tape.node(recorded.out);
        const bool takes_targets = std::string(out.op) == "softmax_cross_entropy";
        for (int round = 0; round < 3; ++round) {
            // New data in the same buffers, as a data loader refills its batch.
            const Matrix<double> x_new = random_matrix(rng, c.x);
            std::copy(x_new.begin(), x_new.end(), x.begin());
            Y = test::one_hot(rng, c.x.rows, c.x.cols);
            labels = random_labels(rng, c.x.rows, c.x.cols);
            if (takes_targets && out.labels().empty()) replay.set_targets(recorded.out, Y);
            if (takes_targets && !out.labels().empty()) replay.set_labels(recorded.out, labels);
            p.zero_grad();
            q.zero_grad();
            const double replayed = replay.run();
            const Matrix<double> p_grad = p.grad, q_grad = q.grad;

            Tape<double> fresh;
            p.zero_grad();
            q.zero_grad();
            Var<double> fresh_loss = record(c, fresh, p, q, x, Y, labels).loss;
            fresh.backward(fresh_loss);
            REQUIRE(replayed == fresh_loss.value()(0, 0));
            REQUIRE(recorded.loss.value()(0, 0) == replayed);
            REQUIRE((p_grad == p.grad));
            REQUIRE((q_grad == q.grad));
        }
    }
}

namespace {

// A custom op: recorded by Tape::record with a lambda, so it cannot run again.
struct Twice {
    static constexpr const char* name = "twice";
    static Matrix<double> forward(OpContext<double>&, const Matrix<double>& x) { return 2.0 * x; }
    static Matrix<double> backward(const GradContext<double>& ctx, int) { return 2.0 * ctx.grad_output(); }
};

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("replay refuses what it cannot run again, naming the input or entry", "[replay]") {
    std::mt19937_64 rng(3);
    Parameter<double> W(random_matrix(rng, {3, 4}), "layer 1.W");
    Matrix<double> X = random_matrix(rng, {4, 5});
    Tape<double> tape;
    Var<double> Z = matmul(tape.parameter(W), tape.constant_ref(X));
    Var<double> loss = softmax_cross_entropy(Z, Labels{0, 1, 2, 0, 1});
    tape.backward(loss);
    Replay<double> replay(tape, loss);

    SECTION("an input matrix resized since it was recorded") {
        X = random_matrix(rng, {4, 6});
        const std::string message = message_of([&] { replay.run(); });
        CHECK(message.find("constant_ref") != std::string::npos);
        CHECK(message.find("4x5 when recorded") != std::string::npos);
        CHECK(message.find("4x6 now") != std::string::npos);
    }
    SECTION("a parameter resized since it was recorded") {
        W.value = random_matrix(rng, {2, 4});
        CHECK(message_of([&] { replay.run(); }).find("parameter 'layer 1.W' was 3x4 when recorded") != std::string::npos);
    }
    SECTION("labels of another length or out of range") {
        CHECK(message_of([&] { replay.set_labels(loss, Labels{0, 1}); }).find("2 class labels") != std::string::npos);
        CHECK(message_of([&] { replay.set_labels(loss, Labels{0, 1, 3, 0, 1}); }).find("label 3 of example 2") !=
              std::string::npos);
        CHECK(message_of([&] { replay.set_labels(Z, Labels{0, 1, 2, 0, 1}); }).find("not softmax_cross_entropy") !=
              std::string::npos);
        CHECK(message_of([&] { replay.set_targets(loss, Matrix<double>(xt::zeros<double>({3, 5}))); })
                  .find("use set_labels") != std::string::npos);
    }
    SECTION("a tape reset since") {
        tape.reset();
        CHECK(message_of([&] { replay.run(); }).find("reset") != std::string::npos);
    }
    SECTION("an entry recorded with a lambda (a custom op)") {
        Tape<double> other;
        Var<double> y = sum(apply<Twice>(matmul(other.parameter(W), other.constant_ref(X))));
        CHECK(message_of([&] { Replay<double> refused(other, y); }).find("tape entry 3 (twice) cannot run again") !=
              std::string::npos);
    }
}

TEST_CASE("a constant_ref reads the caller's matrix in place and checks its shape on backward", "[replay]") {
    Matrix<double> X = {{1, 2}, {3, 4}};
    Tape<double> tape;
    Var<double> x = tape.constant_ref(X);
    CHECK(&x.value() == &X);
    Parameter<double> w(Matrix<double>{{1, 1}}, "w");
    Var<double> loss = sum(matmul(tape.parameter(w), x));
    X = Matrix<double>{{1, 2, 3}, {3, 4, 5}};
    CHECK(message_of([&] { tape.backward(loss); }).find("constant_ref was 2x2 when recorded") != std::string::npos);
}

TEST_CASE("replay checks the values an op's domain excludes, as recording does", "[replay]") {
    Parameter<double> w(Matrix<double>{{1.0, 1.0}}, "w");
    Matrix<double> X = {{1.0, 2.0}};
    Tape<double> tape;
    Var<double> loss = sum(log(tape.parameter(w) * tape.constant_ref(X))) + sum(tape.parameter(w) / tape.constant_ref(X));
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    X = Matrix<double>{{1.0, -2.0}};
    CHECK(message_of([&] { replay.run(); }).find("log: input (1x2) holds -2") != std::string::npos);
    X = Matrix<double>{{0.0, 2.0}};
    CHECK(message_of([&] { replay.run(); }).find("log: input (1x2) holds 0") == std::string::npos);
    CHECK(message_of([&] { replay.run(); }).find("div: the divisor (1x2) holds 0 at row 0, column 0") != std::string::npos);
}

TEST_CASE("replay refuses a dropout, which must draw a new mask every step", "[replay]") {
    Matrix<double> X = {{1.0, 2.0}};
    Tape<double> tape;
    CounterRng rng{1, 0};
    Var<double> loss = sum(dropout(tape.constant_ref(X), 0.5, rng));
    CHECK(message_of([&] { Replay<double> refused(tape, loss); }).find("tape entry 1 (dropout) draws new random numbers") !=
          std::string::npos);
}

TEST_CASE("each replay's gradients are its own: nothing carries over from the last run, copied leaves included",
          "[replay]") {
    // The replay's forward clears the entries' gradient flags that the sweep used to clear:
    // an entry it missed would add this run's gradient to the last one's.
    Tape<double> tape;
    Parameter<double> p(Matrix<double>{{2.0, -1.0}}, "p");
    Matrix<double> X = {{3.0, 5.0}};
    Var<double> leaf = tape.leaf(Matrix<double>{{0.5, 4.0}});
    Var<double> loss = sum(leaf * tape.parameter(p) * tape.constant_ref(X) + leaf * leaf);
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    for (int run = 1; run <= 3; ++run) {
        X = Matrix<double>{{3.0 * run, 5.0}};
        p.zero_grad();
        replay.run();
        // d/dleaf = p x + 2 leaf; d/dp = leaf x
        CHECK((leaf.grad() == Matrix<double>{{2.0 * 3.0 * run + 1.0, -5.0 + 8.0}}));
        CHECK((p.grad == Matrix<double>{{0.5 * 3.0 * run, 20.0}}));
    }
}

TEST_CASE("replay refuses an entry computed under NoGrad that the step reads, and leaves out those it does not",
          "[replay][nograd]") {
    const Matrix<double> X = {{0.1, 0.2}}, Y = {{5.0, 6.0}};
    Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "p");
    {
        // b = tanh(a) under NoGrad; a's handle goes, and its entry is reused for c: b's input
        // now holds Y. Run again, b would be tanh(Y) and the gradient silently wrong.
        Tape<double> tape;
        Var<double> b, c;
        {
            NoGrad<double> no_grad(tape);
            Var<double> a = tape.constant(X);
            b = tanh(a);
        }
        {
            NoGrad<double> no_grad(tape);
            c = tape.constant(Y);
        }
        REQUIRE(c.index() == 0);  // a's entry, reused
        Var<double> loss = sum(b * tape.parameter(p));
        tape.backward(loss);
        CHECK_THROWS_WITH(Replay<double>(tape, loss), Contains("tape entry 1 (tanh)") && Contains("NoGrad"));
    }
    {
        // Entries of a NoGrad evaluation that the step does not read: released or still held,
        // they are no part of it.
        Tape<double> tape;
        Var<double> still_held;
        {
            NoGrad<double> no_grad(tape);
            still_held = exp(tape.constant(X));
            Var<double> released = tanh(tape.constant(Y));
        }
        Var<double> loss = sum(tape.parameter(p) * tape.parameter(p));
        p.zero_grad();
        tape.backward(loss);
        const Matrix<double> fresh = p.grad;
        Replay<double> replay(tape, loss);
        p.zero_grad();
        CHECK(replay.run() == 5.0);
        CHECK((p.grad == fresh));
    }
}

// Found by an attack: an output or a kept handle recorded under NoGrad (a metric, or an
// evaluation replayed with forward()) was left out of the replay, which no entry of the step
// reads, and kept the first recording's value after every run, silently.
TEST_CASE("replay refuses an output or a handle to keep that was computed under NoGrad", "[replay][nograd]") {
    Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "p");
    const Matrix<double> X = {{1.0, 2.0}};
    SECTION("a metric kept") {
        Tape<double> tape;
        Var<double> z = tape.parameter(p) * tape.constant_ref(X);
        Var<double> loss = sum(tanh(z));
        Var<double> metric;
        {
            NoGrad<double> no_grad(tape);
            metric = sum(z * 2.0);
        }
        tape.backward(loss);
        CHECK_THROWS_WITH(Replay<double>(tape, loss, {metric}),
                          Contains("a handle to keep (tape entry 6, sum) was computed under NoGrad"));
        CHECK_NOTHROW(Replay<double>(tape, loss, {z}));  // one recorded with gradients is kept
    }
    SECTION("the output") {
        Tape<double> tape;
        Var<double> loss;
        {
            NoGrad<double> no_grad(tape);
            loss = sum(tanh(tape.parameter(p) * tape.constant_ref(X)));
        }
        CHECK_THROWS_WITH(Replay<double>(tape, loss), Contains("the output (tape entry 4, sum) was computed under NoGrad"));
    }
}

TEST_CASE("a replay checks targets given as a handle, as recording does", "[replay]") {
    Tape<double> tape;
    Parameter<double> Z(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}}, "Z");
    Matrix<double> Y = {{1.0, 0.0}, {0.0, 1.0}};
    Var<double> loss = softmax_cross_entropy(tape.parameter(Z), tape.constant_ref(Y));
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    Y(0, 0) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(replay.run(), Contains("softmax_cross_entropy") && Contains("targets") && Contains("inf"));
    // Found by an attack: set_targets compared Y with the entry's copied targets, which such a
    // loss has none of: a right Y was refused as not matching "0x0" logits, an empty one taken.
    for (const Matrix<double>& targets : {Y, Matrix<double>()})
        CHECK_THROWS_WITH(replay.set_targets(loss, targets), Contains("takes its targets as a handle (tape entry") &&
                                                                 Contains("constant_ref): refill the matrix it reads"));
}

// Found by an attack: mse, huber and binary_cross_entropy_with_logits refused a NaN target
// given as a Matrix, but one given as a handle (a constant_ref a replay reads again) made the
// loss and every gradient NaN without a word.
TEST_CASE("mse, huber and binary cross-entropy check a target handle in their forward", "[replay]") {
    using Loss = Var<double> (*)(const Var<double>&, const Var<double>&);
    const std::pair<const char*, Loss> losses[] = {{"mse", mse<double>},
                                                   {"huber", huber<double>},
                                                   {"binary_cross_entropy_with_logits", binary_cross_entropy_with_logits<double>}};
    for (const auto& [name, loss_of] : losses) {
        INFO(name);
        Parameter<double> Z(Matrix<double>{{1.0, 2.0}, {3.0, 4.0}}, "Z");
        Matrix<double> Y = {{1.0, 0.0}, {0.0, 1.0}};
        Tape<double> tape;
        Var<double> loss = loss_of(tape.parameter(Z), tape.constant_ref(Y));
        tape.backward(loss);
        Replay<double> replay(tape, loss);
        Y(1, 0) = std::numeric_limits<double>::quiet_NaN();
        CHECK_THROWS_WITH(replay.run(), Contains(std::string(name) + ": target (2x2) holds nan at row 1, column 0"));
        Tape<double> fresh;
        CHECK_THROWS_WITH(loss_of(fresh.parameter(Z), fresh.constant_ref(Y)), Contains(std::string(name) + ": target"));
    }
}

TEST_CASE("a Replay of an output that is not 1x1 is refused when built, not after a whole forward", "[replay]") {
    Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "p");
    Tape<double> tape;
    const Var<double> y = tape.parameter(p) * 3.0;
    CHECK_THROWS_WITH(Replay<double>(tape, y), Contains("1x2") && Contains("not 1x1"));
}

TEST_CASE("an op that throws while it records pins none of its inputs: a Replay is not refused for them", "[replay]") {
    // Before: log of a NoGrad value threw on its domain after pinning that value, and the
    // Replay then refused the step for a NoGrad entry "the step reads", which it did not.
    Parameter<double> p(Matrix<double>{{1.0, 2.0}}, "p");
    Tape<double> tape;
    Var<double> negative;
    {
        NoGrad<double> no_grad(tape);
        negative = neg(tape.parameter(p));
    }
    CHECK_THROWS(log(negative));
    const Var<double> loss = sum(tape.parameter(p) * 2.0);
    tape.backward(loss);
    p.zero_grad();
    Replay<double> replay(tape, loss);
    CHECK(replay.run() == 6.0);
}

namespace {
// A replayable user op (record_op): the identity, whose forward, when armed, changes or
// destroys a parameter, after the replay's forward has checked the parameters and before
// its backward runs.
std::optional<Parameter<double>>* meddled_parameter = nullptr;
// 1: change w(0, 0) in place (bump_version); 2: destroy w; 3: resize w; 4: give w a new buffer
// of the same shape and values, keeping the old one alive and overwriting it with 999; 5: make
// the op's own value another shape.
int meddling = 0;
void meddling_forward(Tape<double>& tape, Node<double>& y) {
    const Matrix<double>& x = tape.input(y, 0);
    if (meddling == 5) {
        y.value = Matrix<double>({1, x.size()});
        std::copy(x.begin(), x.end(), y.value.begin());
        return;
    }
    std::copy(x.begin(), x.end(), y.value.begin());
    if (meddling == 1) (**meddled_parameter).value(0, 0) += 1, (**meddled_parameter).bump_version();
    if (meddling == 2) meddled_parameter->reset();
    if (meddling == 3) (**meddled_parameter).value = Matrix<double>({1, 1});
    if (meddling == 4) {
        static Matrix<double> old;
        old = std::move((**meddled_parameter).value);
        (**meddled_parameter).value = old;
        old.fill(999);
    }
}
void identity_backward(Tape<double>& tape, Node<double>& y) {
    const double* g = y.grad.data();
    tape.grad_of(y, 0).accumulate([g](std::size_t k) { return g[k]; });
}
}  // namespace

// An attack found that skipping backward's check of the parameters in a replay (on the ground
// that its forward had just made it) let the gradient go silently wrong, or read freed memory,
// when an op's own forward changed a parameter after that check.
TEST_CASE("a replay's backward refuses a parameter an op's forward changed or destroyed during the run", "[replay]") {
    for (int mode : {1, 2}) {
        INFO("mode " << mode);
        std::optional<Parameter<double>> w(Matrix<double>{{1, 2}, {3, 4}});
        meddled_parameter = &w;
        Parameter<double> v(Matrix<double>{{1, 1}, {1, 1}});
        Tape<double> tape;
        Var<double> loss = sum(tape.record_op("meddle", {tape.parameter(*w) * tape.parameter(v)}, {2, 2},
                                              meddling_forward, identity_backward));
        tape.backward(loss);
        Replay<double> replay(tape, loss);
        v.zero_grad();
        meddling = mode;
        REQUIRE_THROWS_WITH(replay.run(), Contains(mode == 1 ? "was modified in place" : "destroyed"));
        meddling = 0;
    }
}

// The entries after a user's op read the parameters in place: one it resized is refused before
// they read past its end (they did, before the replay checked after a user's forward).
TEST_CASE("a replay refuses a parameter an op's forward resized, before a later entry reads it", "[replay]") {
    std::optional<Parameter<double>> w(std::in_place, Matrix<double>{{1, 2}, {3, 4}}, "w");
    meddled_parameter = &w;
    Parameter<double> v(Matrix<double>{{1, 1}, {1, 1}});
    Tape<double> tape;
    Var<double> m = tape.record_op("meddle", {tape.constant(Matrix<double>{{1, 1}, {1, 1}})}, {2, 2}, meddling_forward,
                                   identity_backward);
    Var<double> loss = sum(m * (tape.parameter(*w) * tape.parameter(v)));
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    meddling = 3;
    REQUIRE_THROWS_WITH(replay.run(), Contains("meddle: parameter 'w' was 2x2 when recorded") && Contains("is 1x1 now"));
    meddling = 0;
}

// Found by an attack: a user's forward that gave a parameter a new buffer of the same shape
// (p.value = clip(p.value) does, through a temporary) left the flat steps that ran before it
// reading the old buffer in the sweep: freed memory (ASan), or here, one kept and overwritten.
TEST_CASE("a replay's flat steps read a parameter's new buffer after a user's forward replaced it", "[replay]") {
    std::optional<Parameter<double>> w(std::in_place, Matrix<double>{{1, 2}, {3, 4}}, "w");
    meddled_parameter = &w;
    Parameter<double> v(Matrix<double>{{1, 1}, {1, 1}});
    Tape<double> tape;
    meddling = 4;
    Var<double> loss = sum(tape.record_op("meddle", {tape.parameter(*w) * tape.parameter(v)}, {2, 2},
                                          meddling_forward, identity_backward));
    tape.backward(loss);
    const Matrix<double> recorded = v.grad;  // d sum(w * v) / dv = w, read where w is now
    CHECK((recorded == Matrix<double>{{1, 2}, {3, 4}}));
    Replay<double> replay(tape, loss);
    for (int run = 0; run < 2; ++run) {
        v.zero_grad();
        replay.run();
        CHECK((v.grad == recorded));  // bit for bit, as a fresh recording
    }
    meddling = 0;
}

// Found by an attack: a user's forward that made its own value another shape on a replay was
// refused only when a flat step read it; an op running its own code (transpose here) read
// past the value's end. Recording refuses that forward; a replay now does too.
TEST_CASE("a replay refuses a user's forward that makes its value another shape", "[replay]") {
    Tape<double> tape;
    Parameter<double> w(Matrix<double>{{1, 2, 3}, {4, 5, 6}});
    meddling = 0;
    Var<double> m = tape.record_op("reshaping", {tape.parameter(w)}, {2, 3}, meddling_forward, identity_backward);
    Var<double> loss = sum(transpose(m));
    tape.backward(loss);
    Replay<double> replay(tape, loss);
    replay.run();
    meddling = 5;
    CHECK_THROWS_WITH(replay.run(), Contains("reshaping: its forward left a 1x6 value, but it was recorded as 2x3"));
    CHECK_THROWS_WITH(replay.run(), Contains("recorded as 2x3"));  // and again: the recorded shape, not the last run's
    meddling = 0;
    replay.run();
    CHECK((w.grad == Matrix<double>{{3, 3, 3}, {3, 3, 3}}));  // the recording's backward, then the two runs that ran
}

// Found by an attack: a Replay keeping every intermediate (no arena of its own) let a second
// one be made that kept some in its arena; the first's runs then marked those entries readable
// again, and Var::value served a stale value without a word.
TEST_CASE("a Replay that would keep values in memory of its own is refused while another lives", "[replay]") {
    Parameter<double> w(Matrix<double>({3, 1}, 0.5));
    Matrix<double> x({3, 1}, 1.0);
    Tape<double> tape;
    Var<double> m = tape.constant_ref(x) * tape.parameter(w);
    Var<double> h = tanh(m), e = exp(m);
    Var<double> loss = sum(h + e);
    tape.backward(loss);
    {
        Replay<double> keeps_all(tape, loss, {m, h, e});
        CHECK_THROWS_WITH(Replay<double>(tape, loss), Contains("another Replay of this tape is alive"));
        Replay<double> also_keeps_all(tape, loss, {m, h, e});  // no memory of its own: allowed
        also_keeps_all.run();
        keeps_all.run();
    }
    Replay<double> pooled(tape, loss);  // the others are gone
    x.fill(2.0);
    pooled.run();
    CHECK_THROWS_WITH(e.value(), Contains("Replay"));  // kept in its arena: refused, not stale
}

// Found by an attack: a Replay destroyed after its tape (a struct declaring the tape first)
// wrote to the freed tape; run() read it.
TEST_CASE("a Replay outliving its tape touches nothing, and refuses to run", "[replay]") {
    Parameter<double> w(Matrix<double>({3, 1}, 0.5));
    auto tape = std::make_unique<Tape<double>>();
    Var<double> loss = sum(tanh(tape->parameter(w) * tape->parameter(w)));
    tape->backward(loss);
    auto replay = std::make_unique<Replay<double>>(*tape, loss);
    replay->run();
    tape.reset();
    CHECK_THROWS_WITH(replay->run(), Contains("Replay::run: the tape was reset (or destroyed)"));
    replay.reset();  // under ASan: no write to the freed tape
}

namespace {
bool assign_wrong_shape = false;
// The identity's backward, or, when armed, one that assigns its input's gradient a 1x1 matrix.
void assigning_backward(Tape<double>& tape, Node<double>& y) {
    if (assign_wrong_shape) tape.grad_of(y, 0).grad = Matrix<double>({1, 1}, 1.0);
    else identity_backward(tape, y);
}
}  // namespace

// Found by an attack: a user's backward that assigned its input's gradient a matrix of another
// shape instead of adding into it made the input's own backward (a transpose's) read past its
// end, recorded or replayed.
TEST_CASE("a user's backward that replaces an input's gradient by another shape is refused", "[replay]") {
    const char* message = "assigning (tape entry 4): its backward left input 0's gradient (tape entry 3, transpose) 1x1, "
                          "but that input is 5x4";
    Parameter<double> W(Matrix<double>({4, 3}, 0.5), "W");
    const Matrix<double> X({3, 5}, 1.0);
    for (bool replayed : {false, true}) {
        INFO("replayed " << replayed);
        Tape<double> tape;
        Var<double> z = transpose(matmul(tape.parameter(W), tape.constant_ref(X)));
        Var<double> loss = sum(tape.record_op("assigning", {z}, {5, 4}, meddling_forward, assigning_backward));
        assign_wrong_shape = !replayed;
        if (!replayed) {
            CHECK_THROWS_WITH(tape.backward(loss), Contains(message));
        } else {
            tape.backward(loss);
            Replay<double> replay(tape, loss);
            assign_wrong_shape = true;
            CHECK_THROWS_WITH(replay.run(), Contains(message));
        }
        assign_wrong_shape = false;
    }
}

namespace {
// The identity's backward, which then, when armed, meddles as meddling_forward does (mode 4:
// w gets a new buffer; mode 6: w's gradient is made 1x1).
void meddling_backward(Tape<double>& tape, Node<double>& y) {
    identity_backward(tape, y);
    if (meddling == 4) {
        static Matrix<double> old;
        old = std::move((**meddled_parameter).value);
        (**meddled_parameter).value = old;
        old.fill(999);
    }
    if (meddling == 6) (**meddled_parameter).grad = Matrix<double>({1, 1});
}
}  // namespace

// Found by a second attack: the backward twins of the holes above. A user's backward that gave
// a parameter a new buffer left a replay's flat steps reading the old one (freed memory, or
// here a kept and overwritten one); one that made a parameter's gradient another shape let the
// entries swept after it add past its end, recorded or replayed.
TEST_CASE("a user's backward that replaces a parameter's buffer or resizes its gradient", "[replay]") {
    std::optional<Parameter<double>> w(std::in_place, Matrix<double>{{1, 2}, {3, 4}}, "w");
    meddled_parameter = &w;
    Parameter<double> v(Matrix<double>{{1, 1}, {1, 1}});
    auto record = [&](Tape<double>& tape) {
        return sum(tape.record_op("meddle", {tape.parameter(*w) * tape.parameter(v)}, {2, 2}, meddling_forward,
                                  meddling_backward));
    };
    SECTION("a new buffer: the replay reads it, as a fresh sweep does") {
        Tape<double> tape;
        Var<double> loss = record(tape);
        meddling = 4;
        tape.backward(loss);
        const Matrix<double> recorded = v.grad;
        CHECK((recorded == Matrix<double>{{1, 2}, {3, 4}}));
        Replay<double> replay(tape, loss);
        for (int run = 0; run < 2; ++run) {
            v.zero_grad();
            replay.run();
            CHECK((v.grad == recorded));
        }
    }
    SECTION("a gradient of another shape: refused, recorded or replayed") {
        const char* message = "meddle (tape entry 3): its backward left parameter 'w''s gradient 1x1, but the parameter is 2x2";
        Tape<double> tape;
        Var<double> loss = record(tape);
        meddling = 6;
        CHECK_THROWS_WITH(tape.backward(loss), Contains(message));
        Tape<double> again;
        Var<double> replayed = record(again);
        meddling = 0;
        (*w).zero_grad();
        again.backward(replayed);
        Replay<double> replay(again, replayed);
        meddling = 6;
        CHECK_THROWS_WITH(replay.run(), Contains(message));
    }
    meddling = 0;
}

namespace {
void doubled_backward(Tape<double>& tape, Node<double>& y) {  // d/dx of a straight-through estimator: 2
    const double* g = y.grad.data();
    tape.grad_of(y, 0).accumulate([g](std::size_t k) { return 2 * g[k]; });
}
}  // namespace

// Found by a second attack: a user's record_op pairing a library op's forward (tanh's) with a
// backward of its own ran as the library's flat step on a replay: the user's backward was
// silently replaced by tanh's.
TEST_CASE("a replay runs a user's backward given with a library op's forward", "[replay]") {
    Parameter<double> a(Matrix<double>{{0.5, -1.0}});
    Tape<double> tape;
    const ForwardFn<double> tanh_forward = tape.node(tanh(tape.leaf(Matrix<double>{{0.0}}))).forward;
    tape.reset();
    Var<double> loss = sum(tape.record_op("ste_tanh", {tape.parameter(a)}, {1, 2}, tanh_forward, doubled_backward));
    tape.backward(loss);
    CHECK((a.grad == Matrix<double>{{2, 2}}));
    Replay<double> replay(tape, loss);
    a.zero_grad();
    replay.run();
    CHECK((a.grad == Matrix<double>{{2, 2}}));
}

// Which entries a replay trusts (Node::library_code): the library's ops, flat or not, and not
// a user's record_op.
TEST_CASE("the library's entries are marked as its own code, a user's record_op is not", "[replay]") {
    Tape<double> tape;
    Var<double> x = tape.leaf(Matrix<double>{{1, 2}, {3, 4}});
    auto library = [&](const Var<double>& v) { return (tape.node(v).flags & Node<double>::library_code) != 0; };
    CHECK(library(x * x));                                          // flat
    CHECK(library(matmul(x, x)));                                    // its own forward
    CHECK(library(softmax_cross_entropy(x, Labels{0, 1})));
    CHECK_FALSE(library(tape.record_op("mine", {x}, {2, 2}, meddling_forward, identity_backward)));
    CHECK_FALSE(library(*tape.record_flat("mine_flat", std::array<const Var<double>*, 1>{&x}, meddling_forward,
                                          identity_backward, [](const FlatStep<double>&) {})));
    CHECK_FALSE(library(x));                                         // a leaf runs no code
}

// Found by an attack: Tape::record_flat (public) marked every entry as the library's, so a
// user's forward recorded through it could destroy, resize or change a parameter unchecked
// (freed memory read, or a silently wrong gradient).
TEST_CASE("a replay checks the parameters after a user's forward recorded by record_flat", "[replay]") {
    for (int mode : {1, 2, 3}) {
        INFO("mode " << mode);
        std::optional<Parameter<double>> w(std::in_place, Matrix<double>{{1, 2}, {3, 4}}, "w");
        meddled_parameter = &w;
        Parameter<double> v(Matrix<double>{{1, 1}, {1, 1}});
        Tape<double> tape;
        Var<double> wv = tape.parameter(*w) * tape.parameter(v);
        Var<double> m = *tape.record_flat("flat_meddle", std::array<const Var<double>*, 1>{&wv}, meddling_forward,
                                          identity_backward, [](const FlatStep<double>& step) {
                                              std::copy(step.x[0], step.x[0] + step.n, step.y);
                                          });
        Var<double> loss = sum(m);
        tape.backward(loss);
        Replay<double> replay(tape, loss);
        v.zero_grad();
        meddling = mode;
        REQUIRE_THROWS_WITH(replay.run(), Contains(mode == 1 ? "was modified in place"
                                                   : mode == 2 ? "flat_meddle: parameter (2x2, tape entry 1) was destroyed"
                                                               : "flat_meddle: parameter 'w' was 2x2 when recorded"));
        meddling = 0;
    }
}
