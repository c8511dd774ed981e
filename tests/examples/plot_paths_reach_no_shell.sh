#!/usr/bin/env bash
# --metrics and --plot paths reach neither a shell nor gnuplot's parser (issue 10, item 9):
# file names with quotes, a newline, backslashes and $(...) make a plot and run nothing.
#   plot_paths_reach_no_shell.sh PATH/TO/train_mlp
source "$(dirname "$0")/lib.sh"
train_mlp=$1
command -v gnuplot > /dev/null || { echo "gnuplot is not installed: skipped"; exit 0; }
cd "$dir"
weird=$'a\'b"c\\d$(touch PWNED1)`touch PWNED2`;e\nf\'; system("touch PWNED3"); \''
mkdir "$dir/out dir"
"$train_mlp" --dataset iris --epochs 2 --metrics "$dir/out dir/$weird.csv" --plot "$dir/out dir/$weird.png" > "$dir/out" 2>&1 \
  || fail "train_mlp failed"
ls "$dir" | grep -q PWNED && fail "a file name ran a command: $(ls "$dir")"
[ -f "$dir/out dir/$weird.csv" ] || fail "no metrics file under the weird name"
[ -f "$dir/out dir/$weird.png" ] || fail "no plot under the weird name"
head -c 4 "$dir/out dir/$weird.png" | od -An -c | grep -q "P   N   G" || fail "the plot is not a PNG"
[ "$(find "$dir/out dir" -mindepth 1 -printf x | wc -c)" -eq 2 ] || fail "left over: $(ls -A "$dir/out dir")"  # the csv and the png
echo "plot and metrics written under a hostile name, nothing ran"

# Without gnuplot on PATH, the message says what failed; the run still succeeds.
PATH=/nonexistent "$train_mlp" --dataset iris --epochs 1 --metrics "$dir/m.csv" --plot "$dir/p.png" > "$dir/out" 2>&1 \
  || fail "a missing gnuplot failed the run"
grep -q "gnuplot" "$dir/out" && grep -qi "not found\|no such file" "$dir/out" || fail "the message does not say gnuplot was not found"
echo "missing gnuplot reported: $(grep gnuplot "$dir/out")"
