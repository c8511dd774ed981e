#!/usr/bin/env bash
# A train_cnn run stopped after epoch 1 and resumed equals one that ran 2 epochs straight,
# bit for bit: weights, dropout counter, optimizer moments, manifest. And --eval of that
# checkpoint (a network of non-default --channels) rebuilds the network from the manifest,
# without the flags, and finds the accuracy the training printed.
#   train_cnn_resume.sh PATH/TO/train_cnn
set -euo pipefail
train_cnn=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
quick=(--limit 256 --test-limit 100 --batch-size 32 --channels 4,8 --metrics "")
"$train_cnn" "${quick[@]}" --epochs 2 --save "$dir/straight" > "$dir/straight.log"
"$train_cnn" "${quick[@]}" --epochs 1 --save "$dir/resumed" > /dev/null
"$train_cnn" --resume "$dir/resumed" --epochs 2 --metrics "" > "$dir/resumed.log"
diff -r "$dir/straight" "$dir/resumed" || { echo "FAIL: the resumed run differs"; exit 1; }
[ "$(tail -n 1 "$dir/straight.log")" = "$(tail -n 1 "$dir/resumed.log")" ] || { echo "FAIL: accuracies differ"; exit 1; }
# test set limited as when trained; no --channels
"$train_cnn" --eval "$dir/straight" --test-limit 100 > "$dir/eval.log" || { echo "FAIL: --eval of a --channels 4,8 checkpoint"; exit 1; }
[ "$(tail -n 1 "$dir/straight.log")" = "$(tail -n 1 "$dir/eval.log")" ] || { echo "FAIL: --eval found $(tail -n 1 "$dir/eval.log")"; exit 1; }
echo "identical after resuming: $(ls "$dir/straight" | wc -l) files; $(tail -n 1 "$dir/resumed.log")"
