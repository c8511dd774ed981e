# Sourced by the multi-process test scripts: a scratch directory removed on exit, failures
# counted (a script reports them all, then fails once), mpirun as CI needs it (root, more
# ranks than cores, bounded in time).   Needs $mpiexec set.
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-mpi-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
mpirun_bounded() { timeout "$1" "$mpiexec" --allow-run-as-root --oversubscribe "${@:2}"; }
finish() {
    if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
    echo "$1"
}
