"""Syncless demo: compiled gevent on Syncless's greenlet, then Stackless
tasklets running unmodified blocking code through coio.

Installs Syncless's greenlet, runs an ordinary gevent program (an echo
server with concurrent clients on 127.0.0.1) and a raw greenlet ping-pong,
and shows which greenlet implementation did the work. Then, in the same
process and thread, tasklets fetch pages with plain urllib after
syncless.patch: each page takes the server 0.2 s, and they overlap.
"""
import time

import syncless

syncless.install_greenlet()

import gevent  # noqa: E402  (must come after install_greenlet)
import greenlet  # noqa: E402
from gevent.server import StreamServer  # noqa: E402
from gevent.socket import create_connection  # noqa: E402

CLIENTS = 50


def echo(sock, _address):
    with sock:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


def client(port, n):
    payload = ("hello from client %d\n" % n).encode()
    with create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
    return got == payload


def ping_pong(switches):
    main = greenlet.getcurrent()

    def pong():
        while True:
            main.switch()

    partner = greenlet.greenlet(pong)
    start = time.perf_counter()
    for _ in range(switches // 2):
        partner.switch()
    return (time.perf_counter() - start) / switches * 1e9


PAGES = 20
PAGE_DELAY = 0.2


def blocking_fetches():
    """Plain urllib in tasklets, against a coio HTTP server on loopback."""
    import urllib.request

    from syncless import coio, patch

    stackless = syncless.install_stackless()
    patch.patch_all()
    server = coio.create_server(("127.0.0.1", 0), backlog=PAGES)

    def handle(conn):
        with conn, conn.makefile("rwb", buffering=0) as f:
            path = f.readline().split()[1]
            while f.readline() not in (b"\r\n", b""):
                pass
            coio.sleep(PAGE_DELAY)  # the slow backend
            body = b"page " + path
            f.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def serve():
        for _ in range(PAGES):
            stackless.tasklet(handle)(server.accept()[0])

    pages = []

    def fetch(n):
        url = "http://127.0.0.1:%d/%d" % (server.getsockname()[1], n)
        with urllib.request.urlopen(url, timeout=10) as response:
            pages.append(response.read())

    stackless.tasklet(serve)()
    for n in range(PAGES):
        stackless.tasklet(fetch)(n)
    start = time.perf_counter()
    stackless.run()
    elapsed = time.perf_counter() - start
    server.close()
    patch.unpatch_all()
    print("urllib in %d tasklets: %d pages of %.1f s each in %.2f s"
          % (PAGES, len(pages), PAGE_DELAY, elapsed))
    return len(pages) == PAGES and elapsed < PAGES * PAGE_DELAY / 2


def main():
    print("greenlet implementation:", greenlet.__file__)
    server = StreamServer(("127.0.0.1", 0), echo)
    server.start()
    jobs = [gevent.spawn(client, server.server_port, n) for n in range(CLIENTS)]
    gevent.joinall(jobs, timeout=30)
    server.stop()
    ok = sum(1 for job in jobs if job.value)
    print("gevent echo: %d/%d clients got their bytes back" % (ok, CLIENTS))
    print("greenlet switch: %.0f ns per switch" % ping_pong(1_000_000))
    fetched = blocking_fetches()
    print("stack pool:", syncless.stack_pool_stats())
    return 0 if ok == CLIENTS and fetched else 1


if __name__ == "__main__":
    raise SystemExit(main())
