#!/usr/bin/env bash
# bench/fashion_compare.sh: seconds per training epoch on Fashion-MNIST, tapegrad's
# train_mlp against PyTorch (bench/pytorch_fashion.py), same network (784-256-128-10 ReLU),
# float32, batch 128, Adam lr 1e-3, at 1 and 2 threads, run alternately in one session.
#
#   bench/fashion_compare.sh [--epochs N] [--rounds R] [--build DIR]
#
# Prints one line per run and a table of the median epoch time per implementation and
# thread count (training only, data in memory, evaluation excluded on both sides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
epochs=3
rounds=2
build=$root/build
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fashion_compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
train_mlp=$build/examples/train_mlp
[ -x "$train_mlp" ] || { echo "build $train_mlp first (cmake --build $build --target train_mlp)" >&2; exit 1; }
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  for threads in 1 2; do
    "$train_mlp" --epochs "$epochs" --threads "$threads" --schedule constant --metrics "" \
      | sed -n "s/^epoch [0-9]*\/[0-9]*: .*, \([0-9.]*\) s$/\1/p" >> "$out/tapegrad_t$threads"
    /usr/bin/python3 "$root/bench/pytorch_fashion.py" --epochs "$epochs" --threads "$threads" \
      | sed -n "s/^threads=[0-9]* epoch [0-9]*: \([0-9.]*\) s,.*/\1/p" >> "$out/pytorch_t$threads"
    echo "round $round, $threads thread(s): tapegrad $(tail -n "$epochs" "$out/tapegrad_t$threads" | xargs)" \
         "| pytorch $(tail -n "$epochs" "$out/pytorch_t$threads" | xargs)" >&2
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "| threads | tapegrad s/epoch | PyTorch s/epoch | PyTorch / tapegrad |"
echo "|---|---|---|---|"
for threads in 1 2; do
  t=$(median "$out/tapegrad_t$threads"); p=$(median "$out/pytorch_t$threads")
  echo "| $threads | $t | $p | $(awk -v p="$p" -v t="$t" 'BEGIN {printf "%.2f", p / t}') |"
done
rm -rf "$out"
