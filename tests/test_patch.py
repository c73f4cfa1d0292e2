"""syncless.patch: unmodified clients (urllib, http.client, smtplib, ftplib,
PyMySQL, mysql-connector, redis-py) run concurrently in tasklets. Each test
proves the overlap by time: N calls that each wait T on the server finish in
about T, not N * T."""
import os
import select
import selectors
import socket
import subprocess
import sys
import time

import pytest

import syncless
from syncless import coio, patch

stackless = syncless.install_stackless()

N = 5
DELAY = 0.3


@pytest.fixture
def patched():
    patch.patch_all()
    try:
        yield
    finally:
        patch.unpatch_all()


def run_concurrently(function, count=N):
    """Runs function(i) in count tasklets; returns (results, seconds)."""
    results = [None] * count
    errors = []
    finished = stackless.channel()

    def body(i):
        try:
            results[i] = function(i)
        except Exception as exc:  # reported below with the test's assert
            errors.append(exc)
        finally:
            finished.send(i)

    start = time.monotonic()
    for i in range(count):
        stackless.tasklet(body)(i)
    for _ in range(count):  # servers' tasklets may live on: wait for these
        finished.receive()
    elapsed = time.monotonic() - start
    if errors:
        raise errors[0]
    return results, elapsed


def assert_overlapped(elapsed, count=N, delay=DELAY):
    assert elapsed < delay * count / 2, "%.2f s: the calls ran one after another" % elapsed


class LineServer:
    """A coio TCP server on loopback running handler(conn_file, conn) per
    connection in a tasklet; stop() closes it and waits for its handlers."""

    def __init__(self, handler):
        self.handler = handler
        self.server = coio.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.server.getsockname()[1]
        self.handlers = []
        self.acceptor = stackless.tasklet(self.accept_loop)()

    def accept_loop(self):
        while True:
            conn, _ = self.server.accept()
            self.handlers.append(stackless.tasklet(self.handle)(conn))

    def handle(self, conn):
        with conn, conn.makefile("rwb", buffering=0) as f:
            try:
                self.handler(f, conn)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.acceptor.kill()
        self.server.close()
        # The clients closed their ends: each handler sees EOF and ends.
        deadline = time.monotonic() + 10
        while any(t.alive for t in self.handlers) and time.monotonic() < deadline:
            coio.sleep(0.001)


def test_patch_all_is_idempotent_and_undoable():
    originals = (socket.socket, socket.create_connection, socket.getaddrinfo, time.sleep,
                 select.select, select.poll, selectors.DefaultSelector, os.popen,
                 subprocess.Popen._wait)
    patch.patch_all()
    patch.patch_all()
    try:
        assert socket.socket is coio.socket and time.sleep is patch._sleep
        assert select.select is coio.select and selectors.DefaultSelector is coio.DefaultSelector
    finally:
        patch.unpatch_all()
    assert (socket.socket, socket.create_connection, socket.getaddrinfo, time.sleep,
            select.select, select.poll, selectors.DefaultSelector, os.popen,
            subprocess.Popen._wait) == originals


def test_time_sleep_and_select_park_only_the_tasklet(patched):
    _, elapsed = run_concurrently(lambda i: time.sleep(DELAY))
    assert_overlapped(elapsed)
    a, b = socket.socketpair()
    with a, b:
        _, elapsed = run_concurrently(lambda i: select.select([a], [], [], DELAY))
        assert_overlapped(elapsed)
        poller = select.poll()
        poller.register(a, select.POLLIN)
        assert poller.poll(0) == []
        b.sendall(b"x")
        assert poller.poll(1000) == [(a.fileno(), select.POLLIN)]


def http_handler(f, conn):
    while True:
        request = f.readline()
        if not request:
            return
        while f.readline() not in (b"\r\n", b"\n", b""):
            pass
        coio.sleep(DELAY)
        body = b"hello " + request.split()[1]
        f.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def test_urllib_and_http_client(patched):
    import http.client
    import urllib.request

    with LineServer(http_handler) as server:
        port = server.port

        def fetch(i):
            with urllib.request.urlopen("http://127.0.0.1:%d/u%d" % (port, i), timeout=10) as r:
                return r.read()

        results, elapsed = run_concurrently(fetch)
        assert results == [b"hello /u%d" % i for i in range(N)]
        assert_overlapped(elapsed)

        def client(i):
            conn = http.client.HTTPConnection("localhost", port, timeout=10)
            conn.request("GET", "/c%d" % i)
            body = conn.getresponse().read()
            conn.close()
            return body

        results, elapsed = run_concurrently(client)
        assert results == [b"hello /c%d" % i for i in range(N)]
        assert_overlapped(elapsed)


def test_urllib_https_with_a_plain_ssl_context(patched):
    # patch_ssl: an ordinary ssl.SSLContext now makes coio TLS sockets.
    import ssl
    import urllib.request

    import trustme

    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    server = coio.create_server(("127.0.0.1", 0), backlog=64)
    port = server.getsockname()[1]
    handlers = []

    def serve():
        with server_context.wrap_socket(server, server_side=True) as tls_server:
            assert isinstance(tls_server, coio.SSLSocket)
            while True:
                conn, _ = tls_server.accept()
                handlers.append(stackless.tasklet(reply)(conn))

    def reply(conn):
        with conn, conn.makefile("rwb", buffering=0) as f:
            http_handler(f, conn)

    acceptor = stackless.tasklet(serve)()

    def fetch(i):
        url = "https://localhost:%d/s%d" % (port, i)
        with urllib.request.urlopen(url, context=client_context, timeout=10) as r:
            return r.read()

    try:
        results, elapsed = run_concurrently(fetch)
    finally:
        acceptor.kill()
        deadline = time.monotonic() + 10
        while any(t.alive for t in handlers) and time.monotonic() < deadline:
            coio.sleep(0.001)
    assert results == [b"hello /s%d" % i for i in range(N)]
    assert_overlapped(elapsed)


def smtp_handler(f, conn):
    f.write(b"220 localhost ESMTP test\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb == b"DATA":
            f.write(b"354 go ahead\r\n")
            while f.readline() not in (b".\r\n", b""):
                pass
            coio.sleep(DELAY)
            f.write(b"250 queued\r\n")
        elif verb == b"QUIT":
            f.write(b"221 bye\r\n")
            return
        else:
            f.write(b"250 ok\r\n")


def test_smtplib(patched):
    import smtplib

    with LineServer(smtp_handler) as server:
        port = server.port

        def send(i):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                return smtp.sendmail("a@example.com", ["b@example.com"], "Subject: %d\r\n\r\nhi" % i)

        results, elapsed = run_concurrently(send)
        assert results == [{}] * N
        assert_overlapped(elapsed)


def ftp_handler(f, conn):
    f.write(b"220 test ftp\r\n")
    data_server = None
    while True:
        line = f.readline()
        if not line:
            return
        verb, _, arg = line.strip().partition(b" ")
        verb = verb.upper()
        if verb == b"PASV":
            data_server = coio.create_server(("127.0.0.1", 0))
            port = data_server.getsockname()[1]
            f.write(b"227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n" % (port >> 8, port & 255))
        elif verb == b"RETR":
            f.write(b"150 sending\r\n")
            data, _ = data_server.accept()
            coio.sleep(DELAY)
            with data:
                data.sendall(b"contents of " + arg)
            data_server.close()
            f.write(b"226 done\r\n")
        elif verb == b"QUIT":
            f.write(b"221 bye\r\n")
            return
        elif verb in (b"USER",):
            f.write(b"331 password please\r\n")
        else:
            f.write(b"230 ok\r\n" if verb == b"PASS" else b"200 ok\r\n")


def test_ftplib(patched):
    import ftplib

    with LineServer(ftp_handler) as server:
        port = server.port

        def retrieve(i):
            chunks = []
            with ftplib.FTP() as ftp:
                ftp.connect("127.0.0.1", port, timeout=10)
                ftp.login("user", "secret")
                ftp.retrbinary("RETR file%d" % i, chunks.append)
            return b"".join(chunks)

        results, elapsed = run_concurrently(retrieve)
        assert results == [b"contents of file%d" % i for i in range(N)]
        assert_overlapped(elapsed)


def test_pymysql_queries_overlap(patched, mariadb_server):
    import pymysql

    def query(i):
        connection = pymysql.connect(**mariadb_server.connect_args)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT SLEEP(%s), %s", (DELAY, i))
                return cursor.fetchone()[1]
        finally:
            connection.close()

    results, elapsed = run_concurrently(query)
    assert results == list(range(N))
    assert_overlapped(elapsed)


def test_mysql_connector_pure_queries_overlap(patched, mariadb_server):
    import mysql.connector

    def query(i):
        connection = mysql.connector.connect(use_pure=True, **mariadb_server.connect_args)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT SLEEP(%s), %s", (DELAY, i))
            return cursor.fetchone()[1]
        finally:
            connection.close()

    results, elapsed = run_concurrently(query)
    assert results == list(range(N))
    assert_overlapped(elapsed)


def test_redis_blocking_pops_overlap(patched, redis_server):
    import redis

    def pop(i):
        client = redis.Redis(host="127.0.0.1", port=redis_server.port)
        try:
            client.delete("list%d" % i)
            assert client.blpop(["list%d" % i], timeout=DELAY) is None
            client.rpush("list%d" % i, "v%d" % i)
            return client.lpop("list%d" % i)
        finally:
            client.close()

    results, elapsed = run_concurrently(pop)
    assert results == [b"v%d" % i for i in range(N)]
    assert_overlapped(elapsed)


def test_subprocess_wait_and_communicate_park_only_the_tasklet(patched):
    def child(i):
        proc = subprocess.Popen([sys.executable, "-c",
                                 "import time, sys; time.sleep(%r); print(%d)" % (DELAY, i)],
                                stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=20)
        return proc.wait(), int(out)

    results, elapsed = run_concurrently(child)
    assert results == [(0, i) for i in range(N)]
    # Interpreter start-up dominates; sequential would be N times it.
    assert elapsed < N * (DELAY + 0.05)


def test_os_popen_reads_text(patched):
    with os.popen("echo hello; echo world") as f:
        assert f.read() == "hello\nworld\n"


def test_stdio_input_parks_only_the_reader():
    script = """
import syncless
stackless = syncless.install_stackless()
from syncless import coio, patch
patch.patch_stdio()
ticks = []
stackless.tasklet(lambda: [ticks.append(coio.sleep(0.01)) for _ in range(1000)])()
line = input()
print("got %s after %d ticks" % (line, len(ticks)))
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    out, _ = child.communicate("hello\n", timeout=20)
    words = out.split()
    assert child.returncode == 0 and words[:2] == ["got", "hello"]
    assert int(words[3]) >= 5  # the ticker ran while input() waited


def test_socketserver_serves_in_a_tasklet(patched):
    # socketserver picked its selector class at import; patch_select
    # replaces it too, so serve_forever() parks instead of blocking.
    import http.server
    import urllib.request

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"served " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    serving = stackless.tasklet(server.serve_forever)(0.05)
    port = server.server_address[1]
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/x" % port, timeout=10) as r:
            assert r.read() == b"served /x"
    finally:
        # shutdown() would block the thread in threading.Event.wait(): the
        # serving tasklet is killed in its wait instead.
        serving.kill()
        server.server_close()
    assert not serving.alive
