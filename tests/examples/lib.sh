# Shared by the example tests: a scratch directory removed on exit, and fail/expect helpers.
#   source "$(dirname "$0")/lib.sh"
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/out" ] && cat "$dir/out"; exit 1; }
# expect_failure DESCRIPTION COMMAND...: the command must exit non-zero (1, not a crash);
# its output is kept in $dir/out.
expect_failure() {
  local what=$1; shift
  local status=0
  "$@" > "$dir/out" 2>&1 || status=$?
  [ "$status" -eq 1 ] || fail "$what: exit status $status, expected 1"
  echo "refused ($what): $(tail -n 1 "$dir/out")"
}
# digest PATH...: the content of every file under the paths, to compare before and after.
digest() { (cd "$dir" && find "$@" -type f -exec md5sum {} + | sort); }
