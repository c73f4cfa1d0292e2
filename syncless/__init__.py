"""Syncless: coroutines for stock CPython on a C++ core.

``install_greenlet()`` makes ``import greenlet`` resolve to Syncless's
implementation (Python API and C ABI), so gevent and eventlet run on it.
``install_stackless()`` makes ``import stackless`` (and ``_stackless``)
Syncless's tasklets and channels.
"""
import os
import sys

from ._syncless import set_stack_size, stack_pool_stats

__version__ = "0.1.0"

__all__ = [
    "get_include",
    "greenlet_path",
    "install_greenlet",
    "install_stackless",
    "set_stack_size",
    "stack_pool_stats",
    "stackless_path",
]

_HERE = os.path.dirname(os.path.abspath(__file__))


def greenlet_path():
    """The directory holding Syncless's ``greenlet`` package.

    Put it first on ``sys.path`` (or ``PYTHONPATH``, for child processes) to
    make ``import greenlet`` load Syncless's.
    """
    return os.path.join(_HERE, "_greenlet_pkg")


def get_include():
    """The directory with ``greenlet.h``, for extensions built against it."""
    return os.path.join(_HERE, "include")


def install_greenlet():
    """Make ``import greenlet`` (and greenlet's C API capsule) Syncless's.

    Call it before anything imports greenlet: a module that already holds the
    real greenlet would keep running on it. Calling it again is harmless.
    """
    return _install("greenlet", greenlet_path())


def stackless_path():
    """The directory holding Syncless's ``stackless`` and ``_stackless``."""
    return os.path.join(_HERE, "_stackless_pkg")


def install_stackless():
    """Make ``import stackless`` (and ``import _stackless``) Syncless's.

    Returns the ``stackless`` module. Calling it again is harmless; a
    ``stackless`` imported from elsewhere first is an error.
    """
    return _install("stackless", stackless_path())


def _install(name, path):
    """Import module ``name`` from ``path``, put first on ``sys.path``."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        where = os.path.abspath(getattr(loaded, "__file__", "") or "")
        if where.startswith(path + os.sep):
            return loaded
        raise RuntimeError(
            "syncless.install_%s() must run before %s is imported; "
            "%s was already imported from %r"
            % (name, name, name, getattr(loaded, "__file__", None))
        )
    if path not in sys.path:
        sys.path.insert(0, path)
    import importlib

    importlib.invalidate_caches()
    return importlib.import_module(name)
