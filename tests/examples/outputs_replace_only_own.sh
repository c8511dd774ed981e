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
  grep -q "exists and is not" "$dir/out" || fail "$what: the message does not say why"
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
