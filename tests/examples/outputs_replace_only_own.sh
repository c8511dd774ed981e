#!/usr/bin/env bash
# An output path replaces only a file an example wrote there before: a mistyped --metrics,
# --plot or --dot never costs a user a file (before, `--metrics notes.txt` replaced the notes
# with a CSV, `--plot photo.png` the photo with a plot, `--dot notes.txt` the notes with a graph).
#   outputs_replace_only_own.sh PATH/TO/train_mlp PATH/TO/notebook_mlp
source "$(dirname "$0")/lib.sh"
train_mlp=$1
notebook_mlp=$2
train() { "$train_mlp" --dataset iris --epochs 1 --batch-size 16 "$@"; }
refused() {  # refused WHAT FILE COMMAND...: exit 1 before training, FILE unchanged, the reason given
  local what=$1 file=$2; shift 2
  local before; before=$(digest "$file")
  expect_failure "$what" "$@"
  grep -Eq "exists and is not|is read-only" "$dir/out" || fail "$what: the message does not say why"
  ! grep -q "^epoch 1/" "$dir/out" || fail "$what: trained before refusing"
  [ "$before" = "$(digest "$file")" ] || fail "$what: $file changed"
}

echo "my notes" > "$dir/notes.txt"
refused "--metrics onto a user's notes" notes.txt train --metrics "$dir/notes.txt"
refused "--plot onto a user's notes" notes.txt train --metrics "" --plot "$dir/notes.txt"
refused "--dot onto a user's notes" notes.txt "$notebook_mlp" --dot "$dir/notes.txt"

# A metrics CSV of a user's own, with another header.
printf 'epoch,loss\n1,0.5\n' > "$dir/mine.csv"
refused "--metrics onto another CSV" mine.csv train --metrics "$dir/mine.csv"

# A user's CSV that begins with the metrics header but holds more than its rows; a
# read-only metrics file; a hand-made graph that begins as to_dot's do.
{ printf 'epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n1,2,3,4,5,6\n# my summary\n'; } > "$dir/runs.csv"
refused "--metrics onto a CSV with the metrics header and notes" runs.csv train --metrics "$dir/runs.csv"
printf 'digraph tape {\n  a -> b;\n}\n' > "$dir/mine.dot"
refused "--dot onto a hand-made graph" mine.dot "$notebook_mlp" --dot "$dir/mine.dot"

train --metrics "$dir/readonly.csv" > /dev/null && chmod 444 "$dir/readonly.csv"
refused "--metrics onto its own file made read-only" readonly.csv train --metrics "$dir/readonly.csv"

# Paths that passed the check and failed only after training: a symbolic link loop, a name
# too long for the temporary file beside it; and /dev/stdout, which (redirected to a file)
# replaced the log; a dangling link, which the write replaced by a file.
not_started() {  # not_started WHAT COMMAND...: exit 1 before the first epoch
  local what=$1; shift
  expect_failure "$what" "$@"
  ! grep -q "^epoch 1/" "$dir/out" || fail "$what: trained before refusing"
}
ln -s loop1 "$dir/loop2" && ln -s loop2 "$dir/loop1"
not_started "--metrics through a symbolic link loop" train --metrics "$dir/loop1"
not_started "--metrics with a 250-character name" train --metrics "$dir/$(printf 'm%.0s' $(seq 250))"
not_started "--metrics /dev/stdout" train --metrics /dev/stdout
ln -s "$dir/nowhere.csv" "$dir/dangling.csv"
not_started "--metrics through a dangling link" train --metrics "$dir/dangling.csv"
[ -L "$dir/dangling.csv" ] || fail "the dangling link was replaced"

# A file that appears while the run trains is never lost: replaced (atomically) by a user's
# after the first epoch's metrics, it stops the run and stays, whether the check before the
# next write sees it or the write itself displaces it (and swaps it back).
timeout 120 "$train_mlp" --dataset iris --batch-size 16 --epochs 100000 --metrics "$dir/live.csv" > "$dir/live.out" 2>&1 &
run=$!
for _ in $(seq 600); do [ -s "$dir/live.csv" ] && break; sleep 0.1; done
echo "user's notes" > "$dir/notes.tmp" && mv "$dir/notes.tmp" "$dir/live.csv"
status=0; wait "$run" || status=$?
[ "$status" -eq 1 ] || fail "a run whose metrics file was replaced by a user's ended with status $status"
[ "$(cat "$dir/live.csv")" = "user's notes" ] || fail "the user's file that appeared during the run was replaced"
grep -Eq "exists and is not a metrics CSV|did not write; it was left as it is" "$dir/live.out" ||
  fail "no reason given: $(tail -n 2 "$dir/live.out")"

# A resumed run keeps the rows of the epochs it resumes after.
"$train_mlp" --dataset iris --batch-size 16 --epochs 2 --save "$dir/ckpt" --metrics "$dir/resumed.csv" > /dev/null
"$train_mlp" --resume "$dir/ckpt" --epochs 3 --metrics "$dir/resumed.csv" > /dev/null
[ "$(cut -d, -f1 "$dir/resumed.csv" | tr '\n' ' ')" = "epoch 1 2 3 " ] || fail "resumed metrics: $(cat "$dir/resumed.csv")"

# What an example wrote is replaced by the next run; an empty file holds nothing to lose.
train --metrics "$dir/metrics.csv" > /dev/null
train --metrics "$dir/metrics.csv" --seed 2 > /dev/null || fail "a second run could not replace its own metrics"
: > "$dir/empty.csv"
train --metrics "$dir/empty.csv" > /dev/null || fail "an empty file was refused"
head -n 1 "$dir/empty.csv" | grep -q "^epoch,train_loss" || fail "no metrics written into the empty file"
"$notebook_mlp" --dot "$dir/tape.dot" > /dev/null
"$notebook_mlp" --dot "$dir/tape.dot" > /dev/null || fail "a second run could not replace its own graph"

# Plots carry a mark (a PNG text chunk, an SVG comment): a user's own image of the same kind
# is refused, the example's own replaced.
if command -v gnuplot > /dev/null; then
  for kind in png svg; do
    train --metrics "" --plot "$dir/plot.$kind" > /dev/null
    [ -s "$dir/plot.$kind" ] || fail "no $kind plot"
    train --metrics "" --plot "$dir/plot.$kind" --seed 2 > /dev/null || fail "a second run could not replace its own $kind plot"
  done
  grep -q "written by tapegrad" "$dir/plot.svg" || fail "the SVG plot carries no mark"
  # The same image less its mark: a user's PNG (gnuplot's own bytes), which the run must keep.
  { head -c 33 "$dir/plot.png"; tail -c +63 "$dir/plot.png"; } > "$dir/photo.png"  # signature and IHDR, then past the mark
  refused "--plot onto a user's PNG" photo.png train --metrics "" --plot "$dir/photo.png"
  grep -v "written by tapegrad" "$dir/plot.svg" > "$dir/drawing.svg"
  refused "--plot onto a user's SVG" drawing.svg train --metrics "" --plot "$dir/drawing.svg"
else
  echo "gnuplot not installed: plot cases skipped"
fi
echo "outputs replace only what an example wrote"
