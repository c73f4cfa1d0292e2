"""Syncless demo: compiled gevent running on Syncless's greenlet.

Installs Syncless's greenlet, then runs an ordinary gevent program (an echo
server with concurrent clients on 127.0.0.1) and a raw greenlet ping-pong,
and shows which greenlet implementation did the work.
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
    print("stack pool:", syncless.stack_pool_stats())
    return 0 if ok == CLIENTS else 1


if __name__ == "__main__":
    raise SystemExit(main())
