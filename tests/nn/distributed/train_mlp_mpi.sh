#!/usr/bin/env bash
# train_mlp under mpirun, as a user runs it: N ranks print what one process prints (the
# same losses and accuracies, once), rank 0 alone writes files, and a run resumed under
# mpirun (with the same N or another) continues as the uninterrupted run.
#   usage: train_mlp_mpi.sh MPIEXEC TRAIN_MLP
set -uo pipefail
mpiexec=$1
train_mlp=$2
source "$(dirname "$0")/script_support.sh"
mpirun() { mpirun_bounded 120 "$@"; }
# Constant rate: a cosine schedule spans --epochs, which the split run changes. Double
# precision, so that the only difference (the order of sums) stays far below the 4 printed
# decimals; a batch of 13 divides by no N.
options=(--dataset iris --batch-size 13 --lr 0.01 --schedule constant --dtype double)
# mpirun gives ranks a pseudo-terminal, so the progress bar redraws with \r: split on it.
epoch_lines() { tr '\r' '\n' < "$1" | grep -E '^epoch [0-9]+/[0-9]+: ' | sed 's/, [0-9.]* s$//'; }

"$train_mlp" "${options[@]}" --epochs 6 --metrics "" > "$work/alone.txt" || fail "one process failed"
for n in 2 3; do
    mpirun -np "$n" "$train_mlp" "${options[@]}" --epochs 6 --save "$work/ckpt$n" --metrics "$work/metrics$n.csv" \
        > "$work/np$n.txt" 2> "$work/np$n.err" || { fail "mpirun -np $n failed:"; cat "$work/np$n.err"; }
    diff <(epoch_lines "$work/alone.txt") <(epoch_lines "$work/np$n.txt") > /dev/null ||
        { fail "-np $n prints other epochs than one process:"; diff <(epoch_lines "$work/alone.txt") <(epoch_lines "$work/np$n.txt"); }
    [[ $(grep -c '^test accuracy:' "$work/np$n.txt") -eq 1 ]] || fail "-np $n: the result is not printed exactly once"
    grep -q "data-parallel on $n processes" "$work/np$n.txt" || fail "-np $n does not say it is data-parallel"
    [[ -f "$work/metrics$n.csv" && -d "$work/ckpt$n" ]] || fail "-np $n: rank 0 wrote no metrics or checkpoint"
done
echo "== one process and mpirun -np 2, 3 print the same epochs:"; epoch_lines "$work/alone.txt"

# Stopped after 3 epochs, then resumed with the same N and with another.
mpirun -np 2 "$train_mlp" "${options[@]}" --epochs 3 --save "$work/half" --metrics "" > /dev/null || fail "the first half failed"
for n in 2 3; do
    cp -r "$work/half" "$work/half$n"
    mpirun -np "$n" "$train_mlp" --resume "$work/half$n" --epochs 6 --metrics "" > "$work/resumed$n.txt" ||
        fail "resuming with -np $n failed"
    diff <(epoch_lines "$work/alone.txt" | tail -3) <(epoch_lines "$work/resumed$n.txt") > /dev/null ||
        { fail "resumed with -np $n:"; diff <(epoch_lines "$work/alone.txt" | tail -3) <(epoch_lines "$work/resumed$n.txt"); }
done
"$train_mlp" --eval "$work/ckpt3" --dataset iris --dtype double > /dev/null || fail "one process cannot evaluate the -np 3 checkpoint"

finish "train_mlp under mpirun trains as one process does, prints once, and resumes"
