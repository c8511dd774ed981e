#!/usr/bin/env bash
# --resume continues the run as it was (issue 10, item 12): it restores --epochs, refuses a
# --hidden/--activation/--init that contradicts the checkpoint, keeps saving into the resumed
# directory without --save; output paths are checked before the first epoch; files get the umask.
#   resume_options.sh PATH/TO/train_mlp
source "$(dirname "$0")/lib.sh"
train_mlp=$1
umask 022
"$train_mlp" --dataset iris --epochs 4 --hidden 8 --activation tanh --init glorot --batch-size 16 \
  --save "$dir/ckpt" --metrics "$dir/metrics.csv" > /dev/null
[ "$(stat -c %a "$dir/metrics.csv")" = 644 ] || fail "metrics.csv has mode $(stat -c %a "$dir/metrics.csv"), umask 022 gives 644"
[ "$(stat -c %a "$dir/ckpt/manifest.json")" = 644 ] || fail "manifest.json has mode $(stat -c %a "$dir/ckpt/manifest.json")"

# All 4 epochs done: resuming without --epochs trains nothing more.
"$train_mlp" --resume "$dir/ckpt" --metrics "" > "$dir/out" 2>&1 || fail "resume failed"
! grep -q "^epoch [0-9]*/" "$dir/out" || fail "a finished run trained on: $(grep '^epoch' "$dir/out" | head -n 2)"
grep -q "^nothing to train" "$dir/out" || fail "a finished run resumed without saying it trains nothing"
# Fewer --epochs than the checkpoint has trained: refused (it trained nothing, silently, exit 0).
expect_failure "resume with --epochs 2 of a 4-epoch checkpoint" "$train_mlp" --resume "$dir/ckpt" --epochs 2 --metrics ""
grep -q -- "--epochs 2 is fewer than the 4 epochs" "$dir/out" || fail "the refusal does not name --epochs and the 4 epochs"

for bad in "--hidden 16" "--activation relu" "--init he"; do
  expect_failure "resume with $bad" "$train_mlp" --resume "$dir/ckpt" --epochs 5 --metrics "" $bad
  grep -q -- "${bad% *}" "$dir/out" || fail "the message does not name ${bad% *}"
done

# --epochs extends it; without --save the resumed checkpoint is updated.
"$train_mlp" --resume "$dir/ckpt" --epochs 6 --metrics "" > "$dir/out" 2>&1 || fail "resume --epochs 6 failed"
grep -q "^epoch 6/6" "$dir/out" || fail "did not train to epoch 6"
! grep -q "^epoch [1-4]/" "$dir/out" || fail "retrained finished epochs"
grep -q '"epoch": "6"' "$dir/ckpt/manifest.json" || fail "the resumed checkpoint was not updated"

# --eval reads a checkpoint in the type it was trained in (a double one was refused as not float).
"$train_mlp" --dataset iris --epochs 1 --dtype double --save "$dir/double" --metrics "" > /dev/null
"$train_mlp" --dataset iris --eval "$dir/double" > "$dir/out" 2>&1 || fail "--eval of a double checkpoint failed"
grep -q "^test accuracy" "$dir/out" || fail "--eval printed no accuracy"
# --eval tests on the run's own test set: its data set and split seed come from the checkpoint
# (it split with seed 0 and loaded Fashion-MNIST without --dataset; found by an attack).
"$train_mlp" --dataset iris --epochs 1 --seed 7 --save "$dir/seed7" --metrics "" > "$dir/trained" 2>&1
"$train_mlp" --eval "$dir/seed7" > "$dir/out" 2>&1 || fail "--eval without --dataset failed: $(tail -n 1 "$dir/out")"
[ "$(grep '^test accuracy' "$dir/out")" = "$(grep '^test accuracy' "$dir/trained")" ] ||
  fail "--eval gave $(grep '^test accuracy' "$dir/out"), the run ended with $(grep '^test accuracy' "$dir/trained")"
expect_failure "--eval with another --seed" "$train_mlp" --eval "$dir/seed7" --seed 3
grep -q -- "--seed 7, not 3" "$dir/out" || fail "the refusal does not name both seeds"

# A metrics file of the example's own whose epoch was edited to 1e999: a resumed run said only
# "stod" (found by an attack); it names the file and the row.
"$train_mlp" --dataset iris --epochs 1 --hidden 4 --metrics "$dir/m.csv" --save "$dir/rs" > /dev/null
printf 'epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n1e999,1,1,1,1,1\n' > "$dir/m.csv"
expect_failure "resume over a metrics file with an epoch of 1e999" "$train_mlp" --resume "$dir/rs" --epochs 2 --metrics "$dir/m.csv"
grep -q "m.csv: row 1 has the epoch '1e999', not a whole number" "$dir/out" || fail "the refusal does not name the file and the row: $(tail -n 1 "$dir/out")"

# Output paths that cannot be written are refused before the first epoch.
echo "a file" > "$dir/file"
for flag in --save --metrics --plot; do
  no_metrics=(--metrics ""); [ "$flag" = --metrics ] && no_metrics=()
  expect_failure "$flag under a regular file" "$train_mlp" --dataset iris --epochs 2 "${no_metrics[@]}" $flag "$dir/file/x"
  ! grep -q "^epoch 1/" "$dir/out" || fail "$flag: trained before refusing"
  grep -q "$dir/file/x" "$dir/out" || fail "$flag: the message does not name the path"
done
echo "resume restores and checks its options; output paths checked up front"
