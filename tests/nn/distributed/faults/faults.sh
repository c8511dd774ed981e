#!/usr/bin/env bash
# A rank that throws, dies or hangs ends the whole job with a clear error in bounded time,
# and the last checkpoint stays loadable.   usage: faults.sh MPIEXEC FAULT_RUN
set -uo pipefail
mpiexec=$1
program=$2
source "$(dirname "$0")/../script_support.sh"

# Runs 2 ranks with the given fault; the job must fail, and within 60 s (timeout's 124 = hung).
run_faulty() {
    local label=$1; shift
    local start=$SECONDS
    mpirun_bounded 60 -np 2 "$program" --save "$work/ckpt" "$@" \
        > "$work/out" 2> "$work/err"
    local rc=$?
    echo "== $label: exit $rc after $((SECONDS - start)) s; stderr:"
    sed 's/^/   /' "$work/err" | head -20
    if [[ $rc -eq 0 ]]; then fail "$label: the job succeeded"; fi
    if [[ $rc -eq 124 ]]; then fail "$label: the job hung (killed by timeout after 60 s)"; fi
}

expect_in_stderr() {
    grep -Eq "$1" "$work/err" || fail "stderr lacks /$1/"
}

expect_checkpoint_epoch() {
    local out
    out=$("$program" --check "$work/ckpt" 2>&1) || fail "the last checkpoint does not load: $out"
    echo "   $out"
    [[ $out == *"epoch $1,"* ]] || fail "expected the checkpoint of epoch $1, got: $out"
}

run_faulty "rank 1 throws in epoch 3" --fault throw --rank 1 --epoch 2 --step 3
expect_in_stderr "rank 1 of 2: uncaught exception: injected fault; aborting every rank"
expect_checkpoint_epoch 2

run_faulty "rank 1 is killed (SIGKILL) in the middle of epoch 3" --fault kill --rank 1 --epoch 2 --step 5
expect_in_stderr "signal 9|Killed"
expect_checkpoint_epoch 2

run_faulty "rank 0, the one that checkpoints, is killed in epoch 2" --fault kill --rank 0 --epoch 1 --step 4
expect_in_stderr "signal 9|Killed"
expect_checkpoint_epoch 1

TAPEGRAD_MPI_TIMEOUT=3 run_faulty "rank 1 hangs in epoch 2 (timeout 3 s)" --fault hang --rank 1 --epoch 1 --step 2
expect_in_stderr "rank 0 of 2: waited [0-9]+ s for a gradient allreduce"
expect_checkpoint_epoch 1

finish "every fault ended the job with a clear error; the last checkpoint loads"
