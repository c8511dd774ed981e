#!/usr/bin/env bash
# train_mlp with a bad option exits non-zero and leaves an earlier checkpoint as it was.
#   bad_options_keep_checkpoint.sh PATH/TO/train_mlp
set -euo pipefail
train_mlp=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$train_mlp" --dataset iris --epochs 2 --batch-size 16 --save "$dir/ckpt" --metrics "$dir/metrics.csv" > /dev/null
before=$(cd "$dir" && find ckpt metrics.csv -type f -exec md5sum {} + | sort)
for bad in "--lr nan" "--lr -0.1" "--batch-size 0" "--epochs 0" "--hidden 0" "--momentum 1.5 --optimizer momentum" \
           "--resume $dir/ckpt --seed 99"; do
  if "$train_mlp" --dataset iris --epochs 3 --save "$dir/ckpt" --metrics "$dir/metrics.csv" $bad > "$dir/out" 2>&1; then
    echo "FAIL: train_mlp accepted $bad"; cat "$dir/out"; exit 1
  fi
  echo "refused $bad: $(tail -n 1 "$dir/out")"
done
after=$(cd "$dir" && find ckpt metrics.csv -type f -exec md5sum {} + | sort)
[ "$before" = "$after" ] || { echo "FAIL: the checkpoint or metrics changed"; exit 1; }
"$train_mlp" --dataset iris --eval "$dir/ckpt" | tail -n 1 | grep -q "^test accuracy: " || { echo "FAIL: --eval"; exit 1; }
echo "checkpoint and metrics unchanged; --eval still reads the checkpoint"
