"""coio's TLS: ssl.SSLContext configures it, its handshake/read/write/unwrap
park only the calling tasklet, and it behaves as ssl.SSLSocket (timeouts,
EOFs, errors). Client and server are tasklets of this process on 127.0.0.1,
with certificates from trustme."""
import os
import socket
import ssl
import tempfile
import threading
import time
import urllib.request

import _socket
import pytest

import trustme

import syncless
from syncless import coio
from syncless._syncless import coio_module as _coio

stackless = syncless.install_stackless()


def spawn(function, *args):
    return stackless.tasklet(function)(*args)


def join(tasklets, timeout=10):
    """Lets tasklets finish (the hub runs meanwhile); kills what did not."""
    deadline = time.monotonic() + timeout
    while any(t.alive for t in tasklets) and time.monotonic() < deadline:
        coio.sleep(0.001)
    stragglers = [t for t in tasklets if t.alive]
    for t in stragglers:
        t.kill()
    assert not stragglers, "tasklets still running after %ss" % timeout


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca):
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture
def server_context(server_cert):
    context = coio.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(context)
    return context


@pytest.fixture
def client_context(ca):
    """A plain ssl.SSLContext: coio.wrap_socket makes it coio's."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    return context


class TlsServer:
    """Accepts ``count`` connections on 127.0.0.1; each is wrapped
    server-side and served by ``handler(tls)`` in a tasklet of its own.
    Handler exceptions land in ``errors``: a test expecting some clears them."""

    def __init__(self, context, handler, count=1):
        self.context = context
        self.handler = handler
        self.count = count
        self.errors = []
        self.tasklets = []

    def __enter__(self):
        self.listener = coio.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.tasklets.append(spawn(self._serve))
        return self

    def _serve(self):
        for _ in range(self.count):
            conn, _ = self.listener.accept()
            self.tasklets.append(spawn(self._handle, conn))

    def _handle(self, conn):
        try:
            with coio.wrap_socket(conn, self.context, server_side=True) as tls:
                self.handler(tls)
        except Exception as exc:
            self.errors.append(exc)

    def __exit__(self, *exc_info):
        try:
            join(self.tasklets)
        finally:
            self.listener.close()
        assert self.errors == []


def connect(address, context, server_hostname="localhost", **kwargs):
    return coio.wrap_socket(coio.create_connection(address), context,
                            server_hostname=server_hostname, **kwargs)


def echo(tls):
    while True:
        data = tls.recv(1 << 16)
        if not data:
            return
        tls.sendall(data)


def recv_exactly(tls, size):
    chunks = []
    while size:
        chunk = tls.recv(min(size, 1 << 20))
        assert chunk, "EOF %d bytes early" % size
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("size", [5, 6 << 20])
def test_echo_small_and_large(server_context, client_context, size):
    payload = os.urandom(size)
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls:
            assert isinstance(tls, ssl.SSLSocket) and isinstance(tls, coio.socket)
            assert type(tls) is coio.SSLSocket and tls.version() == "TLSv1.3"
            # Both directions stay busy at once: the echo would stall on a
            # client that wrote everything before reading.
            writer = spawn(tls.sendall, payload)
            assert recv_exactly(tls, size) == payload
            join([writer])


def test_coio_context_and_listener_accept(server_cert, client_context):
    # A plain server context on a wrapped listener: accept() still yields
    # coio's SSLSocket, handshaken.
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(plain)
    listener = coio.wrap_socket(coio.create_server(("127.0.0.1", 0)), plain, server_side=True)
    accepted = []

    def serve():
        conn, addr = listener.accept()
        accepted.append((type(conn), conn.version(), addr))
        with conn:
            echo(conn)

    with listener:
        server = spawn(serve)
        context = coio.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=client_context.get_ca_certs(True)[0])
        with context.wrap_socket(coio.socket(), server_hostname="localhost") as tls:
            assert type(tls) is coio.SSLSocket
            tls.connect(listener.getsockname())
            tls.sendall(b"hello")
            assert tls.recv(10) == b"hello"
            assert accepted == [(coio.SSLSocket, "TLSv1.3", tls.getsockname())]
        join([server])


def test_connect_ex_then_handshake(server_context, client_context):
    with TlsServer(server_context, echo) as server:
        tls = coio.wrap_socket(coio.socket(), client_context, server_hostname="localhost")
        with tls:
            assert tls.connect_ex(server.address) == 0
            assert tls.cipher() is not None
            tls.sendall(b"ping")
            assert tls.recv(10) == b"ping"


def test_stdlib_socket_is_taken_over_without_blocking_the_thread(server_context, client_context):
    with TlsServer(server_context, echo) as server:
        raw = socket.create_connection(server.address)
        with coio.wrap_socket(raw, client_context, server_hostname="localhost") as tls:
            assert raw.fileno() == -1
            assert tls.gettimeout() is None and _socket.socket.gettimeout(tls) == 0.0
            tls.sendall(b"ping")
            assert tls.recv(10) == b"ping"


def test_timeout_trio_is_copied_and_kept_apart_from_the_c_timeout(server_context,
                                                                   client_context):
    with TlsServer(server_context, echo) as server:
        raw = coio.create_connection(server.address, timeout=5)
        with coio.wrap_socket(raw, client_context, server_hostname="localhost") as tls:
            assert tls.gettimeout() == 5.0 and tls.timeout == 5.0 and tls.getblocking()
            tls.setblocking(False)
            assert tls.gettimeout() == 0.0 and not tls.getblocking()
            tls.settimeout(None)
            assert tls.gettimeout() is None
            assert _socket.socket.gettimeout(tls) == 0.0


def test_sni_callback_sees_the_name(server_context, client_context):
    seen = []
    server_context.sni_callback = lambda sock, name, context: seen.append(
        (type(sock), name))
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context):
            pass
    assert seen == [(coio.SSLSocket, "localhost")]


def test_alpn_selects_on_both_sides(server_context, client_context):
    server_context.set_alpn_protocols(["h2", "http/1.1"])
    client_context.set_alpn_protocols(["http/1.1", "spdy/3"])
    selected = []
    with TlsServer(server_context, lambda tls: selected.append(tls.selected_alpn_protocol())) \
            as server:
        with connect(server.address, client_context) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
    assert selected == ["http/1.1"]


def test_hostname_mismatch_raises_cert_verification_error(server_context, client_context):
    with TlsServer(server_context, echo) as server:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            connect(server.address, client_context, server_hostname="wrong.example")
        assert info.value.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
        join(server.tasklets)
        assert [type(e) for e in server.errors] == [ssl.SSLError]
        server.errors.clear()


def test_mutual_tls(ca, server_context, client_context):
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    ca.issue_cert("client.example").configure_cert(client_context)
    peers = []

    def handler(tls):
        peers.append(tls.getpeercert()["subjectAltName"])
        echo(tls)

    with TlsServer(server_context, handler) as server:
        with connect(server.address, client_context) as tls:
            tls.sendall(b"mutual")
            assert tls.recv(10) == b"mutual"
    assert peers == [(("DNS", "client.example"),)]


def test_mutual_tls_without_a_client_cert_fails(ca, server_context, client_context):
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls:
            # TLS 1.3: the client hears of the refusal on its first read.
            with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
                tls.recv(10)
        join(server.tasklets)
        assert [type(e) for e in server.errors] == [ssl.SSLError]
        server.errors.clear()


def test_session_resumption(server_context, client_context):
    with TlsServer(server_context, echo, count=2) as server:
        with connect(server.address, client_context) as tls:
            tls.sendall(b"x")
            assert tls.recv(1) == b"x"  # the session ticket came before it
            session = tls.session
            assert not tls.session_reused
        with connect(server.address, client_context, session=session) as tls:
            assert tls.session_reused


def test_unwrap_back_to_a_plain_coio_socket(server_context, client_context):
    def handler(tls):
        assert tls.recv(100) == b"stop tls"
        plain = tls.unwrap()
        assert plain is tls and plain.version() is None
        assert plain.recv(100) == b"clear request"
        plain.sendall(b"clear reply")

    with TlsServer(server_context, handler) as server:
        with connect(server.address, client_context) as tls:
            tls.sendall(b"stop tls")
            plain = tls.unwrap()
            assert isinstance(plain, coio.socket) and plain.cipher() is None
            plain.sendall(b"clear request")
            assert plain.recv(100) == b"clear reply"
            with pytest.raises(ValueError, match="No SSL wrapper around"):
                plain.unwrap()


def test_makefile_readline_and_write(server_context, client_context):
    def handler(tls):
        with tls.makefile("rwb") as f:
            for line in f:
                f.write(b"> " + line)
                f.flush()

    with TlsServer(server_context, handler) as server:
        with connect(server.address, client_context) as tls:
            with tls.makefile("rb") as reader, tls.makefile("wb") as writer:
                writer.write(b"one\ntwo\n")
                writer.flush()
                assert reader.readline() == b"> one\n"
                assert reader.readline() == b"> two\n"


def test_sendfile_goes_through_tls(server_context, client_context):
    content = os.urandom(1 << 20)
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls, tempfile.TemporaryFile() as f:
            f.write(content)
            f.seek(0)
            writer = spawn(lambda: tls.sendfile(f))
            assert recv_exactly(tls, len(content)) == content
            join([writer])
            assert f.tell() == len(content)


@pytest.mark.parametrize("suppress", [True, False])
def test_ragged_eof(server_context, client_context, suppress):
    with TlsServer(server_context, lambda tls: None) as server:
        with connect(server.address, client_context, suppress_ragged_eofs=suppress) as tls:
            if suppress:
                assert tls.recv(10) == b""
                assert tls.recv_into(bytearray(10)) == 0
            else:
                with pytest.raises(ssl.SSLEOFError):
                    tls.recv(10)


def test_stdlib_errors_for_datagram_calls_and_dup(server_context, client_context):
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls:
            with pytest.raises(ValueError, match="recvfrom not allowed on instances of"):
                tls.recvfrom(10)
            with pytest.raises(ValueError, match="sendto not allowed on instances of"):
                tls.sendto(b"x", server.address)
            with pytest.raises(NotImplementedError, match="recvmsg not allowed"):
                tls.recvmsg(10)
            with pytest.raises(NotImplementedError, match="Can't dup"):
                tls.dup()
            with pytest.raises(ValueError, match="non-zero flags not allowed in calls to recv"):
                tls.recv(10, socket.MSG_PEEK)


def test_handshake_timeout_against_a_silent_server(client_context):
    with coio.create_server(("127.0.0.1", 0)) as silent:  # listens, never answers
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="The handshake operation timed out"):
            coio.wrap_socket(coio.create_connection(silent.getsockname(), timeout=0.2),
                             client_context, server_hostname="localhost")
        assert 0.15 < time.monotonic() - start < 2


def test_read_and_write_timeouts(server_context, client_context):
    release = stackless.channel()
    with TlsServer(server_context, lambda tls: release.receive()) as server:
        with connect(server.address, client_context) as tls:
            tls.settimeout(0.1)
            with pytest.raises(TimeoutError, match="^The read operation timed out$"):
                tls.recv(10)
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            with pytest.raises(TimeoutError, match="^The write operation timed out$"):
                tls.sendall(b"x" * (16 << 20))
        release.send(None)


def test_timeout_zero_raises_ssl_want_errors(server_context, client_context):
    with TlsServer(server_context, echo, count=3) as server:
        with connect(server.address, client_context) as tls:
            tls.settimeout(0)
            with pytest.raises(ssl.SSLWantReadError):
                tls.recv(10)
            with pytest.raises(ssl.SSLWantReadError):
                tls.recv_into(bytearray(10))
        raw = coio.create_connection(server.address)
        raw.setblocking(False)
        with pytest.raises(ValueError, match="do_handshake_on_connect should not be specified"):
            coio.wrap_socket(raw, client_context, server_hostname="localhost")
        raw = coio.create_connection(server.address)
        raw.setblocking(False)
        with coio.wrap_socket(raw, client_context, server_hostname="localhost",
                              do_handshake_on_connect=False) as tls:
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            tls.do_handshake(block=True)
            assert tls.version() == "TLSv1.3" and tls.gettimeout() == 0.0
        join(server.tasklets)
        # The refused one closed before its ClientHello.
        assert [type(e) for e in server.errors] == [ssl.SSLEOFError]
        server.errors.clear()


def test_other_tasklets_run_while_a_client_waits_on_a_slow_server(server_context,
                                                                  client_context):
    def slow(tls):
        request = tls.recv(100)
        coio.sleep(0.3)
        tls.sendall(request.upper())

    ticks = []
    done = []

    def ticker():
        while not done:
            ticks.append(time.monotonic())
            coio.sleep(0.01)

    with TlsServer(server_context, slow) as server:
        ticking = spawn(ticker)
        with connect(server.address, client_context) as tls:
            tls.sendall(b"slow")
            before = len(ticks)
            assert tls.recv(100) == b"SLOW"
            assert len(ticks) - before >= 10
        done.append(True)
        join([ticking])


def test_many_slow_handshakes_and_replies_overlap(server_context, client_context):
    count = 20

    def slow(tls):
        coio.sleep(0.3)
        tls.sendall(tls.recv(100))

    replies = []

    def client(i):
        with connect(server.address, client_context) as tls:
            tls.sendall(b"%d" % i)
            replies.append(tls.recv(100))

    with TlsServer(server_context, slow, count=count) as server:
        start = time.monotonic()
        join([spawn(client, i) for i in range(count)])
        assert time.monotonic() - start < 0.3 * count / 4
    assert sorted(replies) == sorted(b"%d" % i for i in range(count))


class Marker(Exception):
    pass


def bomb_and_insert(t):
    t.tempval = stackless.bomb(Marker, Marker("bomb"))
    t.insert()


INTERRUPTIONS = {
    "kill": lambda t: t.kill(),
    "raise_exception": lambda t: t.raise_exception(Marker, "raised"),
    "bomb": bomb_and_insert,
}


@pytest.mark.parametrize("how", sorted(INTERRUPTIONS))
def test_interrupting_a_tasklet_blocked_in_ssl_recv(server_context, client_context, how):
    outcome = []

    def reader(tls):
        try:
            outcome.append(tls.recv(10))
        except BaseException as exc:
            outcome.append(exc)
            if isinstance(exc, TaskletExit):
                raise

    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls:
            t = spawn(reader, tls)
            stackless.schedule()
            # The reader's wait and the server's.
            assert t.alive and not t.scheduled and _coio.waiting() == 2
            INTERRUPTIONS[how](t)
            join([t])
            assert not t.alive and len(outcome) == 1
            assert isinstance(outcome[0], TaskletExit if how == "kill" else Marker)
            assert _coio.waiting() == 1
            # The connection survives: nothing was half-read.
            tls.sendall(b"after")
            assert tls.recv(10) == b"after"


def test_insert_alone_makes_ssl_recv_wait_again(server_context, client_context):
    with TlsServer(server_context, echo) as server:
        with connect(server.address, client_context) as tls:
            got = []
            t = spawn(lambda: got.append(tls.recv(10)))
            stackless.schedule()
            t.insert()
            stackless.schedule()
            stackless.schedule()
            assert got == [] and t.alive and not t.scheduled
            tls.sendall(b"late")
            join([t])
            assert got == [b"late"]


def test_close_wakes_an_ssl_recv_with_ebadf(server_context, client_context):
    errors = []

    def reader(tls):
        try:
            tls.recv(10)
        except OSError as exc:
            errors.append(exc)

    with TlsServer(server_context, echo) as server:
        tls = connect(server.address, client_context)
        t = spawn(reader, tls)
        stackless.schedule()
        tls.close()
        join([t])
    assert [e.errno for e in errors] == [9] and _coio.waiting() == 0


def test_stdlib_blocking_client_in_a_thread(server_context, ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    replies = []

    def client(address):
        with socket.create_connection(address, timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            for message in (b"one", b"two" * 100000):
                tls.sendall(message)
                data = b""
                while len(data) < len(message):
                    data += tls.recv(1 << 16)
                replies.append(data == message)

    with TlsServer(server_context, echo) as server:
        thread = threading.Thread(target=client, args=(server.address,))
        thread.start()
        join(server.tasklets)
    thread.join()
    assert replies == [True, True]


def test_coio_client_against_a_stdlib_server_in_a_thread(server_cert, client_context):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            while data := tls.recv(1 << 16):
                tls.sendall(data)

    thread = threading.Thread(target=serve)
    thread.start()
    with listener, connect(listener.getsockname(), client_context) as tls:
        tls.sendall(b"interop")
        assert tls.recv(100) == b"interop"
    thread.join()


def test_urlopen_https_with_a_coio_context(ca, server_context):
    def http(tls):
        with tls.makefile("rb") as request:
            while request.readline() not in (b"\r\n", b""):
                pass
        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

    context = coio.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    with TlsServer(server_context, http) as server:
        url = "https://127.0.0.1:%d/" % server.address[1]
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            assert response.status == 200 and response.read() == b"hello"
