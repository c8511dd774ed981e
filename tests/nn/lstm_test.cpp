// nn::LSTMCell and nn::LSTM against PyTorch in float64 (tests/data/torch_nn/generate.py,
// recurrent.txt): values, the state after a sequence, and the gradients of the inputs, the
// initial state and every parameter; then gradcheck, names, checkpoints and misuse.

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "../autodiff/torch_fixture.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/replay.hpp"
#include "nn/allocate.hpp"
#include "nn/io/module_checkpoint.hpp"
#include "nn/lstm.hpp"
#include "temp_dir.hpp"

using autodiff::Matrix;
using autodiff::Var;
using Catch::Matchers::Contains;

namespace {

constexpr double tolerance = 1e-12;

// PyTorch's names for one cell's parameters, with a layer's suffix ("_l0") for an LSTM.
void set_parameters(nn::LSTMCell<double>& cell, const test::FixtureCase& c, const std::string& suffix) {
    cell.W_ih.value = c["weight_ih" + suffix];
    cell.W_hh.value = c["weight_hh" + suffix];
    cell.b_ih.value = c["bias_ih" + suffix];
    cell.b_hh.value = c["bias_hh" + suffix];
}

void require_parameter_grads(nn::LSTMCell<double>& cell, const test::FixtureCase& c, const std::string& suffix) {
    test::require_matches_torch(cell.W_ih.grad, c["grad_weight_ih" + suffix], c.name + " grad W_ih" + suffix, tolerance);
    test::require_matches_torch(cell.W_hh.grad, c["grad_weight_hh" + suffix], c.name + " grad W_hh" + suffix, tolerance);
    test::require_matches_torch(cell.b_ih.grad, c["grad_bias_ih" + suffix], c.name + " grad b_ih" + suffix, tolerance);
    test::require_matches_torch(cell.b_hh.grad, c["grad_bias_hh" + suffix], c.name + " grad b_hh" + suffix, tolerance);
}

std::vector<test::FixtureCase> cases_named(const std::string& prefix) {
    std::vector<test::FixtureCase> out;
    for (test::FixtureCase& c : test::load_torch_fixture("torch_nn/recurrent.txt"))
        if (c.name.rfind(prefix + "_", 0) == 0) out.push_back(std::move(c));
    return out;
}

}  // namespace

TEST_CASE("LSTMCell matches PyTorch's step: h, c and every gradient", "[layers][lstm][torch]") {
    const std::vector<test::FixtureCase> cases = cases_named("lstmcell");
    REQUIRE(cases.size() == 4);
    for (const test::FixtureCase& c : cases) {
        INFO(c.name);
        const std::vector<std::size_t> n = c.numbers();
        nn::LSTMCell<double> cell(n[0], n[1]);
        set_parameters(cell, c, "");
        autodiff::Tape<double> tape;
        const Var<double> x = tape.leaf(c["x"]);
        const nn::LSTMState<double> before{tape.leaf(c["h0"]), tape.leaf(c["c0"])};
        const nn::LSTMState<double> after = cell(x, before);
        test::require_matches_torch(after.h.value(), c["h"], c.name + " h", tolerance);
        test::require_matches_torch(after.c.value(), c["c"], c.name + " c", tolerance);
        const Var<double> loss = sum(after.h * tape.constant(c["seed_h"])) + sum(after.c * tape.constant(c["seed_c"]));
        tape.backward(loss);
        test::require_matches_torch(x.grad(), c["grad_x"], c.name + " grad x", tolerance);
        test::require_matches_torch(before.h.grad(), c["grad_h0"], c.name + " grad h0", tolerance);
        test::require_matches_torch(before.c.grad(), c["grad_c0"], c.name + " grad c0", tolerance);
        require_parameter_grads(cell, c, "");
    }
}

TEST_CASE("LSTM matches PyTorch over a sequence: outputs, final state, gradients through time", "[layers][lstm][torch]") {
    const std::vector<test::FixtureCase> cases = cases_named("lstm");
    REQUIRE(cases.size() == 3);
    for (const test::FixtureCase& c : cases) {
        INFO(c.name);
        const std::vector<std::size_t> n = c.numbers();  // n_in, hidden, layers, m, steps
        nn::LSTM<double> lstm(n[0], n[1], n[2]);
        for (std::size_t l = 0; l < n[2]; ++l) set_parameters(lstm.layers[l], c, "_l" + std::to_string(l));
        autodiff::Tape<double> tape;
        std::vector<Var<double>> xs;
        for (std::size_t t = 0; t < n[4]; ++t) xs.push_back(tape.leaf(c["x" + std::to_string(t)]));
        std::vector<nn::LSTMState<double>> state;
        for (std::size_t l = 0; l < n[2]; ++l)
            state.push_back({tape.leaf(c["h0_" + std::to_string(l)]), tape.leaf(c["c0_" + std::to_string(l)])});
        const std::vector<nn::LSTMState<double>> initial = state;
        const std::vector<Var<double>> out = lstm(xs, state);
        REQUIRE(out.size() == n[4]);
        Var<double> loss = sum(out[0] * tape.constant(c["seed0"]));
        for (std::size_t t = 0; t < n[4]; ++t) {
            test::require_matches_torch(out[t].value(), c["out" + std::to_string(t)], c.name + " out", tolerance);
            if (t > 0) loss = loss + sum(out[t] * tape.constant(c["seed" + std::to_string(t)]));
        }
        for (std::size_t l = 0; l < n[2]; ++l) {
            test::require_matches_torch(state[l].h.value(), c["h_" + std::to_string(l)], c.name + " final h", tolerance);
            test::require_matches_torch(state[l].c.value(), c["c_" + std::to_string(l)], c.name + " final c", tolerance);
        }
        tape.backward(loss);
        for (std::size_t t = 0; t < n[4]; ++t)
            test::require_matches_torch(xs[t].grad(), c["grad_x" + std::to_string(t)], c.name + " grad x", tolerance);
        for (std::size_t l = 0; l < n[2]; ++l) {
            const std::string layer = std::to_string(l);
            test::require_matches_torch(initial[l].h.grad(), c["grad_h0_" + layer], c.name + " grad h0", tolerance);
            test::require_matches_torch(initial[l].c.grad(), c["grad_c0_" + layer], c.name + " grad c0", tolerance);
            require_parameter_grads(lstm.layers[l], c, "_l" + layer);
        }
    }
}

TEST_CASE("LSTMCell passes gradcheck at every input, 1x1 and column shapes included", "[layers][lstm][gradcheck]") {
    nn::NumpyRandom rng(5);
    for (const auto [n_in, hidden, m] : {std::array<std::size_t, 3>{1, 1, 1}, {1, 4, 3}, {3, 1, 1}, {2, 3, 4}}) {
        INFO(n_in << " -> " << hidden << ", " << m << " examples");
        nn::LSTMCell<double> cell(n_in, hidden, rng);
        // Two steps, so that the second reads the state the first wrote.
        const autodiff::TapeFunction<double> f = [&](autodiff::Tape<double>&, const std::vector<Var<double>>& in) {
            const nn::LSTMState<double> one = cell(in[0], {in[1], in[2]});
            const nn::LSTMState<double> two = cell(in[0] * 0.5, one);
            return two.h + two.c;
        };
        const autodiff::GradcheckResult r =
            autodiff::gradcheck<double>(f, {rng.randn(n_in, m), rng.randn(hidden, m), rng.randn(hidden, m)});
        INFO(r.summary());
        REQUIRE(r.passed);
    }
}

TEST_CASE("LSTM names its parameters by layer and draws them as PyTorch does", "[layers][lstm]") {
    nn::LSTM<double> lstm(5, 3, 2, 7);
    const auto named = lstm.named_parameters();
    std::vector<std::string> names;
    for (const auto& p : named) names.push_back(p.name);
    REQUIRE(names == std::vector<std::string>{"layer0.W_ih", "layer0.W_hh", "layer0.b_ih", "layer0.b_hh",
                                              "layer1.W_ih", "layer1.W_hh", "layer1.b_ih", "layer1.b_hh"});
    REQUIRE(lstm.layers[0].W_ih.shape() == autodiff::Shape{12, 5});
    REQUIRE(lstm.layers[1].W_ih.shape() == autodiff::Shape{12, 3});
    REQUIRE(lstm.layers[1].W_hh.shape() == autodiff::Shape{12, 3});
    REQUIRE(lstm.layers[1].b_hh.shape() == autodiff::Shape{12, 1});
    REQUIRE(lstm.parameter_count() == (12 * 5 + 12 * 3 + 24) + (12 * 3 + 12 * 3 + 24));
    REQUIRE(lstm.describe() == "LSTM(5, 3, layers 2)");
    REQUIRE(lstm.layers[0].describe() == "LSTMCell(5, 3)");
    // U(-1/sqrt(3), 1/sqrt(3)), every draw, and a seed fixes them all.
    const double k = 1.0 / std::sqrt(3.0);
    for (const auto& p : named)
        for (double v : p.item->value) REQUIRE(std::abs(v) <= k);
    nn::LSTM<double> again(5, 3, 2, 7);
    REQUIRE((again.layers[1].b_hh.value == lstm.layers[1].b_hh.value));
    nn::LSTM<double> other(5, 3, 2, 8);
    REQUIRE((other.layers[1].b_hh.value != lstm.layers[1].b_hh.value));
}

TEST_CASE("an LSTM's checkpoint loads into a new one with the same outputs", "[layers][lstm][checkpoint]") {
    test_support::TempDir dir("lstm");
    nn::LSTM<double> lstm(2, 3, 2, 1);
    nn::LSTM<double> restored(2, 3, 2, 99);
    nn::save(dir.path / "ckpt", lstm);
    nn::load(dir.path / "ckpt", restored);
    autodiff::Tape<double> tape;
    const Matrix<double> x = nn::NumpyRandom(4).randn(2, 5);
    std::vector<nn::LSTMState<double>> a = lstm.zero_state(tape, 5), b = restored.zero_state(tape, 5);
    const Var<double> ya = lstm({tape.constant(x), tape.constant(x)}, a).back();
    const Var<double> yb = restored({tape.constant(x), tape.constant(x)}, b).back();
    REQUIRE((ya.value() == yb.value()));
    nn::LSTM<double> wider(2, 4, 2, 1);
    REQUIRE_THROWS_WITH(nn::load(dir.path / "ckpt", wider), Contains("layer0.W_ih"));
}

TEST_CASE("LSTM refuses inputs and states of the wrong shape, naming the layer", "[layers][lstm][errors]") {
    nn::LSTM<double> lstm(3, 2, 2);
    autodiff::Tape<double> tape;
    std::vector<nn::LSTMState<double>> state = lstm.zero_state(tape, 4);
    REQUIRE_THROWS_WITH(lstm({tape.constant(Matrix<double>(xt::zeros<double>({5, 4})))}, state),
                        Contains("layer0") && Contains("5x4") && Contains("takes 3 features"));
    REQUIRE_THROWS_WITH(lstm({tape.constant(Matrix<double>(xt::zeros<double>({3, 2})))}, state),
                        Contains("layer0") && Contains("the state's h is 2x4") && Contains("must be 2x2"));
    std::vector<nn::LSTMState<double>> one_layer(1, state[0]);
    REQUIRE_THROWS_WITH(lstm({tape.constant(Matrix<double>(xt::zeros<double>({3, 4})))}, one_layer),
                        Contains("holds 1 layers") && Contains("2 are needed"));
    nn::LSTMCell<double> cell(3, 2);
    const nn::LSTMState<double> mixed{state[0].h, tape.constant(Matrix<double>(xt::zeros<double>({2, 3})))};
    REQUIRE_THROWS_WITH(cell(tape.constant(Matrix<double>(xt::zeros<double>({3, 4}))), mixed),
                        Contains("the state's c is 2x3"));
    REQUIRE_THROWS_WITH(nn::LSTMCell<double>(0, 2), Contains("LSTMCell(0, 2)") && Contains("at least 1"));
    REQUIRE_THROWS_WITH(nn::LSTM<double>(3, 2, 0), Contains("at least one layer"));
    REQUIRE_THROWS_WITH(nn::LSTM<double>(3, 0, 1), Contains("LSTMCell(3, 0)"));
}

TEST_CASE("an LSTMCell refuses weights assigned with sizes that do not fit each other", "[layers][lstm][errors]") {
    // Weights set by hand (from PyTorch, as above): a W_hh of 32x4 in a cell of hidden size 8
    // made a cell of 4 that sliced the 32 gate rows as 4 x 4, never reading the other 16.
    nn::LSTMCell<double> cell(3, 8);
    cell.W_hh.value = nn::NumpyRandom(4).randn(32, 4);
    autodiff::Tape<double> tape;
    const Var<double> x = tape.constant(Matrix<double>(xt::ones<double>({3, 2})));
    REQUIRE_THROWS_WITH(cell(x, cell.zero_state(tape, 2)),
                        Contains("LSTMCell(3, 4)") && Contains("W_ih is 32x3 and W_hh 32x4") &&
                            Contains("4 n_hidden rows (n_hidden: W_hh's columns, 4)"));
    cell.W_hh.value = nn::NumpyRandom(4).randn(16, 4);  // hidden size 4 for W_hh, 8 for W_ih
    REQUIRE_THROWS_WITH(cell(x, cell.zero_state(tape, 2)), Contains("W_ih is 32x3 and W_hh 16x4"));
}

TEST_CASE("an LSTM sequence refused part way leaves the state as it was", "[layers][lstm][errors]") {
    // The state was advanced step by step in place: a refused step left the layers below it,
    // and the steps before it, advanced, and a caller that caught the error went on from there.
    nn::LSTM<double> lstm(3, 2, 2);
    autodiff::Tape<double> tape;
    std::vector<nn::LSTMState<double>> state = lstm.zero_state(tape, 4);
    auto require_state = [&](const std::vector<nn::LSTMState<double>>& expected) {
        for (std::size_t l = 0; l < state.size(); ++l) {
            REQUIRE(state[l].h.index() == expected[l].h.index());
            REQUIRE(state[l].c.index() == expected[l].c.index());
        }
    };
    const Var<double> x = tape.constant(Matrix<double>(xt::ones<double>({3, 4})));
    state[1] = lstm.layers[1].zero_state(tape, 5);  // layer 1's batch is not the input's
    const std::vector<nn::LSTMState<double>> misfit = state;
    REQUIRE_THROWS_WITH(lstm({x}, state), Contains("layer1") && Contains("the state's h is 2x5"));
    require_state(misfit);
    state[1] = lstm.layers[1].zero_state(tape, 4);
    const std::vector<nn::LSTMState<double>> fitting = state;
    const Var<double> wrong = tape.constant(Matrix<double>(xt::ones<double>({2, 4})));
    REQUIRE_THROWS_WITH(lstm({x, x, wrong}, state), Contains("layer0") && Contains("its input is 2x4"));
    require_state(fitting);
}

TEST_CASE("an LSTM state recorded on another tape than the input is refused, naming the layer", "[layers][lstm][errors]") {
    // The first op to meet both said only "linear: the handle belongs to another tape".
    nn::LSTM<double> lstm(3, 2, 2);
    autodiff::Tape<double> tape, other;
    const Var<double> x = tape.constant(Matrix<double>(xt::ones<double>({3, 4})));
    std::vector<nn::LSTMState<double>> state = lstm.zero_state(tape, 4);
    state[1].c = lstm.layers[1].zero_state(other, 4).c;
    REQUIRE_THROWS_WITH(lstm({x}, state), Contains("layer1") && Contains("the state's c was recorded on another tape than the input"));
}

TEST_CASE("an LSTM whose layers were emptied is refused, naming it", "[layers][lstm][errors]") {
    // layers is public: emptied, n_in(), n_hidden() and describe() read front() of an empty
    // deque (undefined behaviour), and a sequence passed its input through unchanged.
    nn::LSTM<double> lstm(3, 2);
    autodiff::Tape<double> tape;
    const Var<double> x = tape.constant(Matrix<double>(xt::ones<double>({3, 4})));
    lstm.layers.clear();
    std::vector<nn::LSTMState<double>> state;
    REQUIRE_THROWS_WITH(lstm.describe(), Contains("LSTM: has no layers"));
    REQUIRE_THROWS_WITH(lstm.n_in(), Contains("LSTM: has no layers"));
    REQUIRE_THROWS_WITH(lstm({x}, state), Contains("LSTM: has no layers"));
}

TEST_CASE("LSTM sizes whose numbers wrap around size_t are refused before anything is drawn", "[layers][lstm][errors]") {
    // 4 x 2^62 gates wrapped around to 0 rows ('parameter W_ih: empty 0x1 matrix'); W_hh's
    // 2^33 x 2^31 numbers, 2^64, would have been counted after W_ih's 64 GiB were drawn.
    REQUIRE_THROWS_WITH(nn::LSTMCell<double>(1, std::size_t(1) << 62),
                        Contains("LSTMCell(1, 4611686018427387904)") && Contains("more bytes than a size_t can count"));
    REQUIRE_THROWS_WITH(nn::LSTM<float>(1, std::size_t(1) << 31),
                        Contains("LSTMCell(1, 2147483648)") && Contains("more bytes than a size_t can count"));
    // A layer count of 2^40 allocated layer after layer until the system killed the process.
    REQUIRE_THROWS_WITH(nn::LSTM<double>(1, 1, std::size_t(1) << 40),
                        Contains("LSTM(1, 1, layers 1099511627776) needs at least") && Contains("bytes of memory"));
    REQUIRE_THROWS_WITH(nn::LSTM<double>(1, 1, SIZE_MAX), Contains("LSTM(1, 1, layers 18446744073709551615) has more bytes"));
    // A batch of 2^63 made a 2x2^63 state of no numbers ('constant: empty 2x9223372036854775808 matrix').
    nn::LSTM<double> lstm(3, 2);
    autodiff::Tape<double> tape;
    REQUIRE_THROWS_WITH(lstm.zero_state(tape, std::size_t(1) << 63),
                        Contains("layer0 (LSTMCell(3, 2)): zero_state: a 2x9223372036854775808 matrix has more bytes"));
}

#if defined(__linux__)
// The count was checked against the cell object and its numbers alone, ~480 bytes a layer in
// double, where a layer takes ~3 KB (its parameters' objects and gradients, each module's
// containers): LSTM(1, 1, memory / 1000) passed the check and went on to allocate three times
// the machine's memory (a layer at a time, for days: registering each layer compares its name
// with every one before), until the system killed the process (found by an attack). Made in a child
// whose address space is capped, so that a check that lets it through fails this test instead
// of exhausting the machine.
TEST_CASE("an LSTM's layer count is checked against what a layer really takes", "[layers][lstm][errors]") {
    // Where the allocator cannot say what it handed out (not glibc; the sanitizers' own
    // allocators), only the count's lower bound is checked.
    if (nn::allocated_bytes() == 0) return;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    struct sysinfo info {};
    REQUIRE(sysinfo(&info) == 0);
    const std::size_t memory = (std::size_t(info.totalram) + std::size_t(info.totalswap)) * info.mem_unit;
    const std::size_t layers = memory / 1000;
    const std::string expected = "LSTM(1, 1, layers " + std::to_string(layers) + ") needs at least";
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        alarm(60);
        struct rlimit limit {};
        getrlimit(RLIMIT_AS, &limit);
        std::ifstream status("/proc/self/status");
        std::size_t used_kib = 0;
        for (std::string line; std::getline(status, line);)
            if (line.rfind("VmSize:", 0) == 0) used_kib = std::stoul(line.substr(7));
        limit.rlim_cur = used_kib * 1024 + (std::size_t(1) << 30);  // a GiB more than now
        setrlimit(RLIMIT_AS, &limit);
        try {
            nn::LSTM<double> lstm(1, 1, layers);
        } catch (const autodiff::Error& e) {
            _exit(std::string(e.what()).find(expected) != std::string::npos ? 0 : 2);
        } catch (...) {
            _exit(3);  // std::bad_alloc: the cap was reached, layer by layer
        }
        _exit(4);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    INFO("child status " << status << " (exit 3: memory ran out; 4: the LSTM was made; signal 14: still making layers "
                                       "after a minute)");
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
#endif
}
#endif

TEST_CASE("an LSTM's training step replays with the gradients of a fresh recording, bit for bit", "[layers][lstm][replay]") {
    nn::LSTM<double> lstm(3, 4, 2, 3);
    nn::NumpyRandom rng(6);
    std::vector<Matrix<double>> inputs;  // read in place (constant_ref): refilled for each run
    for (int t = 0; t < 5; ++t) inputs.push_back(rng.randn(3, 2));
    const autodiff::Labels labels{1, 3};
    auto record = [&](autodiff::Tape<double>& tape) {
        std::vector<Var<double>> xs;
        for (const Matrix<double>& x : inputs) xs.push_back(tape.constant_ref(x));
        std::vector<nn::LSTMState<double>> state = lstm.zero_state(tape, 2);
        return autodiff::softmax_cross_entropy(lstm(xs, state).back(), labels);
    };
    autodiff::Tape<double> tape;
    const Var<double> loss = record(tape);
    tape.backward(loss);
    autodiff::Replay<double> replay(tape, loss);
    for (int run = 0; run < 2; ++run) {
        for (Matrix<double>& x : inputs) x = rng.randn(3, 2);
        lstm.zero_grad();
        const double replayed = replay.run();
        std::vector<Matrix<double>> replayed_grads;
        for (auto* p : lstm.parameters()) replayed_grads.push_back(p->grad);
        lstm.zero_grad();
        autodiff::Tape<double> fresh;
        const Var<double> again = record(fresh);
        fresh.backward(again);
        REQUIRE(replayed == again.value()(0, 0));
        for (std::size_t k = 0; k < replayed_grads.size(); ++k) REQUIRE((replayed_grads[k] == lstm.parameters()[k]->grad));
    }
}

TEST_CASE("LSTM<float> follows LSTM<double> on the same weights to float's precision", "[layers][lstm]") {
    nn::LSTM<double> wide(3, 4, 2, 11);
    nn::LSTM<float> narrow(3, 4, 2, 11);  // the same draws, rounded to float
    const Matrix<double> x = nn::NumpyRandom(12).randn(3, 5);
    autodiff::Tape<double> tape;
    autodiff::Tape<float> tape_f;
    std::vector<nn::LSTMState<double>> state = wide.zero_state(tape, 5);
    std::vector<nn::LSTMState<float>> state_f = narrow.zero_state(tape_f, 5);
    const Var<double> y = wide({tape.constant(x), tape.constant(x)}, state).back();
    const autodiff::Var<float> y_f = narrow({tape_f.constant(autodiff::Matrix<float>(x)), tape_f.constant(autodiff::Matrix<float>(x))}, state_f).back();
    tape.backward(sum(y));
    tape_f.backward(sum(y_f));
    for (std::size_t k = 0; k < y.value().size(); ++k) REQUIRE(y_f.value().data()[k] == Approx(y.value().data()[k]).margin(1e-6).epsilon(0));
    const Matrix<double>& g = wide.layers[0].W_ih.grad;
    const autodiff::Matrix<float>& g_f = narrow.layers[0].W_ih.grad;
    for (std::size_t k = 0; k < g.size(); ++k) REQUIRE(g_f.data()[k] == Approx(g.data()[k]).margin(1e-5).epsilon(0));
}
