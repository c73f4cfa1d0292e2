"""coio's TLS: an ``ssl.SSLSocket`` whose handshake, reads, writes and
unwrap park only the calling tasklet.

Any ``ssl.SSLContext`` keeps configuring the connection (options, verify
mode, ALPN, SNI callback, ciphers, sessions); ``coio.SSLContext`` is one whose
``wrap_socket`` returns coio's SSLSocket, and ``wrap_socket(sock, context)``
does the same for an existing context.

The SSLSocket is also a ``coio.socket``: its C-level timeout stays 0.0, so
OpenSSL never blocks the thread and says SSLWantReadError/SSLWantWriteError
instead; those become waits on the fd under the socket's own timeout (None
forever; 0.0 raises them like a stdlib non-blocking SSLSocket; a positive
value bounds each wait and raises the stdlib's TimeoutError). Before the
handshake and after unwrap() it is a plain coio socket.
"""
import builtins
import ssl as _stdssl

from ._syncless import coio_module as _coio
from ._coio_socket import socket as _CoioSocket

_EV_READ = _coio.EV_READ
_EV_WRITE = _coio.EV_WRITE
_MAX_RECORD = 16384  # TLS plaintext bytes per record

# The stdlib's TimeoutError messages, indexed by the direction waited for
# (False: read, True: write); only unwrap's depends on it.
_READ_TIMED_OUT = ("The read operation timed out",) * 2
_WRITE_TIMED_OUT = ("The write operation timed out",) * 2
_HANDSHAKE_TIMED_OUT = ("The handshake operation timed out",) * 2
_SHUTDOWN_TIMED_OUT = ("The read operation timed out", "The write operation timed out")


class SSLSocket(_stdssl.SSLSocket, _CoioSocket):
    """``ssl.SSLSocket`` for coroutines: made by ``SSLContext.wrap_socket``
    (of coio.SSLContext) or ``coio.wrap_socket``; same methods and errors."""

    def _call(self, method, messages, *args):
        """Runs a non-blocking _ssl call until OpenSSL needs no more I/O."""
        while True:
            try:
                return method(*args)
            except _stdssl.SSLWantReadError:
                if self._timeout == 0.0:
                    raise
                events = _EV_READ
            except _stdssl.SSLWantWriteError:
                if self._timeout == 0.0:
                    raise
                events = _EV_WRITE
            # Woken early (None): retry, like the plain socket's C calls.
            if _coio.wait(self, events, self._timeout) is False:
                raise TimeoutError(messages[events == _EV_WRITE])

    def do_handshake(self, block=False):
        self._check_connected()
        timeout = self.gettimeout()
        try:
            if timeout == 0.0 and block:
                self.settimeout(None)
            self._call(self._sslobj.do_handshake, _HANDSHAKE_TIMED_OUT)
        finally:
            self.settimeout(timeout)

    # A read that got less than asked and less than a full record most likely
    # ended what the peer wrote: the next one waits for readability first
    # rather than pay for an SSL_read that fails (request/response traffic
    # hits this on every message). OpenSSL reads no further than the record
    # it decrypts, so pending() == 0 means nothing is buffered.
    _read_drained = False

    def read(self, len=1024, buffer=None):
        if self._sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        if self._read_drained and self._timeout != 0.0 and not self._sslobj.pending():
            if _coio.wait(self, _EV_READ, self._timeout) is False:
                raise TimeoutError(_READ_TIMED_OUT[0])
        try:
            if buffer is None:
                data = self._call(self._sslobj.read, _READ_TIMED_OUT, len)
                got = builtins.len(data)
            else:
                data = got = self._call(self._sslobj.read, _READ_TIMED_OUT, len, buffer)
        except _stdssl.SSLError as x:
            if x.args[0] == _stdssl.SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return b"" if buffer is None else 0
            raise
        self._read_drained = 0 < got < len and got < _MAX_RECORD
        return data

    def write(self, data):
        if self._sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        return self._call(self._sslobj.write, _WRITE_TIMED_OUT, data)

    def recv(self, buflen=1024, flags=0):
        if self._sslobj is None:
            return _CoioSocket.recv(self, buflen, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to recv() on %s"
                             % self.__class__)
        return self.read(buflen)

    def recv_into(self, buffer, nbytes=None, flags=0):
        if nbytes is None:
            if buffer is not None:
                with memoryview(buffer) as view:
                    nbytes = view.nbytes
                if not nbytes:
                    nbytes = 1024
            else:
                nbytes = 1024
        if self._sslobj is None:
            return _CoioSocket.recv_into(self, buffer, nbytes, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to recv_into() on %s"
                             % self.__class__)
        return self.read(nbytes, buffer)

    def send(self, data, flags=0):
        if self._sslobj is None:
            return _CoioSocket.send(self, data, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to send() on %s"
                             % self.__class__)
        return self._call(self._sslobj.write, _WRITE_TIMED_OUT, data)

    def sendall(self, data, flags=0):
        if self._sslobj is None:
            return _CoioSocket.sendall(self, data, flags)
        if flags != 0:
            raise ValueError("non-zero flags not allowed in calls to sendall() on %s"
                             % self.__class__)
        # _ssl writes all or nothing (it does not set
        # SSL_MODE_ENABLE_PARTIAL_WRITE), and each retry after
        # SSLWantWriteError passes the same buffer, as OpenSSL requires.
        with memoryview(data) as view:
            if view.nbytes:
                self._call(self._sslobj.write, _WRITE_TIMED_OUT, view)

    def unwrap(self):
        if self._sslobj:
            s = self._call(self._sslobj.shutdown, _SHUTDOWN_TIMED_OUT)
            self._sslobj = None
            return s
        raise ValueError("No SSL wrapper around " + str(self))

    def accept(self):
        # The stdlib wraps through self.context.wrap_socket, which makes a
        # blocking ssl.SSLSocket unless the context is coio's.
        sock, addr = _CoioSocket.accept(self)
        return self._create(sock, server_side=True,
                            do_handshake_on_connect=self.do_handshake_on_connect,
                            suppress_ragged_eofs=self.suppress_ragged_eofs,
                            context=self.context), addr


class SSLContext(_stdssl.SSLContext):
    """``ssl.SSLContext`` whose ``wrap_socket`` returns coio's SSLSocket."""

    sslsocket_class = SSLSocket


def wrap_socket(sock, context, server_side=False, server_hostname=None,
                do_handshake_on_connect=True, suppress_ragged_eofs=True, session=None):
    """``context.wrap_socket(sock, ...)`` for any ``ssl.SSLContext``, returning
    coio's SSLSocket; ``sock`` (any socket.socket) is detached."""
    return SSLSocket._create(sock, server_side=server_side,
                             do_handshake_on_connect=do_handshake_on_connect,
                             suppress_ragged_eofs=suppress_ragged_eofs,
                             server_hostname=server_hostname, context=context, session=session)
