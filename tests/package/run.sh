#!/usr/bin/env bash
# Checks tapegrad as a package, the way another project uses it:
#   1. `cmake --install` of the build tree into a temporary prefix;
#   2. the consumer (tests/package/consumer) configured with that prefix on
#      CMAKE_PREFIX_PATH (find_package(tapegrad)), built, and run;
#   3. the same consumer built against the source tree with add_subdirectory
#      (-DTAPEGRAD_SOURCE_DIR=...), and run.
# usage: run.sh BUILD_DIR SOURCE_DIR     (the build must be complete: ctest runs it after the build)
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
consumer="$source/tests/package/consumer"
work=$(mktemp -d "${TMPDIR:-/tmp}/tapegrad-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs="-j2"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
build_type=${build_type:-Release}

echo "== install into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
for f in include/autodiff/tape.hpp include/autodiff/ops.hpp include/nn/mlp.hpp \
         lib/cmake/tapegrad/tapegradConfig.cmake lib/cmake/tapegrad/tapegradConfigVersion.cmake; do
    [[ -f "$work/prefix/$f" ]] || { echo "missing from the install: $f" >&2; exit 1; }
done
ls "$work"/prefix/lib*/libtapegrad_autodiff.* "$work"/prefix/lib*/libtapegrad_nn.* > /dev/null

echo "== find_package(tapegrad) from the installed prefix"
cmake -S "$consumer" -B "$work/installed" -DCMAKE_BUILD_TYPE="$build_type" \
      -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/installed-configure.log" \
    || { cat "$work/installed-configure.log"; exit 1; }
cmake --build "$work/installed" $jobs
"$work/installed/consumer"

echo "== add_subdirectory($source)"
cmake -S "$consumer" -B "$work/subdirectory" -DCMAKE_BUILD_TYPE="$build_type" \
      -DTAPEGRAD_SOURCE_DIR="$source" > "$work/subdirectory-configure.log" \
    || { cat "$work/subdirectory-configure.log"; exit 1; }
# Only the consumer and the two libraries: tests and examples are off in a subproject.
if grep -q '^TAPEGRAD_BUILD_TESTS:BOOL=ON' "$work/subdirectory/CMakeCache.txt"; then
    echo "tapegrad's tests are on in a subproject" >&2; exit 1
fi
cmake --build "$work/subdirectory" $jobs
"$work/subdirectory/consumer"
echo "package: all three ways passed"
