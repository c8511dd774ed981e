#!/usr/bin/env bash
# Runs every fuzz target (or those named) on its seed corpus for a bounded time.
#   tests/fuzz/run.sh [--build DIR] [--runs N] [--seconds S] [target...]
# --runs N      executions per target (default 20000)
# --seconds S   cap per target in seconds (default 60), whichever comes first
# --build DIR   the build directory configured with -DTAPEGRAD_FUZZ=ON (default build-fuzz)
# New inputs found go to a scratch copy of the corpus, so the checked-in seeds stay small.
# Fails (exit 1) on the first crash, leak, sanitizer report or failed check; libFuzzer
# leaves the input that did it as ./crash-* (or leak-*, timeout-*, oom-*).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build-fuzz"
runs=20000
seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --build) build="$(cd "$2" && pwd)"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(idx_images idx_labels csv npy checkpoint ops)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1"
for t in "${targets[@]}"; do
    bin="$build/tests/fuzz/fuzz_$t"
    [[ -x "$bin" ]] || { echo "run.sh: $bin not built (configure with CXX=clang++ -DTAPEGRAD_FUZZ=ON)" >&2; exit 1; }
    mkdir -p "$scratch/$t"
    cp -r "$here/corpus/$t/." "$scratch/$t/" 2>/dev/null || true
    start=$(date +%s)
    if ! "$bin" -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 "$scratch/$t" > "$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log" >&2
        echo "run.sh: fuzz_$t FAILED" >&2
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$t.log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz_$t: $execs executions in $(( $(date +%s) - start )) s, no findings"
done
