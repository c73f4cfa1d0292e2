#!/usr/bin/env bash
# Builds Syncless with AddressSanitizer + UBSan into .venv/asan-3.11 and runs
# the pytest suite against it. CPython itself is not instrumented: the
# sanitizer runtimes are preloaded, and leak detection is off because the
# interpreter keeps objects alive until exit by design.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/asan-3.11
base_python=.venv/3.11/bin/python   # made by scripts/bootstrap.sh
[ -x "$venv/bin/python" ] || "$base_python" -m venv "$venv"
"$venv/bin/python" -m pip install -q scikit-build-core ninja cmake -r tests/requirements.txt
"$venv/bin/python" -m pip install -q --no-build-isolation --no-deps \
    -Cbuild-dir=build/asan-3.11 -Ccmake.define.SYNCLESS_SANITIZE=ON .

preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Only the test run is sanitized, not pip or the venv set-up above. Run from
# tests/ so the checkout's syncless/ folder does not shadow the installed one.
cd tests
LD_PRELOAD="$preload" "../$venv/bin/pytest" -p no:cacheprovider -ra . "$@"
