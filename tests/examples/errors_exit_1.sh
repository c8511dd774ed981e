#!/usr/bin/env bash
# Every example program reports an error with exit 1 and the system's reason, never an abort
# (issue 10, item 13).
#   errors_exit_1.sh PATH/TO/notebook_mlp PATH/TO/train_mlp
source "$(dirname "$0")/lib.sh"
notebook_mlp=$1
train_mlp=$2
expect_failure "notebook_mlp --dot into a missing directory" "$notebook_mlp" --dot /nonexistent/x.dot
grep -q "/nonexistent/x.dot" "$dir/out" && grep -qi "No such file or directory" "$dir/out" || fail "no path or reason"
# A diverging run stops at the step that went non-finite (it printed "loss nan" with exit 0).
expect_failure "notebook_mlp --lr 1e300" "$notebook_mlp" --lr 1e300 --steps 3
grep -q "epoch 2, batch 1.*not finite" "$dir/out" || fail "the message does not name the step and what went non-finite"
grep -q "loss nan" "$dir/out" && fail "a NaN loss was printed"
expect_failure "train_mlp --metrics into a missing directory" "$train_mlp" --dataset iris --epochs 1 --metrics /nonexistent/m.csv
grep -qi "No such file or directory" "$dir/out" || fail "no reason"
expect_failure "train_mlp --csv of a missing file" "$train_mlp" --csv /nonexistent/d.csv --epochs 1 --metrics ""
grep -qi "No such file or directory" "$dir/out" || fail "no reason"
# A FIFO (or a device: /dev/null, were the program run as root) as --metrics or --plot: refused
# before training; the run used to replace it with a regular file.
mkfifo "$dir/fifo"
for outputs in "--metrics" "--metrics '' --plot"; do
  option=${outputs##* }
  eval "set -- $outputs"  # '' stays an empty argument
  expect_failure "train_mlp $option FIFO" "$train_mlp" --dataset iris --epochs 1 "$@" "$dir/fifo"
  grep -q -- "$option $dir/fifo: is not a regular file" "$dir/out" || fail "no clear refusal of $option FIFO"
  [ -p "$dir/fifo" ] || fail "$option replaced the FIFO"
done
# --dot writes in place: a pipe with a reader takes the graph.
cat "$dir/fifo" > "$dir/graph.dot" &
"$notebook_mlp" --dot "$dir/fifo" > /dev/null || fail "notebook_mlp --dot into a pipe failed"
wait
grep -q "^digraph" "$dir/graph.dot" || fail "the pipe got no graph"
# Two outputs at one path: refused before training (they trained an epoch, or the whole run,
# first, then failed, or the plot silently replaced the metrics).
cd "$dir"  # (the refusals write nothing; were one to slip through, it would write here)
for pair in "--save same --metrics same" "--metrics same.svg --plot same.svg" "--save same --metrics ./same.csv --plot same"; do
  # shellcheck disable=SC2086
  expect_failure "train_mlp $pair" "$train_mlp" --dataset iris --epochs 1 $pair
  grep -q "are the same path" "$dir/out" || fail "no clear refusal of $pair"
  grep -q "^epoch" "$dir/out" && fail "$pair trained before it was refused"
done
echo "errors reported with exit 1 and the system's reason"
