#!/usr/bin/env bash
# Data-parallel step time on this machine, for the Fashion-MNIST MLP and the CNN: N = 1 and 2
# ranks (shared memory), overlap on and off, two bucket sizes, each run --reps times; prints every run's line and the machine's
# load (timings mean little when the load average exceeds the core count).
#   bench/distributed/run.sh [--build DIR] [--reps N] [--steps S]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build="$root/build-bench"
reps=3
steps=300
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_BUILD_TESTS=OFF \
      -DTAPEGRAD_BUILD_EXAMPLES=OFF > /dev/null
cmake --build "$build" -j2 --target distributed_bench > /dev/null
bench="$build/bench/distributed_bench"
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$reps"); do
  for model in mlp cnn; do
    model_steps=$steps
    [ "$model" = cnn ] && model_steps=$(( (steps + 9) / 10 ))  # a CNN step takes ~15x an MLP step
    "$bench" --model "$model" --steps "$model_steps"
    for overlap in 1 0; do
      for kb in 1024 128; do
        "${mpirun[@]}" -np 2 "$bench" --model "$model" --steps "$model_steps" --overlap "$overlap" --bucket-kb "$kb"
      done
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
