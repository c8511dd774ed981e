#!/usr/bin/env bash
# train_char_lstm as a user runs it: replayed windows give the losses recorded ones give, bit
# for bit; bad input is refused with exit 1 and a message naming it.
#   train_char_lstm_runs.sh PATH/TO/train_char_lstm
source "$(dirname "$0")/lib.sh"
program=$1
losses() { grep '^epoch' | sed 's/, [0-9.]* s$//'; }
"$program" --epochs 3 --layers 2 --hidden 16 --sample 0 > "$dir/replayed" || fail "the replayed run failed"
"$program" --epochs 3 --layers 2 --hidden 16 --sample 0 --no-replay > "$dir/recorded" || fail "the recorded run failed"
[ "$(losses < "$dir/replayed" | wc -l)" -eq 3 ] || fail "no epochs printed"
diff <(losses < "$dir/replayed") <(losses < "$dir/recorded") || fail "replayed and recorded losses differ"
expect_failure "a missing --text" "$program" --text "$dir/missing.txt"
grep -q "$dir/missing.txt: No such file or directory" "$dir/out" || fail "no path or reason"
printf 'abc' > "$dir/short.txt"
expect_failure "a text shorter than a window" "$program" --text "$dir/short.txt"
grep -q "the text has 3 characters: 4 streams of --steps 24 need at least 100" "$dir/out" || fail "no sizes named"
expect_failure "a window larger than memory" "$program" --steps 4096 --batch 4096 --hidden 64
grep -q "train_char_lstm: a window of --steps 4096 characters needs at least" "$dir/out" || fail "the window was not named"
expect_failure "a model larger than memory" "$program" --hidden 65536 --layers 16 --steps 1 --batch 1
grep -q "train_char_lstm: the model (--hidden 65536, --layers 16) needs at least" "$dir/out" || fail "the model was not named"
# Bytes a terminal would act on (ESC, NUL, other controls) are written as \xNN in the sample.
for k in $(seq 200); do printf '\001a\033b'; done > "$dir/controls.txt"
"$program" --text "$dir/controls.txt" --epochs 2 --hidden 8 > "$dir/out" || fail "the run on control bytes failed"
grep -q 'sample: .*\\x0[01b]' "$dir/out" || fail "no escaped byte in the sample"
! grep -q "$(printf '\033')" "$dir/out" || fail "a raw ESC reached the output"
# A step so large that the model's numbers overflow: its probabilities are NaN, and the sample
# drawn from them was 40 newlines (std::discrete_distribution's undefined behaviour) with exit 0.
expect_failure "a model whose output overflowed" "$program" --lr 3e38 --epochs 1 --steps 100 --hidden 8 --sample 40
grep -q "train_char_lstm: the sample: the model's next-character probabilities are not finite" "$dir/out" ||
  fail "the overflowed model was not named"
! grep -q '^sample:' "$dir/out" || fail "a sample was written from NaN probabilities"
# The run is in float: a --lr that is positive as typed but 0 there was refused by Adam as
# "got 0", a rate nobody gave.
expect_failure "a --lr that is 0 as a float" "$program" --lr 1e-50 --epochs 1
grep -q "train_char_lstm: --lr 1e-50 is 0 as a float: it must be a positive finite number there" "$dir/out" ||
  fail "the rate typed was not named"
mkdir "$dir/a_directory"
expect_failure "a directory as --text" "$program" --text "$dir/a_directory"
grep -q "$dir/a_directory: not a regular file" "$dir/out" || fail "the directory was not named as such"
mkfifo "$dir/fifo"  # refused, not waited on
expect_failure "a FIFO as --text" timeout 20 "$program" --text "$dir/fifo"
grep -q "$dir/fifo: not a regular file" "$dir/out" || fail "the FIFO was not named as such"
echo "ok"
