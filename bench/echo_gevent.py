"""Echo server on gevent's StreamServer, for bench/echo.py.

Usage: echo_gevent.py PORT. Prints "ready" once it listens.
"""

import sys

import greenlet

# The peer is gevent on the real greenlet package. Syncless's drop-in (put
# first on PYTHONPATH, or by install_greenlet) would make it a different test.
if "syncless" in greenlet.__file__:
    sys.exit(f"gevent would run on syncless's greenlet ({greenlet.__file__})")

from gevent.server import StreamServer


def handle(conn, addr):
    # StreamServer closes conn when this returns.
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)


server = StreamServer(("127.0.0.1", int(sys.argv[1])), handle, backlog=1024)
server.start()
print("ready", flush=True)
server.serve_forever()
