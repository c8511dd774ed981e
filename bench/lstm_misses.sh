#!/usr/bin/env bash
# bench/lstm_misses.sh: instructions and last-level cache misses per evaluation of the
# recurrent workload (2 layers x 1024 steps), tapegrad against the hand-written code, counted
# by cachegrind: deterministic, where timings on a shared machine vary run to run.
#
#   bench/lstm_misses.sh [--ll BYTES] [--build DIR]
#
# --ll: the simulated last level (default 2621440, this machine's L2 of 2.5 MB per core: the
# level a recurrent tape overflows and the hand-written code does not). "Per evaluation" is
# (count over 4 runs - count over 2 runs) / 2: the steady state, without the first
# recording. Builds lstm_bench portably (no -march=native: valgrind lacks AVX-512) in DIR
# (default build-cg). Needs valgrind (Debian: apt install valgrind). About a minute.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ll=2621440
build=$root/build-cg
while [ $# -gt 0 ]; do
  case "$1" in
    --ll) ll=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "lstm_misses.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "lstm_misses.sh: needs valgrind (apt install valgrind)" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_NATIVE=OFF \
  -DTAPEGRAD_BENCH_NATIVE=OFF -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target lstm_bench >/dev/null
bin=$build/bench/lstm_bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# cachegrind needs a power-of-two number of sets: 20 ways for 2.5 MB, 16 for 2 MB (AMD's L2).
ways=20
sets=$((ll / 64 / ways))
if [ $((ll % (64 * ways))) -ne 0 ] || [ $((sets & (sets - 1))) -ne 0 ]; then ways=16; fi
# "I refs" and "LLd misses" (reads + writes) of one cachegrind run, as two numbers.
count() {
  local result
  result=$(valgrind --tool=cachegrind --cache-sim=yes --LL="$ll,$ways,64" --cachegrind-out-file="$out/cg" \
    "$bin" --only "$1" --reps "$2" 2>&1 >/dev/null |
    awk '/I *refs:/ {gsub(",", "", $4); i = $4} /LLd misses:/ {gsub(",", "", $4); m = $4} END {print i, m}')
  # valgrind refuses a cache geometry it cannot simulate: say so instead of printing zeros.
  [ -n "${result// /}" ] || { echo "lstm_misses.sh: cachegrind gave no counts (--LL $ll,$ways,64)" >&2; exit 1; }
  echo "$result"
}
echo "$(lscpu | grep 'Model name' | sed 's/  */ /g'); simulated last level $ll bytes"
echo "| what | instructions per evaluation | last-level misses per evaluation |"
echo "|---|---|---|"
for what in hw-grad grad replay hw-loss loss; do
  read -r i2 m2 < <(count "$what" 2)
  read -r i4 m4 < <(count "$what" 4)
  printf "| %s | %.1fM | %.0fk |\n" "$what" "$(awk -v a="$i4" -v b="$i2" 'BEGIN {print (a - b) / 2e6}')" \
    "$(awk -v a="$m4" -v b="$m2" 'BEGIN {print (a - b) / 2e3}')"
done
