"""Echo server on syncless: coio sockets, one stackless tasklet per
connection, for bench/echo.py.

Usage: echo_syncless.py PORT. Prints "ready" once it listens.
"""

import socket
import sys

import syncless

stackless = syncless.install_stackless()
from syncless import coio


def handle(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()


# A socket.socket subclass whose blocking calls park only the calling tasklet.
server = coio.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(1024)
print("ready", flush=True)
while True:
    conn, addr = server.accept()
    stackless.tasklet(handle)(conn)
