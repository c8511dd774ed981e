#!/usr/bin/env bash
# Asks the compiled library whether the compiler kept what the speed of the engine rests on,
# since it can lose either without a word and every result stays the same:
#   sweep       Tape<double>::sweep holds prefetch instructions (autodiff/tape.cpp,
#               Tape::prefetch_for_sweep). GCC once deleted every such call (a function of
#               prefetches alone is free of effects to -fipa-modref).
#   vectorised  the loops of the branch-free math kernels (autodiff/exp_kernel.hpp) hold packed
#               arithmetic. One bool read by two selects once kept GCC 12 from vectorising
#               log_each at all ("no vectype"), and the M step lost 7%.
#   tests/autodiff/compiled_code.sh sweep|vectorised LIBRARY
set -euo pipefail
what=$1
library=$2
if [ "$(uname -m)" != x86_64 ] || ! command -v objdump >/dev/null; then
  echo "compiled_code: needs objdump on x86-64; skipped"
  exit 77
fi
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
objdump -d --no-show-raw-insn -C "$library" >"$listing"

# "found N": how many instructions of the function whose demangled name begins with $1
# match the extended regular expression $2; "missing" if the library has no such function.
count_in() {
  awk -v name="$1" -v pattern="$2" '
    /^[0-9a-f]+ </ { inside = index($0, "<" name) > 0; found += inside; next }
    /^$/ { inside = 0 }
    inside && $2 ~ pattern { n++ }
    END { if (found) print "found", n + 0; else print "missing" }' "$listing"
}

failed=0
require() {  # function, pattern, what the instructions are, what their absence means
  local result
  result=$(count_in "$1" "$2")
  case "$result" in
    missing) echo "compiled_code: no function $1... in $library (renamed? name it here anew)"; failed=1 ;;
    "found 0") echo "compiled_code: $1... in $library holds no $3: $4"; failed=1 ;;
    *) echo "compiled_code: $1... holds ${result#found } $3" ;;
  esac
}

case "$what" in
  sweep)
    require "autodiff::Tape<double>::sweep(autodiff::Var<double> const&, autodiff::FlatPlan<double>*)" \
      '^prefetch' "prefetch instructions" "the compiler removed them" ;;
  vectorised)
    packed='^v?(mul|add|sub|fmadd[0-9]*|fnmadd[0-9]*|fmsub[0-9]*)p[sd]$'
    not_vectorised="its loop is not vectorised (run the compiler with -fopt-info-vec-missed on it)"
    for T in double float; do
      require "void autodiff::kernels::log_each<$T>(" "$packed" "packed arithmetic" "$not_vectorised"
      require "void autodiff::kernels::softmax_columns<$T>(" "$packed" "packed arithmetic" "$not_vectorised"
      for rule in autodiff::ops::SigmoidRule autodiff::ops::TanhRule "autodiff::(anonymous namespace)::ExpRule" \
                  "autodiff::(anonymous namespace)::LogRule"; do
        require "void autodiff::ops::unary_flat_forward<$T, $rule>(" "$packed" "packed arithmetic" "$not_vectorised"
      done
    done ;;
  *) echo "compiled_code: unknown check '$what' (sweep or vectorised)" >&2; exit 2 ;;
esac
exit $failed
