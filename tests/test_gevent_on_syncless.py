"""Compiled gevent (the PyPI wheel, not PURE_PYTHON) running on Syncless's greenlet.

gevent's Cython modules bind to greenlet through its C ABI (``greenlet._C_API``),
so these tests exercise that ABI as well as the Python API. ``tests/conftest.py``
installs Syncless as ``greenlet`` before anything imports it; every test except
``test_greenlet_is_syncless`` also passes on the real greenlet, which is how the
suite itself is checked (``SYNCLESS_TEST_REAL_GREENLET=1 ... --noconftest``).

Only gevent's own modules (``gevent.socket`` etc.) are used: the stdlib is never
monkey-patched in this process, so a stray blocking call would hang the hub and
trip the timeout rather than silently pass.
"""

import importlib.machinery
import os
import sys

import pytest

import greenlet
import gevent
import gevent._gevent_cgreenlet
import gevent.event
import gevent.queue
import gevent.socket
from gevent.pywsgi import WSGIServer
from gevent.server import StreamServer

# A deadlocked hub would otherwise hang the whole run.
pytestmark = pytest.mark.timeout(60)

LOOPBACK = "127.0.0.1"


def _is_extension_module(module):
    return module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@pytest.mark.skipif(
    os.environ.get("SYNCLESS_TEST_REAL_GREENLET") == "1",
    reason="validating the suite against the real greenlet",
)
def test_greenlet_is_syncless():
    import syncless

    package_dir = os.path.realpath(os.path.dirname(syncless.__file__))
    greenlet_file = os.path.realpath(greenlet.__file__)
    assert os.path.commonpath([package_dir, greenlet_file]) == package_dir
    # The compiled Greenlet class was built against whichever greenlet type the
    # C ABI handed gevent at import time; it must be ours, not a stray real one.
    assert issubclass(gevent.Greenlet, greenlet.greenlet)
    assert isinstance(gevent.getcurrent(), greenlet.greenlet)


def test_gevent_is_compiled_on_default_loop():
    assert gevent.Greenlet is gevent._gevent_cgreenlet.Greenlet
    assert _is_extension_module(gevent._gevent_cgreenlet)
    loop = gevent.get_hub().loop
    # libev's Cython loop is gevent's default on Linux; the cffi loops are what
    # gevent falls back to when its extensions are unavailable.
    assert type(loop).__module__ == "gevent.libev.corecext"
    assert _is_extension_module(sys.modules[type(loop).__module__])
    assert loop.default


def test_spawn_joinall_results_and_start_order():
    started = []

    def work(n):
        started.append(n)
        gevent.sleep(0)
        return n * n

    greenlets = [gevent.spawn(work, n) for n in range(10)]
    assert started == []  # spawn only schedules; nothing runs until we yield
    done = gevent.joinall(greenlets, raise_error=True)

    assert started == list(range(10))
    assert len(done) == 10 and set(done) == set(greenlets)
    assert [g.value for g in greenlets] == [n * n for n in range(10)]
    assert all(g.dead and g.successful() for g in greenlets)


def test_sleep_zero_interleaves_round_robin():
    trace = []

    def step(name):
        for i in range(3):
            trace.append((name, i))
            gevent.sleep(0)

    gevent.joinall([gevent.spawn(step, "a"), gevent.spawn(step, "b")])
    assert trace == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_timed_sleeps_wake_in_deadline_order():
    woke = []

    def nap(name, seconds):
        gevent.sleep(seconds)
        woke.append(name)

    # Spawned out of deadline order, with gaps wide enough for a loaded machine.
    gevent.joinall(
        [gevent.spawn(nap, "slow", 0.3), gevent.spawn(nap, "fast", 0.05), gevent.spawn(nap, "mid", 0.15)]
    )
    assert woke == ["fast", "mid", "slow"]


def test_timeout_interrupts_blocked_greenlet():
    never_set = gevent.event.Event()

    def blocked():
        timeout = gevent.Timeout(0.05)
        with timeout:
            try:
                never_set.wait()
            except gevent.Timeout as exc:
                return exc is timeout
        return "not interrupted"

    g = gevent.spawn(blocked)
    g.join()
    assert g.value is True


def test_timeout_does_not_fire_when_work_finishes_in_time():
    def quick():
        timeout = gevent.Timeout(0.1)
        with timeout:
            gevent.sleep(0.01)
        # Outlive the original deadline: a timer left armed would raise here.
        gevent.sleep(0.2)
        return timeout.pending

    assert gevent.spawn(quick).get() is False


def test_event_set_wakes_all_waiters():
    event = gevent.event.Event()
    woke = []

    def waiter(n):
        result = event.wait()
        woke.append(n)
        return result

    waiters = [gevent.spawn(waiter, n) for n in range(5)]
    gevent.sleep(0.05)
    assert woke == [] and not any(g.dead for g in waiters)

    event.set()
    gevent.joinall(waiters, raise_error=True)
    assert sorted(woke) == list(range(5))
    assert [g.value for g in waiters] == [True] * 5


def test_queue_producer_consumer_fifo():
    queue = gevent.queue.Queue()
    received = []

    def producer():
        for n in range(20):
            queue.put(n)
            if n % 3 == 0:
                gevent.sleep(0)  # let the consumer drain mid-stream
        queue.put(StopIteration)

    def consumer():
        for item in queue:
            received.append(item)

    gevent.joinall([gevent.spawn(consumer), gevent.spawn(producer)], raise_error=True)
    assert received == list(range(20))


def test_queue_maxsize_blocks_put_until_get():
    queue = gevent.queue.Queue(maxsize=2)
    put_done = []

    def producer():
        for n in range(3):
            queue.put(n)
            put_done.append(n)

    g = gevent.spawn(producer)
    gevent.sleep(0.05)
    assert put_done == [0, 1] and not g.dead
    assert queue.qsize() == 2
    with pytest.raises(gevent.queue.Full):
        queue.put("extra", timeout=0.01)

    assert queue.get() == 0
    g.join(timeout=5)
    assert g.dead and put_done == [0, 1, 2]
    assert [queue.get(), queue.get()] == [1, 2]


def test_exception_in_spawned_greenlet_is_recorded():
    def fail():
        gevent.sleep(0)
        raise ValueError("boom")

    failed = gevent.spawn(fail)
    ok = gevent.spawn(lambda: "fine")
    gevent.joinall([failed, ok])

    assert failed.dead and not failed.successful()
    assert isinstance(failed.exception, ValueError)
    assert str(failed.exception) == "boom"
    assert failed.value is None
    with pytest.raises(ValueError, match="boom"):
        failed.get()

    assert ok.successful() and ok.exception is None and ok.value == "fine"


def test_kill_delivers_greenlet_exit_to_sleeping_greenlet():
    seen = []

    def sleeper():
        try:
            gevent.sleep(30)
        except gevent.GreenletExit as exc:
            seen.append(type(exc))
            raise
        finally:
            seen.append("finally")

    g = gevent.spawn(sleeper)
    gevent.sleep(0.01)
    assert not g.dead
    g.kill(block=True, timeout=5)

    assert g.dead
    assert seen == [gevent.GreenletExit, "finally"]
    # gevent treats GreenletExit as a clean exit and stores it as the value.
    assert g.successful()
    assert isinstance(g.value, gevent.GreenletExit)


@pytest.fixture
def start_server():
    servers = []

    def start(server):
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(timeout=1)


def _recv_all(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_stream_server_echoes_100_concurrent_clients(start_server):
    clients = 100
    active = [0]
    peak = [0]
    all_connected = gevent.event.Event()

    def echo(sock, _address):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        if peak[0] == clients:
            all_connected.set()
        try:
            # Hold every handler open until all clients are in, so the server
            # provably serves 100 connections at once rather than one by one.
            all_connected.wait()
            sock.sendall(_recv_all(sock))
        finally:
            active[0] -= 1

    server = start_server(StreamServer((LOOPBACK, 0), echo))

    def client(n):
        # Distinct content and sizes up to ~100 KB, so some payloads need
        # several recv/send rounds through the hub.
        payload = (b"client-%03d|" % n) * (n * 9 + 1)
        sock = gevent.socket.create_connection((LOOPBACK, server.server_port))
        try:
            sock.sendall(payload)
            sock.shutdown(gevent.socket.SHUT_WR)
            return _recv_all(sock) == payload
        finally:
            sock.close()

    jobs = [gevent.spawn(client, n) for n in range(clients)]
    gevent.joinall(jobs, raise_error=True)
    assert [job.value for job in jobs] == [True] * clients
    assert peak[0] == clients


def _http_get(reader, sock, path):
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path)
    status = reader.readline()
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers[b"content-length"]))


def test_wsgi_server_answers_1000_keepalive_requests(start_server):
    connections = 10
    requests_each = 100
    peers = set()

    def app(environ, start_response):
        peers.add(environ["REMOTE_PORT"])
        body = ("%s %s" % (environ["PATH_INFO"], environ["QUERY_STRING"])).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    # pywsgi writes headers and body with separate sends; with Nagle on, each
    # keep-alive round trip stalls ~40 ms on the client's delayed ACK. Linux
    # copies TCP_NODELAY from the listener to every accepted socket.
    listener = gevent.socket.socket()
    listener.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(connections)
    server = start_server(WSGIServer(listener, app, log=None, error_log=None))

    def client(c):
        sock = gevent.socket.create_connection((LOOPBACK, server.server_port))
        reader = sock.makefile("rb")
        bad = []
        try:
            for r in range(requests_each):
                status, headers, body = _http_get(reader, sock, b"/conn%d?req=%d" % (c, r))
                expected = b"/conn%d req=%d" % (c, r)
                if not status.startswith(b"HTTP/1.1 200") or body != expected:
                    bad.append((status, body))
                # Yield between requests so the ten connections interleave.
                gevent.sleep(0)
        finally:
            reader.close()
            sock.close()
        return bad

    jobs = [gevent.spawn(client, c) for c in range(connections)]
    gevent.joinall(jobs, raise_error=True)
    assert [job.value for job in jobs] == [[]] * connections
    # One server-side peer per client connection: every request reused it.
    assert len(peers) == connections
