#!/usr/bin/env bash
# The reverse sweep of a long tape prefetches the entries it will read (autodiff/tape.cpp,
# Tape::prefetch_for_sweep). GCC once deleted every such call without a word (a function of
# prefetches alone is free of effects to -fipa-modref), so this asks the compiled library:
# Tape<double>::sweep must hold prefetch instructions.
#   tests/autodiff/sweep_prefetches.sh LIBRARY
set -euo pipefail
library=$1
if [ "$(uname -m)" != x86_64 ] || ! command -v objdump >/dev/null; then
  echo "sweep_prefetches: needs objdump on x86-64; skipped"
  exit 77
fi
count=$(objdump -d --no-show-raw-insn -C "$library" |
  awk '/^[0-9a-f]+ <autodiff::Tape<double>::sweep\(autodiff::Var<double> const&, autodiff::FlatPlan<double>\*\)>:$/ {inside = 1; next}
       inside && /^$/ {inside = 0}
       inside && /prefetch/ {n++}
       END {print n + 0}')
if [ "$count" -eq 0 ]; then
  echo "sweep_prefetches: Tape<double>::sweep in $library holds no prefetch instruction: the compiler removed them"
  exit 1
fi
echo "sweep_prefetches: Tape<double>::sweep holds $count prefetch instructions"
