// bench/module_tree.cpp: building, listing and destroying a model of n children, for n up
// to 100,000 (an LSTM of many layers, a Sequential of many steps). Each must grow linearly:
// Google Benchmark fits the complexity and prints it beside the times (BigO, RMS).
//   tapegrad_bench --benchmark_filter=ModuleTree
#include <benchmark/benchmark.h>

#include <deque>
#include <string>

#include "nn/linear.hpp"
#include "nn/module.hpp"

namespace {

struct Wide : nn::Module<float> {
    std::deque<nn::Linear<float>> children;  // built first, destroyed last
    explicit Wide(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) register_module("c" + std::to_string(i), children.emplace_back(1, 1, 0u));
    }
};

void BM_ModuleTree(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        Wide model(n);  // registration: a name check per child
        benchmark::DoNotOptimize(model.parameters().data());  // listing: a seen-check per parameter
    }  // destruction: each child leaves its parent
    state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_ModuleTree)->RangeMultiplier(4)->Range(1 << 10, 1 << 16)->Complexity()->Unit(benchmark::kMillisecond);

}  // namespace
