// bench/harness.hpp: the one place that knows the workloads, their data, the thread
// counts and how a training-step implementation is registered with Google Benchmark.
//
// An implementation is a class template `Impl<T>` (T = float or double):
//     explicit Impl(const bench::Problem<T>& problem);   // allocate everything here
//     void step();                                       // one forward + backward + SGD update
//     double loss() const;                               // mean loss computed by the last step
// plus one line at namespace scope in its own .cpp file:
//     TAPEGRAD_BENCH_STEP(name, Impl)
// which registers `name/<workload>/<dtype>/t<threads>` for every workload, dtype and
// thread count below (TAPEGRAD_BENCH_STEP_F64 for double only). Adding an implementation
// is one file (see bench/README.md). The step is timed after 3 warm-up steps, in a loop
// that keeps training the same batch.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);

namespace bench {

// One benchmark workload: layer sizes (inputs first) and the number of examples m.
struct Workload {
    std::string name;
    std::vector<std::size_t> sizes;
    std::size_t m;
    bool run_float;  // float runs too (double always runs)
};

inline const std::vector<Workload>& workloads() {
    static const std::vector<Workload> all = {
        {"S", {5, 10, 10, 4}, 10, false},
        {"M", {5, 10, 10, 4}, 1000, false},
        {"L", {784, 256, 128, 10}, 128, true},
    };
    return all;
}

inline const std::vector<int>& thread_counts() {
    static const std::vector<int> all = {1, 2};
    return all;
}

// The data of one step in the notebook's layout, every matrix row-major:
//   X     sizes[0] x m           activations are features x examples
//   Y     sizes.back() x m       one-hot columns
//   W[l]  sizes[l+1] x sizes[l]  Z = W·A + b
//   b[l]  sizes[l+1]             a column, broadcast over examples
// Weights N(0,1)·sqrt(2/fan_in), biases N(0,1)·0.01, X uniform [0,1), labels uniform.
// Deterministic (seeded mt19937_64): every implementation starts from the same numbers.
template <class T>
struct Problem {
    std::vector<std::size_t> sizes;
    std::size_t m = 0;
    std::vector<T> X, Y;
    std::vector<std::vector<T>> W, b;
    T lr = T(0.01);

    std::size_t layers() const { return sizes.size() - 1; }
};

template <class T>
Problem<T> make_problem(const Workload& w, std::uint64_t seed = 1) {
    Problem<T> p;
    p.sizes = w.sizes;
    p.m = w.m;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const std::size_t n0 = w.sizes.front(), nL = w.sizes.back();
    p.X.resize(n0 * w.m);
    for (auto& x : p.X) x = T(uniform(rng));
    p.Y.assign(nL * w.m, T(0));
    std::uniform_int_distribution<std::size_t> label(0, nL - 1);
    for (std::size_t j = 0; j < w.m; ++j) p.Y[label(rng) * w.m + j] = T(1);
    for (std::size_t l = 0; l + 1 < w.sizes.size(); ++l) {
        const std::size_t n_in = w.sizes[l], n_out = w.sizes[l + 1];
        const double scale = std::sqrt(2.0 / double(n_in));
        std::vector<T> W(n_out * n_in), b(n_out);
        for (auto& v : W) v = T(normal(rng) * scale);
        for (auto& v : b) v = T(normal(rng) * 0.01);
        p.W.push_back(std::move(W));
        p.b.push_back(std::move(b));
    }
    return p;
}

template <class T> inline const char* dtype_name();
template <> inline const char* dtype_name<double>() { return "f64"; }
template <> inline const char* dtype_name<float>() { return "f32"; }

// Thread control. set_threads(n) calls openblas_set_num_threads(n) and every hook an
// implementation added (LibTorch adds torch::set_num_threads).
using ThreadHook = void (*)(int);
inline std::vector<ThreadHook>& thread_hooks() {
    static std::vector<ThreadHook> hooks;
    return hooks;
}
inline bool add_thread_hook(ThreadHook hook) {
    thread_hooks().push_back(hook);
    return true;
}
inline void set_threads(int n) {
    openblas_set_num_threads(n);
    for (ThreadHook hook : thread_hooks()) hook(n);
}

// Losses of the first few steps, per implementation, for `--check` (see bench_main.cpp).
struct Check {
    std::string name;  // impl/workload/dtype
    std::vector<double> losses;
};
using CheckFn = std::function<Check()>;
inline std::vector<CheckFn>& checks() {
    static std::vector<CheckFn> all;
    return all;
}

// Times impl.step() after 3 warm-up steps; `examples` per step gives the rate counter.
template <class Impl>
void time_steps(benchmark::State& state, Impl& impl, std::size_t examples) {
    for (int i = 0; i < 3; ++i) impl.step();  // warm-up: lazy allocations, thread pools
    for (auto _ : state) {
        impl.step();
        benchmark::ClobberMemory();
    }
    state.counters["blas_threads"] = openblas_get_num_threads();
    state.counters["examples"] = benchmark::Counter(double(examples), benchmark::Counter::kIsIterationInvariantRate);
}

template <class Impl, class T>
void run_step(benchmark::State& state, const Workload& w, int threads) {
    set_threads(threads);
    const Problem<T> problem = make_problem<T>(w);
    Impl impl(problem);
    time_steps(state, impl, w.m);
}

template <template <class> class Impl, class T>
void register_dtype(const std::string& impl) {
    for (const Workload& w : workloads()) {
        if (!std::is_same<T, double>::value && !w.run_float) continue;
        for (int t : thread_counts()) {
            const std::string name = impl + "/" + w.name + "/" + dtype_name<T>() + "/t" + std::to_string(t);
            benchmark::RegisterBenchmark(name.c_str(), [w, t](benchmark::State& state) {
                run_step<Impl<T>, T>(state, w, t);
            })
                ->UseRealTime()
                ->Unit(benchmark::kMicrosecond)
                // the fastest repetition: on a shared machine, the least disturbed one
                ->ComputeStatistics("min", [](const std::vector<double>& v) {
                    return *std::min_element(v.begin(), v.end());
                });
        }
        checks().push_back([w, impl]() {
            set_threads(1);
            const Problem<T> problem = make_problem<T>(w);
            Impl<T> step(problem);
            Check c{impl + "/" + w.name + "/" + dtype_name<T>(), {}};
            for (int i = 0; i < 5; ++i) {
                step.step();
                c.losses.push_back(step.loss());
            }
            return c;
        });
    }
}

template <template <class> class Impl, bool WithFloat = true>
bool register_impl(const std::string& impl) {
    register_dtype<Impl, double>(impl);
    if (WithFloat) register_dtype<Impl, float>(impl);
    return true;
}

}  // namespace bench

#define TAPEGRAD_BENCH_CAT2(a, b) a##b
#define TAPEGRAD_BENCH_CAT(a, b) TAPEGRAD_BENCH_CAT2(a, b)
// TAPEGRAD_BENCH_STEP(name, Impl): register class template Impl<T> under `name`.
#define TAPEGRAD_BENCH_STEP(name, Impl)                                            \
    static const bool TAPEGRAD_BENCH_CAT(tapegrad_bench_registered_, __LINE__) = \
        ::bench::register_impl<Impl>(#name)
// TAPEGRAD_BENCH_STEP_F64(name, Impl): the same for an implementation that has no float.
#define TAPEGRAD_BENCH_STEP_F64(name, Impl)                                        \
    static const bool TAPEGRAD_BENCH_CAT(tapegrad_bench_registered_, __LINE__) = \
        ::bench::register_impl<Impl, false>(#name)
