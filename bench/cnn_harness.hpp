// bench/cnn_harness.hpp: the convolution workload, "CNN": one training step of a small CNN
// on 28x28 single-channel images, batch 128, float32:
//     conv 3x3 -> 32 (padding 1), relu, max pool 2,   28x28 -> 14x14
//     conv 3x3 -> 64 (padding 1), relu, max pool 2,   14x14 -> 7x7
//     linear 64*7*7 = 3136 -> 10, mean softmax cross-entropy, SGD
// An implementation is a class template Impl<T> as in harness.hpp, constructed from a
// CnnProblem<T>, registered with TAPEGRAD_BENCH_CNN_STEP(name, Impl) as name/CNN/f32/t<threads>,
// so run.sh and format_table.py treat it like the other workloads.
#pragma once

#include "harness.hpp"

namespace bench {

// The data in tapegrad's layout, every array row-major:
//   X   784 x m        one image per column (C x H x W order), uniform [0, 1)
//   labels  m          class of each example, uniform over 10
//   W1  32 x 9         conv1, filter o is row o in (c, ki, kj) order = torch weight.reshape(32, -1)
//   W2  64 x 288       conv2, likewise ((c, ki, kj) with c < 32)
//   W3  10 x 3136      linear; its input is the pooled 64 x 7 x 7 image in C x H x W order,
//                      which is also torch's flatten() of an (m, 64, 7, 7) tensor
//   b1, b2, b3         one bias per output channel / unit
// Weights N(0,1)·sqrt(2/fan_in), biases N(0,1)·0.01. Deterministic (seeded mt19937_64).
template <class T>
struct CnnProblem {
    static constexpr std::size_t image = 28, channels1 = 32, channels2 = 64, classes = 10, kernel = 3;
    std::size_t m = 128;
    std::vector<T> X, W1, b1, W2, b2, W3, b3;
    std::vector<std::size_t> labels;
    T lr = T(0.01);
    static constexpr std::size_t features3 = channels2 * (image / 4) * (image / 4);  // 3136
};

template <class T>
CnnProblem<T> make_cnn_problem(std::uint64_t seed = 1) {
    using P = CnnProblem<T>;
    CnnProblem<T> p;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    p.X.resize(P::image * P::image * p.m);
    for (T& x : p.X) x = T(uniform(rng));
    std::uniform_int_distribution<std::size_t> label(0, P::classes - 1);
    for (std::size_t j = 0; j < p.m; ++j) p.labels.push_back(label(rng));
    auto init = [&](std::vector<T>& W, std::vector<T>& b, std::size_t n_out, std::size_t fan_in) {
        W.resize(n_out * fan_in);
        for (T& v : W) v = T(normal(rng) * std::sqrt(2.0 / double(fan_in)));
        b.resize(n_out);
        for (T& v : b) v = T(normal(rng) * 0.01);
    };
    init(p.W1, p.b1, P::channels1, P::kernel * P::kernel);
    init(p.W2, p.b2, P::channels2, P::channels1 * P::kernel * P::kernel);
    init(p.W3, p.b3, P::classes, P::features3);
    return p;
}

template <class Impl>
void run_cnn_step(benchmark::State& state, int threads) {
    set_threads(threads);
    const auto problem = make_cnn_problem<float>();
    Impl impl(problem);
    time_steps(state, impl, problem.m);
}

template <template <class> class Impl>
bool register_cnn_impl(const std::string& impl) {
    for (int t : thread_counts()) {
        const std::string name = impl + "/CNN/f32/t" + std::to_string(t);
        benchmark::RegisterBenchmark(name.c_str(), [t](benchmark::State& state) { run_cnn_step<Impl<float>>(state, t); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
    }
    checks().push_back([impl]() {
        set_threads(1);
        Impl<float> step(make_cnn_problem<float>());
        Check c{impl + "/CNN/f32", {}};
        for (int i = 0; i < 5; ++i) {
            step.step();
            c.losses.push_back(step.loss());
        }
        return c;
    });
    return true;
}

}  // namespace bench

#define TAPEGRAD_BENCH_CNN_STEP(name, Impl)                                            \
    static const bool TAPEGRAD_BENCH_CAT(tapegrad_bench_cnn_registered_, __LINE__) = \
        ::bench::register_cnn_impl<Impl>(#name)
