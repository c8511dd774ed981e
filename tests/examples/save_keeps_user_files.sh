#!/usr/bin/env bash
# --save replaces only a tapegrad checkpoint and never deletes what it did not write
# (issue 10, item 1); a symlink stays a symlink.
#   save_keeps_user_files.sh PATH/TO/train_mlp
source "$(dirname "$0")/lib.sh"
train_mlp=$1
run() { "$train_mlp" --dataset iris --epochs 2 --batch-size 16 --metrics "" "$@"; }

# A project directory that happens to hold a manifest.json.
mkdir "$dir/project"
echo '{"name": "my-app"}' > "$dir/project/manifest.json"
echo "my notes" > "$dir/project/notes.txt"
expect_failure "--save onto a project with a manifest.json" run --save "$dir/project"
grep -q "not a checkpoint" "$dir/out" || fail "the message does not say why"
[ "$(cat "$dir/project/notes.txt")" = "my notes" ] || fail "notes.txt was lost"

# A checkpoint the user put a file into: refused, naming the file, before the first epoch.
run --save "$dir/ckpt" > /dev/null
echo "keep me" > "$dir/ckpt/README"
before=$(digest ckpt)
expect_failure "--save onto a checkpoint holding a README" run --save "$dir/ckpt"
grep -q "README" "$dir/out" || fail "the message does not name README"
! grep -q "^epoch 1/" "$dir/out" || fail "trained before refusing"
[ "$before" = "$(digest ckpt)" ] || fail "the checkpoint changed"
rm "$dir/ckpt/README"

# The metrics CSV inside the checkpoint directory would be deleted by the next save: refused up front.
expect_failure "--metrics inside --save" "$train_mlp" --dataset iris --epochs 2 --save "$dir/ckpt" --metrics "$dir/ckpt/metrics.csv"
! grep -q "^epoch 1/" "$dir/out" || fail "trained before refusing"

# The training data as --metrics or --plot (also by another spelling): refused before the first
# epoch; the metrics used to replace the CSV.
data="$dir/project/data.csv"
{ echo "a,b,class"; for i in $(seq 1 40); do echo "$((i % 7)).5,$((i % 3)).25,$((i % 2))"; done; } > "$data"
data_before=$(digest project/data.csv)
refused_as_data() {
  expect_failure "--csv data.csv $*" "$train_mlp" --csv "$data" --epochs 1 "$@"
  grep -q "would replace the data" "$dir/out" || fail "no clear refusal of $*"
  ! grep -q "^epoch 1/" "$dir/out" || fail "trained before refusing"
}
refused_as_data --metrics "$data"
refused_as_data --metrics "$dir/project/../project/data.csv"
refused_as_data --metrics "" --plot "$data"
[ "$data_before" = "$(digest project/data.csv)" ] || fail "the training data was replaced"

# Through a symlink: the link stays, the checkpoint it points to is replaced.
ln -s "$dir/ckpt" "$dir/latest"
run --save "$dir/latest" --seed 3 > /dev/null
[ -L "$dir/latest" ] || fail "--save replaced the symlink by a directory"
grep -q '"train.seed": "3"' "$dir/ckpt/manifest.json" || fail "the checkpoint behind the link was not replaced"
[ "$(ls -A "$dir" | sort | tr '\n' ' ')" = "ckpt latest out project " ] || fail "left over: $(ls -A "$dir")"
echo "user files kept, symlink kept"
