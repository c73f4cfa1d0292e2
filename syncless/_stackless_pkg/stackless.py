"""Stackless Python's ``stackless`` module on Syncless's core.

Installed by ``syncless.install_stackless()``. As in Stackless's
``Lib/stackless.py``, everything comes from ``_stackless``; the module's
class gains the properties ``current``, ``main`` and ``runcount``, and
``TaskletExit`` is a builtin.
"""
import builtins
import sys
import threading
import types

import _stackless
from _stackless import (
    TaskletExit,
    bomb,
    channel,
    enable_softswitch,
    get_channel_callback,
    get_schedule_callback,
    getcurrent,
    getcurrentid,
    getmain,
    getruncount,
    getuncollectables,
    run,
    schedule,
    schedule_remove,
    set_channel_callback,
    set_error_handler,
    set_schedule_callback,
    switch_trap,
    tasklet,
)

__all__ = [
    "atomic",
    "channel",
    "enable_softswitch",
    "get_channel_callback",
    "get_schedule_callback",
    "get_thread_info",
    "getcurrent",
    "getcurrentid",
    "getmain",
    "getruncount",
    "getdebug",
    "getthreads",
    "getuncollectables",
    "run",
    "schedule",
    "schedule_remove",
    "set_channel_callback",
    "set_error_handler",
    "set_schedule_callback",
    "pickle_with_tracing_state",
    "switch_trap",
    "tasklet",
    "stackless",
]

if getattr(builtins, "TaskletExit", TaskletExit) is not TaskletExit:
    raise RuntimeError("builtins.TaskletExit is already defined by something else")
builtins.TaskletExit = TaskletExit


PICKLEFLAGS_PRESERVE_TRACING_STATE = 1
PICKLEFLAGS_PRESERVE_AG_FINALIZER = 2
PICKLEFLAGS_RESET_AG_FINALIZER = 4
PICKLEFLAGS_PICKLE_CONTEXT = 8
_PICKLEFLAGS_ALL = 15

# The flags are kept so programs that set them keep working; they change
# nothing: a tasklet pickles only before it starts (no frames, so no tracing
# state or async-generator finalizer to keep), and its context is never
# pickled (contextvars.Context does not pickle).
_pickle_flags_default = 0
_pickle_flags = threading.local()


def _update_flags(old, new_flags, mask):
    if new_flags == -1 or mask == 0:
        return old
    if new_flags & mask & ~_PICKLEFLAGS_ALL:
        raise ValueError("you must not set an undefined pickle-flag")
    return (old & ~mask) | (new_flags & mask)


def pickle_flags_default(new_flags=-1, mask=-1):
    """Get (and with new_flags, set) the interpreter's default pickle flags."""
    global _pickle_flags_default
    old = _pickle_flags_default
    _pickle_flags_default = _update_flags(old, new_flags, mask)
    return old


def pickle_flags(new_flags=-1, mask=-1):
    """Get (and with new_flags, set) this thread's pickle flags."""
    old = getattr(_pickle_flags, "value", _pickle_flags_default)
    _pickle_flags.value = _update_flags(old, new_flags, mask)
    return old


def getdebug():
    """False: this is not a debug build."""
    return False


def getthreads():
    """Ids of the interpreter's threads, the main thread first."""
    main_id = threading.main_thread().ident
    ids = [tid for tid in sys._current_frames() if tid != main_id]
    return [main_id] + ids


def get_thread_info(thread_id=None, flags=0):
    """``(main, current, runcount)`` of a thread (``None, None, 0`` when it has
    not used tasklets yet)."""
    if thread_id is None:
        thread_id = threading.get_ident()
    info = _stackless._thread_info(thread_id)
    if info is not None:
        return info
    if thread_id not in sys._current_frames():
        raise RuntimeError("Thread id not found")
    return (None, None, 0)


class atomic:
    """``with stackless.atomic(): ...`` sets the current tasklet's atomic flag
    for the block and restores the old one afterwards."""

    __slots__ = ("_old",)

    def __enter__(self):
        self._old = getcurrent().set_atomic(True)
        return self

    def __exit__(self, *exc_info):
        getcurrent().set_atomic(self._old)


class StacklessModuleType(types.ModuleType):
    @property
    def current(self):
        """The tasklet running now in this thread."""
        return getcurrent()

    @property
    def main(self):
        """The main tasklet of this thread."""
        return getmain()

    @property
    def debug(self):
        return getdebug()

    @property
    def pickle_with_tracing_state(self):
        return bool(pickle_flags() & PICKLEFLAGS_PRESERVE_TRACING_STATE)

    @pickle_with_tracing_state.setter
    def pickle_with_tracing_state(self, value):
        pickle_flags(PICKLEFLAGS_PRESERVE_TRACING_STATE if value else 0,
                     PICKLEFLAGS_PRESERVE_TRACING_STATE)

    @property
    def uncollectables(self):
        return getuncollectables()

    @property
    def threads(self):
        """Ids of the interpreter's threads, the main thread first."""
        return getthreads()

    @property
    def runcount(self):
        """Runnable tasklets of this thread, the current one included."""
        return getruncount()

    def __reduce__(self):
        return "stackless"

    def __reduce_ex__(self, protocol):
        return "stackless"


sys.modules[__name__].__class__ = StacklessModuleType
stackless = sys.modules[__name__]
