"""Runs greenlet's own test suite (greenlet 3.5.6 sdist) against syncless' greenlet.

The work is done by ``tests/greenlet_suite/run.py`` in a subprocess, so a crash
in the implementation shows up as a failed test with the runner's output
instead of taking pytest down.  Exclusions: ``tests/greenlet_suite/excluded.txt``.
"""
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "greenlet_suite" / "run.py"


@pytest.mark.timeout(900)
def test_greenlet_suite():
    proc = subprocess.run(
        # --isolate: one process per greenlet test module, so a crash (abort,
        # segfault) fails that module and every other module still reports.
        # The runner's own watchdog fires first, so a hang still prints stacks.
        [sys.executable, str(RUNNER), "--isolate", "--timeout", "840"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    # The full output appears under "Captured stdout call" when this fails.
    print(proc.stdout)
    tail = "\n".join(proc.stdout.splitlines()[-25:])
    assert proc.returncode == 0, (
        f"greenlet's test suite failed (exit {proc.returncode}); last lines:\n{tail}")
