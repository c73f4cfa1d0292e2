"""coio's socket: a ``socket.socket`` whose blocking calls park only the
calling tasklet.

The C-level socket is always non-blocking (its own timeout stays 0.0, so no
inherited method ever blocks the thread); the socket's timeout lives in the
``_timeout`` slot and follows ``socket.socket``: None waits forever, 0.0
raises ``BlockingIOError`` at once, a positive value bounds each wait and
raises ``TimeoutError('timed out')``. recv/recv_into/send/sendall are C.
"""
import errno
import io
import os
import socket as _stdsocket
import warnings as _warnings

import _socket

from ._syncless import coio_module as _coio
from ._coio_dns import resolve_address as _resolve_address
from ._coio_wait import wait_again_after_early_wakeups

_EV_READ = _coio.EV_READ
_EV_WRITE = _coio.EV_WRITE
_CONNECTING = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)
_GLOBAL_DEFAULT_TIMEOUT = _stdsocket._GLOBAL_DEFAULT_TIMEOUT
# The originals, taken before syncless.patch can replace them in socket.
_StdSocket = _stdsocket.socket
_std_socketpair = _stdsocket.socketpair
_std_create_server = _stdsocket.create_server


def _check_timeout(value):
    if value is None:
        return None
    if not isinstance(value, (int, float)):
        raise TypeError("%r object cannot be interpreted as an integer" % type(value).__name__)
    value = float(value)
    if value != value:
        raise ValueError("Invalid value NaN (not a number)")
    if value < 0:
        raise ValueError("Timeout value out of range")
    if value > 9.2e9:  # the socket module's limit (a _PyTime_t of nanoseconds)
        raise OverflowError("timeout doesn't fit into C timeval")
    return value


class socket(_StdSocket):
    """``socket.socket`` for coroutines: same constructor, methods and errors."""

    # _recv_drained: set by the C recv when it got less than asked.
    __slots__ = ("_timeout", "_recv_drained")

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        super().__init__(family, type, proto, fileno)
        self._timeout = _stdsocket.getdefaulttimeout()
        _StdSocket.settimeout(self, 0.0)

    recv = _coio.socket_recv
    recv_into = _coio.socket_recv_into
    send = _coio.socket_send
    sendall = _coio.socket_sendall

    @property
    def timeout(self):
        return self._timeout

    def gettimeout(self):
        return self._timeout

    def settimeout(self, value):
        self._timeout = _check_timeout(value)

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0

    def getblocking(self):
        return self._timeout != 0.0

    def _wait(self, events):
        if _coio.wait(self, events, self._timeout) is False:
            raise TimeoutError("timed out")

    def _retry(self, method, events, *args):
        """Calls the non-blocking C method until it does not say EAGAIN."""
        while True:
            try:
                return method(self, *args)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
            self._wait(events)

    def recvfrom(self, bufsize, flags=0):
        return self._retry(_socket.socket.recvfrom, _EV_READ, bufsize, flags)

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        return self._retry(_socket.socket.recvfrom_into, _EV_READ, buffer, nbytes, flags)

    def recvmsg(self, *args):
        return self._retry(_socket.socket.recvmsg, _EV_READ, *args)

    def recvmsg_into(self, *args):
        return self._retry(_socket.socket.recvmsg_into, _EV_READ, *args)

    def sendto(self, *args):
        return self._retry(_socket.socket.sendto, _EV_WRITE, *args)

    def sendmsg(self, *args):
        return self._retry(_socket.socket.sendmsg, _EV_WRITE, *args)

    def accept(self):
        fd, addr = self._retry(_socket.socket._accept, _EV_READ)
        return socket(self.family, self.type, self.proto, fileno=fd), addr

    def connect(self, address):
        err = self._connect(address)
        if err is None:
            raise TimeoutError("timed out")
        if err:
            raise OSError(err, os.strerror(err))

    def connect_ex(self, address):
        err = self._connect(address)
        return errno.EWOULDBLOCK if err is None else err  # the socket module's timeout answer

    def _connect(self, address):
        """connect_ex's errno, or None when the timeout passed."""
        address = _resolve_address(self.family, address)
        err = _socket.socket.connect_ex(self, address)
        if err not in _CONNECTING or self._timeout == 0.0:
            return err
        writable = lambda t: _coio.wait(self, _EV_WRITE, t)
        if not wait_again_after_early_wakeups(writable, self._timeout):
            return None
        return self.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ERROR)

    def sendfile(self, file, offset=0, count=None):
        """os.sendfile() for regular files, send() otherwise; parks on EAGAIN."""
        self._check_sendfile_params(file, offset, count)
        try:
            fileno = file.fileno()
            size = os.fstat(fileno).st_size
        except (AttributeError, io.UnsupportedOperation, OSError):
            return self._sendfile_use_send(file, offset, count)
        if self._timeout == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        if count is None:
            count = max(size - offset, 0)
        total = 0
        try:
            while total < count:
                try:
                    sent = os.sendfile(self.fileno(), fileno, offset, min(count - total, 1 << 30))
                except BlockingIOError:
                    self._wait(_EV_WRITE)
                    continue
                if sent == 0:
                    break
                offset += sent
                total += sent
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset)

    # The hub keeps a readiness watch per socket fd between waits; every way
    # the fd leaves this object must drop it (and wake waiters with EBADF),
    # or a reused fd number would inherit a stale registration.
    def _real_close(self, _close=_socket.socket.close):
        fd = self.fileno()
        if fd >= 0:
            _coio.cancel_waiters(fd)
        _close(self)

    def detach(self):
        fd = self.fileno()
        if fd >= 0:
            _coio.cancel_waiters(fd)
        return super().detach()

    def __del__(self):
        fd = self.fileno()
        if fd >= 0:
            try:
                _warnings.warn("unclosed %r" % self, ResourceWarning, source=self)
            finally:  # the warning may be an error; the fd goes anyway
                _coio.cancel_waiters(fd)
                _socket.socket.close(self)


_coio.register_socket_class(socket)

SocketType = socket


def socketpair(family=None, type=_stdsocket.SOCK_STREAM, proto=0):
    if family is None:
        family = getattr(_stdsocket, "AF_UNIX", _stdsocket.AF_INET)
    a, b = _std_socketpair(family, type, proto)
    return (socket(a.family, a.type, a.proto, fileno=a.detach()),
            socket(b.family, b.type, b.proto, fileno=b.detach()))


def fromfd(fd, family, type, proto=0):
    return socket(family, type, proto, fileno=os.dup(fd))


def wrap(sock):
    """A coio socket taking over ``sock``'s fd (``sock`` is detached)."""
    timeout = sock.gettimeout()
    result = socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    result.settimeout(timeout)
    return result


def create_connection(address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *,
                      all_errors=False):
    """socket.create_connection on coio sockets and coio's resolver."""
    from ._coio_dns import getaddrinfo

    host, port = address
    errors = []
    for family, type_, proto, _, sockaddr in getaddrinfo(host, port, 0, _stdsocket.SOCK_STREAM):
        sock = None
        try:
            sock = socket(family, type_, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            errors.clear()
            return sock
        except OSError as exc:
            errors.append(exc)
            if sock is not None:
                sock.close()
    if not errors:
        raise OSError("getaddrinfo returns an empty list")
    if all_errors:
        raise ExceptionGroup("create_connection failed", errors)
    raise errors[0]


def create_server(address, *, family=_stdsocket.AF_INET, backlog=None, reuse_port=False,
                  dualstack_ipv6=False):
    """socket.create_server, returning a coio socket."""
    return wrap(_std_create_server(address, family=family, backlog=backlog,
                                         reuse_port=reuse_port, dualstack_ipv6=dualstack_ipv6))
