// bench/lstm_bench.cpp: the recurrent workload of issue 15 (lstm_problem.hpp), hand-written
// against tapegrad, plus the per-entry cost of a tape entry. Prints one JSON object per line
// (bench/lstm_run.sh joins them with PyTorch's and prints the table).
//
//   lstm_bench [--reps N] [--check] [--only WHAT]
//
// --only runs one thing twice (or --reps times), untimed, for instruction counts (valgrind
// --tool=callgrind) or a profile (perf record):
// entry (100,000 chained muls), grad, replay or loss (tapegrad, 2 layers, 1024 steps), hw-grad, hw-loss.
// The gradient is timed both recorded afresh each time and replayed (autodiff::Replay).
//
// Timings are medians over N repetitions of this thread's CPU time (not wall time: on a
// shared machine a descheduled run would count the other processes' time), the
// implementations interleaved within each repetition so that machine load hits them alike.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lstm_handwritten.hpp"
#include "lstm_tapegrad.hpp"

namespace {

using namespace bench::lstm;
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds(const std::function<void()>& f) {
    const double t0 = thread_cpu_seconds();
    f();
    return thread_cpu_seconds() - t0;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double max_abs_diff(const Gradient& a, const Gradient& b) {
    double d = 0;
    auto cmp = [&](const std::vector<double>& x, const std::vector<double>& y) {
        for (std::size_t k = 0; k < x.size(); ++k) d = std::max(d, std::abs(x[k] - y[k]));
    };
    for (std::size_t k = 0; k < a.layer_params.size(); ++k) cmp(a.layer_params[k], b.layer_params[k]);
    cmp(a.w_out, b.w_out);
    cmp(a.b_out, b.b_out);
    return d;
}

double gradient_norm1(const Gradient& g) {
    double s = 0;
    for (const auto& v : g.layer_params)
        for (double x : v) s += std::abs(x);
    for (double x : g.w_out) s += std::abs(x);
    for (double x : g.b_out) s += std::abs(x);
    return s;
}

// The four, after two short sequences whose tapes (entries and buffers: ~0.7 MB and
// ~2.9 MB) fit in, or about fill, a 2.5 MB L2, as the hand-written code's kept gates do at
// every length: they separate what an entry costs in instructions from what its bytes cost.
const std::vector<std::pair<std::size_t, std::size_t>> kWorkloads = {{2, 32}, {2, 128}, {2, 1024}, {2, 4096}, {4, 1024}, {4, 4096}};

int check() {
    int failures = 0;
    for (auto [layers, steps] : kWorkloads) {
        const Problem p = make_problem(layers, steps);
        Handwritten hw(p);
        HandwrittenWith<KernelMath> hw_kernels(p);
        Tapegrad tg(p);
        const double hw_loss = hw.loss(), hw_grad_loss = hw.loss_and_gradient();
        const double tg_loss = tg.loss(), tg_grad_loss = tg.loss_and_gradient();
        const double hwk_loss = hw_kernels.loss(), hwk_grad_loss = hw_kernels.loss_and_gradient();
        const bool kernels_agree = std::abs(hwk_loss - hw_loss) < 1e-12 && std::abs(hwk_grad_loss - hwk_loss) < 1e-12 &&
                                   max_abs_diff(hw.gradient(), hw_kernels.gradient()) < 1e-12;
        const double dg = max_abs_diff(hw.gradient(), tg.gradient());
        // A replay's gradient equals a fresh recording's bit for bit (its second run replays).
        Tapegrad replayed(p);
        replayed.replayed_loss_and_gradient();
        const double replayed_loss = replayed.replayed_loss_and_gradient();
        const bool replay_same = replayed_loss == tg_grad_loss && max_abs_diff(replayed.gradient(), tg.gradient()) == 0;
        const bool ok = std::abs(hw_loss - tg_loss) < 1e-12 && std::abs(hw_grad_loss - hw_loss) < 1e-12 &&
                        std::abs(tg_grad_loss - tg_loss) < 1e-12 && dg < 1e-12 && replay_same && kernels_agree;
        failures += !ok;
        std::printf("{\"check\": \"L%zu T%zu\", \"handwritten_loss\": %.17g, \"tapegrad_loss\": %.17g, "
                    "\"gradient_l1\": %.17g, \"max_grad_diff\": %.3g, \"replay_bit_for_bit\": %s, \"ok\": %s}\n",
                    layers, steps, hw_loss, tg_loss, gradient_norm1(hw.gradient()), dg, replay_same ? "true" : "false",
                    ok ? "true" : "false");
    }
    return failures ? 1 : 0;
}

// Per entry of `entries` chained 14x1 muls (y = y ⊙ w): record + sweep, record under NoGrad,
// and a replay of the recorded chain (forward + sweep); the first run and the later ones.
void per_entry_cost(int reps) {
    const std::size_t entries = 100000;
    autodiff::Parameter<double> w(xt::ones<double>({std::size_t(14), std::size_t(1)}));
    const autodiff::Matrix<double> x0 = xt::ones<double>({std::size_t(14), std::size_t(1)});
    enum class Mode { record_and_sweep, no_grad, replay };
    for (Mode mode : {Mode::record_and_sweep, Mode::no_grad, Mode::replay}) {
        autodiff::Tape<double> tape;
        std::unique_ptr<autodiff::Replay<double>> replay;
        auto run = [&] {
            if (replay) return void(replay->run());
            tape.reset();
            std::unique_ptr<autodiff::NoGrad<double>> guard;
            if (mode == Mode::no_grad) guard = std::make_unique<autodiff::NoGrad<double>>(tape);
            const auto wv = tape.parameter(w);
            auto y = tape.constant(x0);
            for (std::size_t k = 0; k < entries; ++k) y = y * wv;
            if (mode == Mode::no_grad) return;
            const auto loss = sum(y);
            tape.backward(loss);
            if (mode == Mode::replay) replay = std::make_unique<autodiff::Replay<double>>(tape, loss);
        };
        const double first = seconds(run);
        std::vector<double> later;
        for (int r = 0; r < reps; ++r) later.push_back(seconds(run));
        const double ns = median(later) / double(entries) * 1e9;
        const char* what = mode == Mode::no_grad ? "record (NoGrad)"
                           : mode == Mode::replay ? "replay (forward + sweep)"
                                                  : "record + sweep";
        std::printf("{\"per_entry\": \"%s\", \"entries\": %zu, \"ns_per_entry\": %.1f, \"first_ns_per_entry\": %.1f, "
                    "\"first_over_later\": %.2f, \"node_bytes\": %zu}\n",
                    what, entries, ns, first / double(entries) * 1e9, first / median(later), sizeof(autodiff::Node<double>));
    }
}

void timings(int reps) {
    for (auto [layers, steps] : kWorkloads) {
        const Problem p = make_problem(layers, steps);
        Handwritten hw(p);
        HandwrittenWith<KernelMath> hw_kernels(p);  // tapegrad's math: what the tape alone costs
        double first_grad = 0, first_loss = 0;
        {
            Tapegrad fresh(p);
            first_grad = seconds([&] { fresh.loss_and_gradient(); });
        }
        {
            Tapegrad fresh(p);
            first_loss = seconds([&] { fresh.loss(); });
        }
        Tapegrad tg(p);
        Tapegrad replayed(p);
        replayed.replayed_loss_and_gradient();  // the recording it replays
        std::vector<double> hw_grad, tg_grad, tg_replay, hw_loss, tg_loss, hwk_grad, hwk_loss;
        for (int r = 0; r < reps; ++r) {
            hw_grad.push_back(seconds([&] { hw.loss_and_gradient(); }));
            hwk_grad.push_back(seconds([&] { hw_kernels.loss_and_gradient(); }));
            hwk_loss.push_back(seconds([&] { hw_kernels.loss(); }));
            tg_grad.push_back(seconds([&] { tg.loss_and_gradient(); }));
            tg_replay.push_back(seconds([&] { replayed.replayed_loss_and_gradient(); }));
            hw_loss.push_back(seconds([&] { hw.loss(); }));
            tg_loss.push_back(seconds([&] { tg.loss(); }));
        }
        const std::size_t grad_entries = [&] { tg.loss_and_gradient(); return tg.tape().size(); }();
        const std::size_t nograd_entries = [&] { tg.loss(); return tg.tape().size(); }();
        std::printf("{\"layers\": %zu, \"steps\": %zu, \"handwritten_grad_s\": %.6g, \"tapegrad_grad_s\": %.6g, \"tapegrad_replay_s\": %.6g, "
                    "\"handwritten_loss_s\": %.6g, \"tapegrad_loss_s\": %.6g, \"tapegrad_first_grad_s\": %.6g, "
                    "\"tapegrad_first_loss_s\": %.6g, \"grad_entries\": %zu, \"nograd_entries_kept\": %zu, "
                    "\"handwritten_kernel_math_grad_s\": %.6g, \"handwritten_kernel_math_loss_s\": %.6g}\n",
                    layers, steps, median(hw_grad), median(tg_grad), median(tg_replay), median(hw_loss), median(tg_loss), first_grad,
                    first_loss, grad_entries, nograd_entries, median(hwk_grad), median(hwk_loss));
        std::fflush(stdout);
    }
}

int only(const std::string& what, int reps) {
    const Problem p = make_problem(2, 1024);
    Handwritten hw(p);
    Tapegrad tg(p);
    for (int r = 0; r < reps; ++r) {
        if (what == "entry") per_entry_cost(1);
        else if (what == "grad") tg.loss_and_gradient();
        else if (what == "loss") tg.loss();
        else if (what == "replay") tg.replayed_loss_and_gradient();
        else if (what == "hw-grad") hw.loss_and_gradient();
        else if (what == "hw-loss") hw.loss();
        else return 2;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 0;  // 0: not given (11 timed repetitions, or 2 runs of --only)
    bool only_check = false;
    std::string only_what;
    for (int a = 1; a < argc; ++a) {
        if (!std::strcmp(argv[a], "--check")) only_check = true;
        else if (!std::strcmp(argv[a], "--reps") && a + 1 < argc) reps = std::max(1, std::atoi(argv[++a]));
        else if (!std::strcmp(argv[a], "--only") && a + 1 < argc) only_what = argv[++a];
        else {
            std::fprintf(stderr, "usage: lstm_bench [--reps N] [--check] [--only entry|grad|replay|loss|hw-grad|hw-loss]\n");
            return 2;
        }
    }
    if (!only_what.empty()) return only(only_what, reps ? reps : 2);
    if (only_check) return check();
    if (check() != 0) {
        std::fprintf(stderr, "lstm_bench: tapegrad and the hand-written reference disagree\n");
        return 1;
    }
    per_entry_cost(reps ? reps : 11);
    timings(reps ? reps : 11);
    return 0;
}
