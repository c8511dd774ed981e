#!/usr/bin/env bash
# bench/epoch_floor.sh: one Fashion-MNIST training epoch of the default train_mlp network
# (784-256-128-10 ReLU, float, batch 128, Adam) at 1 thread, side by side with the GEMM floor
# of the same number of steps and with PyTorch, run alternately in one session.
#
#   bench/epoch_floor.sh [--epochs N] [--rounds R] [--build DIR] [--bench-build DIR] [--no-pytorch] [--flush-denormals]
#
# --flush-denormals: train_mlp runs with it (subnormals flushed to zero; bench/README.md).
# tapegrad: examples/train_mlp from DIR (default build/, the default flags users get), its
# training seconds per epoch. floor: tapegrad_bench's floor/L/f32/t1 (the step's six GEMMs
# and nothing else, m = 128) from the bench build (default build-bench/, which bench/run.sh
# makes), times 60000/128 = 468.75 steps. Prints medians and the ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
epochs=3
rounds=3
build=$root/build
bench_build=$root/build-bench
pytorch=1
flush=()
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --bench-build) bench_build=$2; shift 2 ;;
    --no-pytorch) pytorch=0; shift ;;
    --flush-denormals) flush=(--flush-denormals); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "epoch_floor.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
train_mlp=$build/examples/train_mlp
bench=$bench_build/bench/tapegrad_bench
[ -x "$train_mlp" ] || { echo "build $train_mlp first (cmake --build $build --target train_mlp)" >&2; exit 1; }
[ -x "$bench" ] || { echo "build $bench first (bench/run.sh, or cmake --build $bench_build --target tapegrad_bench)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
steps=468.75
for round in $(seq "$rounds"); do
  "$train_mlp" --epochs "$epochs" --threads 1 --schedule constant --metrics "" ${flush[@]+"${flush[@]}"} \
    | sed -n "s/^epoch [0-9]*\/[0-9]*: .*, \([0-9.]*\) s$/\1/p" >> "$out/tapegrad"
  "$bench" --benchmark_filter='^floor/L/f32/t1/' --benchmark_repetitions=5 --benchmark_min_time=0.2 \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null \
    | /usr/bin/python3 -c "import json,sys; r=[b for b in json.load(sys.stdin)['benchmarks'] if b.get('aggregate_name')=='median'][0]; print(r['real_time']*{'us':1e-6,'ms':1e-3,'ns':1e-9}[r['time_unit']]*$steps)" \
    >> "$out/floor"
  if [ "$pytorch" = 1 ]; then
    /usr/bin/python3 "$root/bench/pytorch_fashion.py" --epochs "$epochs" --threads 1 \
      | sed -n "s/^threads=[0-9]* epoch [0-9]*: \([0-9.]*\) s,.*/\1/p" >> "$out/pytorch"
  fi
  echo "round $round: tapegrad $(tail -n "$epochs" "$out/tapegrad" | xargs) | floor $(tail -n 1 "$out/floor")" \
       "$([ "$pytorch" = 1 ] && echo "| pytorch $(tail -n "$epochs" "$out/pytorch" | xargs)")" >&2
done
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
t=$(median "$out/tapegrad"); f=$(median "$out/floor")
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| 1 thread | s/epoch | / floor |"
echo "|---|---|---|"
printf "| GEMM floor (468.75 steps) | %.3f | 1.00 |\n" "$f"
printf "| tapegrad train_mlp | %.3f | %.2f |\n" "$t" "$(awk -v t="$t" -v f="$f" 'BEGIN {print t / f}')"
if [ "$pytorch" = 1 ]; then
  p=$(median "$out/pytorch")
  printf "| PyTorch | %.3f | %.2f |\n" "$p" "$(awk -v p="$p" -v f="$f" 'BEGIN {print p / f}')"
fi
