"""Blocking-style I/O for tasklets: every call that would block parks only
the calling tasklet, on this thread's hub (libevent).

``sleep``, ``socket`` (a ``socket.socket`` subclass) and TLS, name
resolution (c-ares), ``select``/``poll``/selectors, buffered files and pipes,
a thread pool and timeout helpers. The hub is a tasklet that joins the run
queue while something waits: a program without I/O schedules exactly as
Stackless does. Forked children re-arm their hub by themselves
(``os.register_at_fork``). See docs/coio.md.
"""
import os
import signal as _stdsignal

from ._syncless import coio_module as _coio
from ._syncless import stackless_module as stackless
from ._coio_dns import (configure_dns, getaddrinfo, getfqdn, gethostbyaddr, gethostbyname,
                        gethostbyname_ex, getnameinfo)
from ._coio_file import fdopen, nbfile, nblimitreader, pipe, popen
from ._coio_select import CoioSelector, DefaultSelector, poll, select
from ._coio_socket import (SocketType, create_connection, create_server, fromfd, socket,
                           socketpair, wrap)
from ._coio_ssl import SSLContext, SSLSocket, wrap_socket
from ._coio_threadpool import ThreadPool
from ._coio_wait import wait_again_after_early_wakeups
from ._coio_util import (Queue, Timeout, TimeoutException, receive_with_timeout,
                         run_with_timeout)

__all__ = [
    "CoioSelector", "DefaultSelector", "EV_READ", "EV_WRITE", "Queue", "SSLContext",
    "SSLSocket", "SocketType", "ThreadPool", "Timeout", "TimeoutException", "Waker", "backend",
    "configure_dns", "create_connection", "create_server", "fdopen", "fromfd", "getaddrinfo",
    "get_main_loop_tasklet", "getfqdn", "gethostbyaddr", "gethostbyname", "gethostbyname_ex",
    "getnameinfo", "nbfile", "nblimitreader", "pipe", "poll", "popen", "receive_with_timeout",
    "reinit", "run_with_timeout", "select", "signal", "sleep", "socket", "socketpair",
    "stackless", "thread_pool", "wait_readable", "wait_writable", "waiting", "wrap",
    "wrap_socket",
]

Waker = _coio.Waker
sleep = _coio.sleep
reinit = _coio.reinit
waiting = _coio.waiting
backend = _coio.backend
EV_READ = _coio.EV_READ
EV_WRITE = _coio.EV_WRITE


def get_main_loop_tasklet():
    """The tasklet that runs this thread's event loop."""
    return _coio.hub_tasklet()


def wait_readable(fd, timeout=None):
    """Parks until fd (an int or an object with fileno()) is readable:
    True, or False once ``timeout`` seconds passed."""
    return wait_again_after_early_wakeups(lambda t: _coio.wait(fd, EV_READ, t), timeout)


def wait_writable(fd, timeout=None):
    """Parks until fd is writable: True, or False after ``timeout``."""
    return wait_again_after_early_wakeups(lambda t: _coio.wait(fd, EV_WRITE, t), timeout)


def thread_pool(max_threads=10):
    """A ThreadPool: ``pool(f, *args)`` runs f in an OS thread."""
    return ThreadPool(max_threads)


def signal(signum, handler):
    """signal.signal(), but ``handler(signum)`` runs in a tasklet of its own,
    so it may block; None restores the default action."""
    if handler is None:
        return _stdsignal.signal(signum, _stdsignal.SIG_DFL)

    def spawn(signum, frame):
        stackless.tasklet(handler)(signum)

    return _stdsignal.signal(signum, spawn)


def _after_fork_in_child():
    # The hub first: until its reinit the child shares its parent's epoll
    # set, and dropping the resolver's sockets would delete them there.
    _coio.reinit()
    _coio.dns_reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
