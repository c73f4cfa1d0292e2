"""coio.socket behaves as socket.socket (families, types, timeouts, errors,
makefile, dup, sendfile) while its waits park only the calling tasklet."""
import errno
import os
import socket
import tempfile
import time

import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()


def spawn(function, *args):
    return stackless.tasklet(function)(*args)


def echo_server(server, count=1):
    def serve():
        for _ in range(count):
            conn, _ = server.accept()
            spawn(echo, conn)

    def echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    return spawn(serve)


@pytest.mark.parametrize("family, host", [(socket.AF_INET, "127.0.0.1"),
                                          (socket.AF_INET6, "::1")])
def test_tcp_echo_both_families(family, host):
    with coio.socket(family, socket.SOCK_STREAM) as server:
        server.bind((host, 0))
        server.listen()
        echo_server(server)
        with coio.socket(family, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname()[:2])
            client.sendall(b"ping" * 1000)
            got = b""
            while len(got) < 4000:
                got += client.recv(65536)
            assert got == b"ping" * 1000
    stackless.run()


def test_unix_stream_and_isinstance():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s")
        with coio.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen()
            echo_server(server)
            with coio.socket(socket.AF_UNIX) as client:
                assert isinstance(client, socket.socket)
                client.connect(path)
                client.sendall(b"unix")
                assert client.recv(10) == b"unix"
        stackless.run()


def test_udp_sendto_recvfrom_and_recvfrom_into():
    with coio.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
            coio.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        got = []
        spawn(lambda: got.append(a.recvfrom(100)))
        stackless.schedule()
        b.sendto(b"dgram", a.getsockname())
        stackless.run()
        assert got == [(b"dgram", b.getsockname())]
        buffer = bytearray(10)
        b.sendto(b"into", a.getsockname())
        assert a.recvfrom_into(buffer) == (4, b.getsockname())
        assert buffer[:4] == b"into"


def test_recv_into_and_nbytes():
    a, b = coio.socketpair()
    with a, b:
        b.sendall(b"0123456789")
        buffer = bytearray(8)
        assert a.recv_into(buffer, 4) == 4 and buffer[:4] == b"0123"
        assert a.recv_into(memoryview(buffer)) == 6 and buffer[:6] == b"456789"
        with pytest.raises(ValueError):
            a.recv_into(buffer, 100)


def test_timeouts_follow_the_socket_module():
    a, b = coio.socketpair()
    with a, b:
        assert a.gettimeout() is None and a.timeout is None and a.getblocking()
        a.settimeout(0.05)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out") as info:
            a.recv(1)
        assert info.type is socket.timeout
        assert 0.04 < time.monotonic() - start < 1
        a.settimeout(0)
        assert not a.getblocking()
        with pytest.raises(BlockingIOError) as info:
            a.recv(1)
        assert info.value.errno == errno.EAGAIN
        a.setblocking(True)
        assert a.gettimeout() is None
        with pytest.raises(ValueError, match="Timeout value out of range"):
            a.settimeout(-1)
        with pytest.raises(TypeError):
            a.settimeout("1")


def test_default_timeout_applies_like_the_socket_module():
    socket.setdefaulttimeout(0.5)
    try:
        with coio.socket() as s:
            assert s.gettimeout() == 0.5
    finally:
        socket.setdefaulttimeout(None)


def test_timeout_applies_per_wait_in_sendall():
    a, b = coio.socketpair()
    with a, b:
        a.settimeout(0.05)
        with pytest.raises(TimeoutError):
            a.sendall(b"x" * (1 << 24))  # nobody reads: the buffer fills


def test_accept_timeout_and_connection_refused():
    with coio.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.02)
        with pytest.raises(TimeoutError):
            server.accept()
        port = server.getsockname()[1]
    with coio.socket() as s:
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
    with coio.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


def test_makefile_reads_lines_through_coio():
    a, b = coio.socketpair()
    with a, b:
        reader = a.makefile("rb")

        def writer():
            for i in range(3):
                b.sendall(b"line %d\n" % i)
                coio.sleep(0.001)
            b.shutdown(socket.SHUT_WR)

        spawn(writer)
        assert list(reader) == [b"line 0\n", b"line 1\n", b"line 2\n"]
        reader.close()


def test_dup_detach_fromfd_keep_the_class_and_timeout():
    with coio.socket() as s:
        s.settimeout(3)
        d = s.dup()
        assert type(d) is coio.socket and d.gettimeout() == 3 and d.fileno() != s.fileno()
        d.close()
        f = coio.fromfd(s.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        assert type(f) is coio.socket and f.fileno() != s.fileno()
        f.close()
        fd = s.detach()
        assert s.fileno() == -1
        os.close(fd)


def test_operations_on_a_closed_socket_raise_ebadf():
    s = coio.socket()
    s.close()
    with pytest.raises(OSError) as info:
        s.recv(1)
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError):
        s.sendall(b"x")


def test_sendfile_sends_a_regular_file_while_others_run():
    payload = os.urandom(3 << 20)
    with tempfile.TemporaryFile() as f:
        f.write(payload)
        f.seek(0)
        a, b = coio.socketpair()
        with a, b:
            received = bytearray()

            def reader():
                while len(received) < len(payload):
                    received.extend(b.recv(1 << 16))

            spawn(reader)
            assert a.sendfile(f) == len(payload)
            stackless.run()
            assert received == payload and f.tell() == len(payload)


def test_create_connection_resolves_names_and_honours_timeout():
    with coio.create_server(("127.0.0.1", 0)) as server:
        echo_server(server)
        with coio.create_connection(("localhost", server.getsockname()[1]), timeout=5) as c:
            assert type(c) is coio.socket and c.gettimeout() == 5
            c.sendall(b"hi")
            assert c.recv(2) == b"hi"
    stackless.run()


CLIENTS = r"""
import sys
import syncless
stackless = syncless.install_stackless()
from syncless import coio
count, port = int(sys.argv[1]), int(sys.argv[2])
connections, good = [], []

def client(i):
    c = coio.create_connection(("127.0.0.1", port))
    connections.append(c)
    while len(connections) < count:  # all open at once before anyone talks
        coio.sleep(0.01)
    message = b"%d" % i
    c.sendall(message)
    good.append(c.recv(100) == message)

for i in range(count):
    stackless.tasklet(client)(i)
stackless.run()
print(len(good), sum(good))
"""


def test_ten_thousand_concurrent_connections_in_one_thread():
    import resource
    import subprocess
    import sys

    count = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + 200
    if hard < needed:
        pytest.xfail("the fd limit (%d) is below %d" % (hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        with coio.create_server(("127.0.0.1", 0), backlog=4096) as server:
            live = [0, 0]  # now, most at once

            def serve():
                for _ in range(count):
                    conn, _ = server.accept()
                    spawn(handle, conn)

            def handle(conn):
                live[0] += 1
                live[1] = max(live)
                with conn:
                    data = conn.recv(100)
                    conn.sendall(data)
                    conn.recv(1)  # until the client closes
                live[0] -= 1

            spawn(serve)
            child = subprocess.Popen(
                [sys.executable, "-c", "import resource; r = resource.RLIMIT_NOFILE; "
                 "resource.setrlimit(r, (resource.getrlimit(r)[1],) * 2); "
                 "exec(%r)" % CLIENTS, str(count), str(server.getsockname()[1])],
                stdout=subprocess.PIPE)
            output = []
            waiter = coio.thread_pool(1)
            spawn(lambda: output.append(waiter(child.communicate, timeout=240)[0]))
            stackless.run()
            assert child.returncode == 0
            assert output[0].split() == [b"%d" % count, b"%d" % count]
            assert live == [0, count]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
