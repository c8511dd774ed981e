#!/usr/bin/env bash
# train_cnn under mpirun: 2 ranks train data-parallel (each a share of every batch), print
# each line once, and rank 0 alone writes the checkpoint and the metrics, which a single
# process then evaluates to the accuracy the run printed last.
#   usage: train_cnn_mpi.sh MPIEXEC TRAIN_CNN
set -uo pipefail
mpiexec=$1
train_cnn=$2
source "$(dirname "$0")/script_support.sh"
options=(--limit 512 --test-limit 256 --epochs 2 --batch-size 32 --channels 4,8 --hidden 16)
mpirun_bounded 300 -np 2 "$train_cnn" "${options[@]}" --save "$work/ckpt" --metrics "$work/metrics.csv" \
    > "$work/np2.txt" 2> "$work/np2.err" || { fail "mpirun -np 2 train_cnn failed:"; cat "$work/np2.err"; }
tr '\r' '\n' < "$work/np2.txt" | grep -E '^(training|epoch [0-9]+/2: loss|test accuracy)'
grep -q "data-parallel on 2 processes" "$work/np2.txt" || fail "it does not say it is data-parallel"
[[ $(grep -c '^test accuracy:' "$work/np2.txt") -eq 1 ]] || fail "the result is not printed exactly once"
[[ -f "$work/metrics.csv" && -f "$work/ckpt/manifest.json" ]] || fail "rank 0 wrote no metrics or checkpoint"
evaluated=$("$train_cnn" --eval "$work/ckpt" --test-limit 256 | grep '^test accuracy:')
[[ "$evaluated" == "$(grep '^test accuracy:' "$work/np2.txt")" ]] ||
    fail "the checkpoint evaluates to '$evaluated', not to what the run printed"
finish "train_cnn under mpirun trains data-parallel, prints once, and its checkpoint evaluates as printed"
