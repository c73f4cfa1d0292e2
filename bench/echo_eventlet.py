"""Echo server on eventlet (listen, then one green thread per connection),
for bench/echo.py.

Usage: echo_eventlet.py PORT. Prints "ready" once it listens.
"""

import sys

import greenlet

# The peer is eventlet on the real greenlet package, not on syncless's drop-in.
if "syncless" in greenlet.__file__:
    sys.exit(f"eventlet would run on syncless's greenlet ({greenlet.__file__})")

import eventlet


def handle(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()


server = eventlet.listen(("127.0.0.1", int(sys.argv[1])), backlog=1024)
print("ready", flush=True)
while True:
    conn, addr = server.accept()
    eventlet.spawn(handle, conn)
