#!/usr/bin/env bash
# Sets up CPython 3.11 with Syncless (scripts/bootstrap.sh) and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh 3.11
# -P: the checkout's syncless/ folder must not shadow the installed package.
exec .venv/3.11/bin/python -P -m syncless run examples/demo.py
