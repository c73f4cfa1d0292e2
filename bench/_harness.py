"""Plumbing shared by the benchmark worker processes.

Each measurement runs in a fresh process, so one implementation (or the
memory a previous measurement left behind) can't skew another. A worker
prints JSON objects, one per line, on stdout; the last one is its result.
Earlier lines are progress, which the driver falls back on if the worker
dies before finishing.

Run directly (``python _harness.py --impl NAME``), it only loads the
implementation and describes it; the driver uses that to skip an
implementation that can't be imported.
"""

import argparse
import importlib.util
import json
import os
import sys

IMPLS = ("greenlet", "syncless")


def load_greenlet(impl):
    """Return the ``greenlet`` module of the requested implementation."""
    if impl == "syncless":
        real = importlib.util.find_spec("greenlet")
        import syncless

        syncless.install_greenlet()
        import greenlet

        # Falling through to the real module would benchmark greenlet
        # against itself and report a ratio of 1.0 as if it were a result.
        if real is not None and getattr(greenlet, "__file__", None) == real.origin:
            raise ImportError("syncless.install_greenlet() did not replace greenlet")
        return greenlet
    import greenlet

    return greenlet


def rss_bytes():
    import psutil

    return psutil.Process().memory_info().rss


def page_table_bytes():
    """Kernel page-table memory of this process (VmPTE): not part of RSS,
    but a real per-coroutine cost when stacks are spread over address space."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPTE:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmPTE in /proc/self/status")


def emit(result):
    print(json.dumps(result), flush=True)


def main(measure, **params):
    """Run ``measure(greenlet, **params)`` and emit the dict it returns.

    Each keyword becomes a ``--flag`` of the same type as its default.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=IMPLS, required=True)
    for name, default in params.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    args = vars(parser.parse_args())
    greenlet = load_greenlet(args.pop("impl"))
    emit(measure(greenlet, **args))
    # Skip interpreter teardown: killing up to millions of suspended
    # greenlets (each gets GreenletExit thrown in) takes longer than the
    # measurement and is not what is being measured.
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=IMPLS, required=True)
    impl = parser.parse_args().impl
    module = load_greenlet(impl)
    # Ours reports greenlet's API version as greenlet.__version__; the
    # table wants the implementation's own.
    owner = sys.modules["syncless"] if impl == "syncless" else module
    emit({
        "version": getattr(owner, "__version__", None),
        "module": getattr(module, "__file__", None) or repr(module),
    })
