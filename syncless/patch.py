"""Monkey-patching: unmodified blocking code (the standard library, pure-Python
clients) parks only its tasklet.

Each ``patch_*`` is idempotent; ``unpatch_all()`` puts every original back
(for tests). Patch before the code that uses these modules grabs references
of its own (``from socket import socket``); ``patch_module_socket`` fixes up a
module that already did.
"""
import os
import select
import selectors
import socket
import subprocess
import sys
import time

from . import coio

_MISSING = object()
_originals = {}  # (module, name) -> original attribute (or _MISSING)


def _replace(module, name, value):
    key = (module, name)
    if key not in _originals:
        _originals[key] = getattr(module, name, _MISSING)
    setattr(module, name, value)


def is_patched(module, name):
    """Whether ``module.name`` is currently replaced by syncless.patch."""
    return (module, name) in _originals


def patch_socket():
    """socket.socket and friends become coio's: sockets, socketpair,
    create_connection/create_server and name resolution park the tasklet."""
    for name, value in (("socket", coio.socket), ("SocketType", coio.socket),
                        ("socketpair", coio.socketpair), ("fromfd", coio.fromfd),
                        ("create_connection", coio.create_connection),
                        ("create_server", coio.create_server),
                        ("getaddrinfo", coio.getaddrinfo), ("getnameinfo", coio.getnameinfo),
                        ("gethostbyname", coio.gethostbyname),
                        ("gethostbyname_ex", coio.gethostbyname_ex),
                        ("gethostbyaddr", coio.gethostbyaddr)):
        _replace(socket, name, value)
    if hasattr(coio, "getfqdn"):
        _replace(socket, "getfqdn", coio.getfqdn)


def patch_module_socket(module):
    """For a module that did ``from socket import ...`` before patching:
    rebinds its socket names (and its ``socket`` module attribute, if any)."""
    patch_socket()
    for name in ("socket", "SocketType", "socketpair", "create_connection", "getaddrinfo",
                 "gethostbyname"):
        current = getattr(module, name, None)
        if current is not None and current is not socket and \
                current is _originals.get((socket, name)):
            _replace(module, name, getattr(socket, name))


def patch_time():
    """time.sleep parks only the calling tasklet; time.sleep(0) yields to
    the other runnable tasklets (as gevent's does), where coio.sleep(0)
    returns at once."""
    _replace(time, "sleep", _sleep)


def _sleep(seconds):
    if seconds == 0:
        coio.stackless.schedule()
    else:
        coio.sleep(seconds)


def patch_select():
    """select.select and select.poll, and the selectors' DefaultSelector,
    PollSelector and SelectSelector (socketserver's too) park only the
    calling tasklet. select.epoll objects stay the kernel's; asyncio, which
    takes DefaultSelector, then runs its loop on the hub's waits.)"""
    import socketserver

    _replace(select, "select", coio.select)
    _replace(select, "poll", coio.poll)
    for name in ("DefaultSelector", "PollSelector", "SelectSelector"):
        _replace(selectors, name, coio.CoioSelector)
    _replace(socketserver, "_ServerSelector", coio.CoioSelector)


def patch_ssl():
    """ssl.SSLContext wraps into coio's non-blocking SSL sockets."""
    import ssl

    _replace(ssl.SSLContext, "sslsocket_class", coio.SSLSocket)


def patch_subprocess():
    """subprocess's communicate() waits through coio, and wait() parks the
    tasklet until the child exits."""
    _replace(subprocess, "_PopenSelector", coio.CoioSelector)
    _replace(subprocess.Popen, "_wait", _cooperative_popen_wait)


_std_popen_wait = subprocess.Popen._wait


def _cooperative_popen_wait(self, timeout):
    """Popen._wait: park on the child's pidfd, then reap it without blocking."""
    if self.returncode is None and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            pidfd = None  # already reaped elsewhere
        if pidfd is not None:
            try:
                if not coio.wait_readable(pidfd, timeout):
                    raise subprocess.TimeoutExpired(self.args, timeout)
            finally:
                os.close(pidfd)
    return _std_popen_wait(self, timeout)


def patch_os():
    """os.popen reads and writes through coio (text, as os.popen's)."""
    _replace(os, "popen", _popen_text)


def _popen_text(cmd, mode="r", buffering=-1):
    import io

    binary = coio.popen(cmd, mode.replace("t", "").replace("b", "") or "r")
    if "b" in mode:
        return binary
    return io.TextIOWrapper(_BufferedNbfile(binary), line_buffering=buffering == 1)


class _BufferedNbfile:
    """The buffered-binary-file face TextIOWrapper needs, over an nbfile."""

    def __init__(self, nbfile):
        self._file = nbfile

    def __getattr__(self, name):
        return getattr(self._file, name)

    def readable(self):
        return "r" in self._file.mode or "+" in self._file.mode

    def writable(self):
        return "w" in self._file.mode or "+" in self._file.mode

    def seekable(self):
        return False

    def read1(self, size=-1):
        return self._file.read_at_most(size if size >= 0 else 65536)

    def readinto(self, buffer):
        data = self._file.read_at_most(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    @property
    def closed(self):
        return self._file.closed


def patch_stdio():
    """sys.stdin/stdout/stderr read and write through coio: a tasklet
    waiting for input lets the others run."""
    import io

    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        current = getattr(sys, name)
        if current is None or is_patched(sys, name):
            continue
        try:
            if current.fileno() != fd:
                continue
        except (AttributeError, ValueError, OSError):
            continue
        raw = coio.fdopen(fd, mode, do_close=False)
        wrapper = io.TextIOWrapper(_BufferedNbfile(raw), encoding=current.encoding,
                                   errors=current.errors, line_buffering=True,
                                   write_through=name == "stderr")
        _replace(sys, name, wrapper)


def patch_all():
    """Every standard-library patch above."""
    patch_socket()
    patch_time()
    patch_select()
    if hasattr(coio, "SSLSocket"):
        patch_ssl()
    patch_subprocess()
    patch_os()


def unpatch_all():
    """Puts every replaced attribute back, newest first."""
    for (module, name), original in reversed(list(_originals.items())):
        if original is _MISSING:
            delattr(module, name)
        else:
            setattr(module, name, original)
    _originals.clear()
