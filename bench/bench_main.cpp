// bench/bench_main.cpp: main() of every benchmark executable.
//   <exe> [google benchmark flags]   run the registered benchmarks
//   <exe> --check                    print the first 5 losses of every implementation
//                                    (they must agree across implementations) and the
//                                    accuracy of the softmax's exp
#include <cblas.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "handwritten_step.hpp"

namespace {

template <class T>
double exp_max_rel_error() {
    double worst = 0.0;
    const double lo = std::is_same<T, double>::value ? -700.0 : -80.0;
    for (int k = 0; k <= 2000000; ++k) {
        const T x = T(lo * k / 2000000.0);
        const double want = std::exp(double(x));
        const double got = double(bench::exp_nonpositive(x));
        worst = std::max(worst, std::abs(got - want) / want);
    }
    return worst / std::numeric_limits<T>::epsilon();
}

int run_checks() {
    std::printf("exp_nonpositive max relative error: double %.2f eps, float %.2f eps\n",
                exp_max_rel_error<double>(), exp_max_rel_error<float>());
    for (const auto& check : bench::checks()) {
        const bench::Check c = check();
        std::printf("%-32s", c.name.c_str());
        for (double v : c.losses) std::printf(" %.15f", v);
        std::printf("\n");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--check") == 0) return run_checks();
    const char* env = std::getenv("OPENBLAS_NUM_THREADS");
    benchmark::AddCustomContext("openblas_config", openblas_get_config());
    benchmark::AddCustomContext("OPENBLAS_NUM_THREADS", env ? env : "(unset)");
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
