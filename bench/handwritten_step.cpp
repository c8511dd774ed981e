// bench/handwritten_step.cpp: registers the hand-written reference, the matmul floor and
// the variants of the hand-written step that bench/README.md compares.
#include "handwritten_step.hpp"

namespace {
template <class T> using HwPrefill = bench::HandwrittenStepT<T, bench::kBiasPrefill | bench::kFuseMaskDb>;
template <class T> using HwUnfused = bench::HandwrittenStepT<T, 0u>;
template <class T> using HwFusedSgd = bench::HandwrittenStepT<T, bench::kFuseMaskDb | bench::kFusedSgd>;
template <class T> using HwStdExp = bench::HandwrittenStepT<T, bench::kFuseMaskDb | bench::kStdExp>;
}  // namespace

TAPEGRAD_BENCH_STEP(handwritten, bench::HandwrittenStep);
TAPEGRAD_BENCH_STEP(floor, bench::MatmulFloor);
// Variants (run.sh runs them only with --variants):
TAPEGRAD_BENCH_STEP(variant_prefill, HwPrefill);
TAPEGRAD_BENCH_STEP(variant_unfused, HwUnfused);
TAPEGRAD_BENCH_STEP(variant_fusedsgd, HwFusedSgd);
TAPEGRAD_BENCH_STEP(variant_stdexp, HwStdExp);
