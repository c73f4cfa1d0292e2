#!/usr/bin/env bash
# Sets up (scripts/bootstrap.sh) and runs the whole test suite: the C++ unit
# tests, then pytest (our tests, compiled gevent on our greenlet, greenlet's
# own suite) on CPython 3.11, 3.12 and 3.13, then the suite under
# AddressSanitizer + UBSan on 3.11.
#
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh 3.12         # pytest on one version only (no C++/ASan)
set -euo pipefail
cd "$(dirname "$0")/.."

versions=("$@")
full=0
if [ ${#versions[@]} -eq 0 ]; then
  versions=(3.11 3.12 3.13)
  full=1
fi
bash scripts/bootstrap.sh "${versions[@]}"

if [ $full = 1 ]; then
  echo "=== C++ unit tests (GoogleTest)"
  cmake -G Ninja -S . -B build/cxx -DSYNCLESS_CXX_TESTS=ON \
        -DPython_EXECUTABLE="$PWD/.venv/3.11/bin/python" >/dev/null
  ninja -C build/cxx
  ctest --test-dir build/cxx --output-on-failure
fi

status=0
for v in "${versions[@]}"; do
  echo "=== pytest on CPython $v"
  # From tests/, and through the console script rather than `python -m`: the
  # checkout's syncless/ folder (no compiled core) must not shadow the
  # installed package, here or in the child processes tests start.
  (cd tests && "../.venv/$v/bin/pytest" -p no:cacheprovider -ra .) || status=1
done

if [ $full = 1 ]; then
  echo "=== pytest under AddressSanitizer + UBSan (CPython 3.11)"
  bash scripts/test_sanitizers.sh || status=1
fi
exit $status
