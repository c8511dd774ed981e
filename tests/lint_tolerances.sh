#!/usr/bin/env bash
# Fails if a test compares with Catch2's Approx without `.epsilon(0)`: Approx keeps a hidden
# relative epsilon of about 1.2e-5 beside any margin, so its tolerance is not the one
# written. Use tests/tolerance.hpp (max_abs_diff, require_close), Catch::Matchers::WithinAbs,
# or Approx(x).epsilon(0).margin(tol). tolerance_test.cpp shows the old behaviour on purpose.
set -euo pipefail
tests="$(cd "$(dirname "$0")" && pwd)"
found=$(grep -rn --include='*.cpp' --include='*.hpp' 'Approx(' "$tests" \
        | grep -v '^[^:]*tolerance_test\.cpp:' | grep -v '^[^:]*:[0-9]*: *//' | grep -v 'epsilon(0)' || true)
if [[ -n "$found" ]]; then
    echo "Approx without .epsilon(0) (its tolerance is not the one written):" >&2
    echo "$found" >&2
    exit 1
fi
echo "every Approx in tests/ has .epsilon(0)"
