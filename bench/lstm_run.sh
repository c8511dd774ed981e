#!/usr/bin/env bash
# bench/lstm_run.sh: the recurrent workload of issue 15, tapegrad against the hand-written
# reference and PyTorch, as one markdown table (times: medians of thread CPU time).
#
#   bench/lstm_run.sh [--reps N] [--torch-reps N] [--no-torch] [--bin PATH]
#
# Builds lstm_bench in build-bench (-DTAPEGRAD_BUILD_BENCH=ON, -march=native) unless --bin
# is given; PyTorch is Debian's python3-torch (/usr/bin/python3), float64, one thread.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=11
torch_reps=3
torch=1
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --torch-reps) torch_reps=$2; shift 2 ;;
    --no-torch) torch=0; shift ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "lstm_run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  cmake -S "$root" -B "$root/build-bench" -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON -DTAPEGRAD_NATIVE=ON \
    -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build "$root/build-bench" -j2 --target lstm_bench >/dev/null
  bin=$root/build-bench/bench/lstm_bench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" --reps "$reps" >"$out/tapegrad.jsonl"
if [ "$torch" = 1 ]; then /usr/bin/python3 "$root/bench/lstm_pytorch.py" --reps "$torch_reps" >"$out/torch.jsonl"; else : >"$out/torch.jsonl"; fi
/usr/bin/python3 - "$out/tapegrad.jsonl" "$out/torch.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
torch = {(r["layers"], r["steps"]): r for r in (json.loads(l) for l in open(sys.argv[2]) if l.strip())}
ms = lambda s: f"{s * 1e3:.2f} ms"
for r in rows:
    if "per_entry" in r:
        print(f"- {r['per_entry']}: {r['ns_per_entry']} ns per 14x1 entry (first recording {r['first_ns_per_entry']} ns, "
              f"{r['first_over_later']}x), sizeof(Node<double>) = {r['node_bytes']} bytes")
print()
print("| layers | steps | entries | hw grad | tapegrad grad | ratio | replayed grad | ratio | first grad | hw loss | tapegrad NoGrad loss | ratio | entries kept | pytorch grad | pytorch no_grad |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
table = []
for r in rows:
    if "layers" not in r:
        continue
    t = torch.get((r["layers"], r["steps"]), {})
    pg = ms(t["pytorch_grad_s"]) if t else "-"
    pl = ms(t["pytorch_loss_s"]) if t else "-"
    print(f"| {r['layers']} | {r['steps']} | {r['grad_entries']} | {ms(r['handwritten_grad_s'])} | {ms(r['tapegrad_grad_s'])} | "
          f"{r['tapegrad_grad_s'] / r['handwritten_grad_s']:.2f} | {ms(r['tapegrad_replay_s'])} | "
          f"{r['tapegrad_replay_s'] / r['handwritten_grad_s']:.2f} | {ms(r['tapegrad_first_grad_s'])} | {ms(r['handwritten_loss_s'])} | "
          f"{ms(r['tapegrad_loss_s'])} | {r['tapegrad_loss_s'] / r['handwritten_loss_s']:.2f} | {r['nograd_entries_kept']} | {pg} | {pl} |")
    table.append(r)
# The hand-written code with tapegrad's own exp, sigmoid and tanh (bench/lstm_handwritten.hpp,
# KernelMath): the ratios then say what the tape costs, not what the math library does.
if not table or "handwritten_kernel_math_grad_s" not in table[0]:  # a lstm_bench from before the column
    sys.exit(0)
print()
print("Against the hand-written code computing with tapegrad's own math kernels (KernelMath):")
print()
print("| layers | steps | hw grad, kernel math | tapegrad grad | ratio | replayed | ratio | hw loss, kernel math | NoGrad loss | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in table:
    hg, hl = r["handwritten_kernel_math_grad_s"], r["handwritten_kernel_math_loss_s"]
    print(f"| {r['layers']} | {r['steps']} | {ms(hg)} | {ms(r['tapegrad_grad_s'])} | {r['tapegrad_grad_s'] / hg:.2f} | "
          f"{ms(r['tapegrad_replay_s'])} | {r['tapegrad_replay_s'] / hg:.2f} | {ms(hl)} | {ms(r['tapegrad_loss_s'])} | "
          f"{r['tapegrad_loss_s'] / hl:.2f} |")
PY
