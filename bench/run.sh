#!/usr/bin/env bash
# bench/run.sh: build the benchmarks, run every implementation on every workload at 1 and
# 2 threads, and print one markdown table of medians and ratios (see bench/README.md).
#
#   bench/run.sh [--reps N] [--min-time S] [--variants] [--no-numpy] [--no-build] [--out DIR] [--cnn-only]
#
# --cnn-only: only the convolution workload (CNN: floor, tapegrad, LibTorch, PyTorch).
#
# Builds the top-level project with -DTAPEGRAD_BUILD_BENCH=ON into build-bench (only the
# bench targets, and the engine's libraries if bench/tapegrad_step.cpp exists). If that
# configure or build fails (the engine not compiling yet), falls back to the standalone
# bench build in build-bench-standalone, without the engine, and says so.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
reps=15
min_time=0.1
variants=0
numpy=1
build=1
out=""
cnn_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    --variants) variants=1; shift ;;
    --no-numpy) numpy=0; shift ;;
    --no-build) build=0; shift ;;
    --out) out=$2; shift 2 ;;
    --cnn-only) cnn_only=1; numpy=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

py=/usr/bin/python3
top=$root/build-bench
standalone=$root/build-bench-standalone
jobs=2

targets_of() {  # the bench targets a configured build dir knows
  local t
  for t in tapegrad_bench libtorch_bench; do
    # (no grep -q: with pipefail, cmake's SIGPIPE would fail the pipeline)
    if cmake --build "$1" --target help 2>/dev/null | grep -w "$t" >/dev/null; then echo "$t"; fi
  done
}

bindir=""
if [ "$build" = 1 ]; then
  echo "== build (top-level, -DTAPEGRAD_BUILD_BENCH=ON, $top)" >&2
  mkdir -p "$top" "$standalone"
  if cmake -S "$root" -B "$top" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_NATIVE=ON \
       -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF >"$top/configure.log" 2>&1 \
     && cmake --build "$top" -j"$jobs" --target $(targets_of "$top") >"$top/build.log" 2>&1; then
    bindir=$top/bench
  else
    echo "!! top-level bench build failed (see $top/configure.log, $top/build.log):" >&2
    echo "!! falling back to the standalone bench build, WITHOUT tapegrad's engine" >&2
    cmake -S "$root/bench" -B "$standalone" -DCMAKE_BUILD_TYPE=Release >"$standalone/configure.log" 2>&1
    cmake --build "$standalone" -j"$jobs" >"$standalone/build.log" 2>&1
    bindir=$standalone
  fi
else
  if [ -x "$top/bench/tapegrad_bench" ]; then bindir=$top/bench; else bindir=$standalone; fi
fi

if [ -z "$out" ]; then
  if [ "$bindir" = "$standalone" ]; then out=$standalone/results; else out=$top/results; fi
fi
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.jsonl

filter='^(handwritten|floor|tapegrad)/'
[ "$variants" = 1 ] && filter='^(handwritten|floor|tapegrad|variant_[a-z]+)/'
torch_filter='.'
if [ "$cnn_only" = 1 ]; then filter='^(floor|tapegrad)/CNN/'; torch_filter='/CNN/'; fi
gbench_args=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true
             --benchmark_enable_random_interleaving=true --benchmark_min_time="$min_time"
             --benchmark_out_format=json)

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-(unset)} OMP_NUM_THREADS=${OMP_NUM_THREADS:-(unset)}"
} | tee "$out/machine.txt" >&2

echo "== correctness: first 5 losses of each implementation (must agree)" >&2
"$bindir/tapegrad_bench" --check >"$out/check.txt"
[ -x "$bindir/libtorch_bench" ] && "$bindir/libtorch_bench" --check | grep '^libtorch' >>"$out/check.txt"
grep -v '^variant_' "$out/check.txt" >&2

echo "== tapegrad_bench (handwritten, floor, engine if built)" >&2
"$bindir/tapegrad_bench" --benchmark_filter="$filter" "${gbench_args[@]}" \
  --benchmark_out="$out/tapegrad_bench.json" >"$out/tapegrad_bench.txt" 2>&1
if [ -x "$bindir/libtorch_bench" ]; then
  echo "== libtorch_bench" >&2
  "$bindir/libtorch_bench" --benchmark_filter="$torch_filter" "${gbench_args[@]}" \
    --benchmark_out="$out/libtorch_bench.json" \
    >"$out/libtorch_bench.txt" 2>&1
  echo "== libtorch_bench with OMP_WAIT_POLICY=passive" >&2
  OMP_WAIT_POLICY=passive "$bindir/libtorch_bench" --benchmark_filter="$torch_filter" "${gbench_args[@]}" \
    --benchmark_out="$out/libtorch_passive_bench.json" >"$out/libtorch_passive_bench.txt" 2>&1
else
  echo "== libtorch_bench not built (no LibTorch found): column omitted" >&2
fi
if [ "$numpy" = 1 ]; then
  echo "== numpy_step.py" >&2
  "$py" "$root/bench/numpy_step.py" --repeats "$reps" >"$out/numpy.jsonl"
fi
if "$py" -c 'import torch' 2>/dev/null; then
  echo "== cnn_pytorch_step.py (PyTorch, CNN workload)" >&2
  "$py" "$root/bench/cnn_pytorch_step.py" --repeats "$reps" >"$out/pytorch_cnn.jsonl"
else
  echo "== cnn_pytorch_step.py skipped (python3 cannot import torch; scripts/install-deps.sh --bench): column omitted" >&2
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2

fmt_args=()
[ "$variants" = 1 ] && fmt_args+=(--variants)
files=("$out"/*.json)
[ -f "$out/numpy.jsonl" ] && files+=("$out/numpy.jsonl")
[ -f "$out/pytorch_cnn.jsonl" ] && files+=("$out/pytorch_cnn.jsonl")
{
  echo "Median of $reps repetitions (wall time per step):"
  echo
  "$py" "$root/bench/format_table.py" "${fmt_args[@]}" "${files[@]}"
  echo
  echo "Fastest repetition (the least disturbed on a shared machine):"
  echo
  "$py" "$root/bench/format_table.py" --min "${fmt_args[@]}" "${files[@]}"
} | tee "$out/table.md"
echo "(results in $out)" >&2
