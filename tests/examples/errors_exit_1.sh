#!/usr/bin/env bash
# Every example program reports an error with exit 1 and the system's reason, never an abort
# (issue 10, item 13).
#   errors_exit_1.sh PATH/TO/notebook_mlp PATH/TO/train_mlp
source "$(dirname "$0")/lib.sh"
notebook_mlp=$1
train_mlp=$2
expect_failure "notebook_mlp --dot into a missing directory" "$notebook_mlp" --dot /nonexistent/x.dot
grep -q "/nonexistent/x.dot" "$dir/out" && grep -qi "No such file or directory" "$dir/out" || fail "no path or reason"
expect_failure "train_mlp --metrics into a missing directory" "$train_mlp" --dataset iris --epochs 1 --metrics /nonexistent/m.csv
grep -qi "No such file or directory" "$dir/out" || fail "no reason"
expect_failure "train_mlp --csv of a missing file" "$train_mlp" --csv /nonexistent/d.csv --epochs 1 --metrics ""
grep -qi "No such file or directory" "$dir/out" || fail "no reason"
echo "errors reported with exit 1 and the system's reason"
