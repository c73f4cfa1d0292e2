"""coio.select: a classic select() loop that parks only its own tasklet.

coio.select(rlist, wlist, xlist, timeout) takes and returns what
select.select does (sockets, or anything with a fileno()). Here one tasklet
serves every connection with the textbook select() loop, while client
tasklets in the same thread connect and talk to it: select.select would
freeze the thread, and so the clients, until something were ready, which
then never would be.

    python select_demo.py   # runs by itself and exits
                            # (--self-test is accepted and changes nothing)
"""
import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)


def select_loop(listener, expected):
    """Echoes in upper case what each connection sends; returns once
    ``expected`` connections have come and gone."""
    ready, _, _ = coio.select([listener], [], [], 0)  # timeout 0: only a poll
    print("server: %d ready before any client ran" % len(ready))
    connections = []
    gone = 0
    while gone < expected:
        readable, _, _ = coio.select([listener] + connections, [], [])  # no timeout
        for sock in readable:
            if sock is listener:
                conn, address = listener.accept()
                connections.append(conn)
                print("server: accepted a client from port %d" % address[1])
                continue
            data = sock.recv(4096)  # readable: this does not wait
            if data:
                sock.sendall(data.upper())
            else:
                connections.remove(sock)
                sock.close()
                gone += 1
                print("server: a client hung up (%d of %d)" % (gone, expected))
    ready, _, _ = coio.select([listener], [], [], 0.2)
    print("server: %d more clients within 0.2 s; done" % len(ready))


def client(port, name):
    with coio.create_connection(("127.0.0.1", port)) as sock:
        for word in (b"hello", b"bye"):
            sock.sendall(b"%s from %s" % (word, name))
            print("%s got: %s" % (name.decode(), sock.recv(4096).decode()))
            coio.sleep(0.05)  # the other clients take their turns meanwhile


def main():
    listener = coio.create_server(("127.0.0.1", 0))
    names = [b"alice", b"bob", b"carol"]
    for name in names:
        stackless.tasklet(client)(listener.getsockname()[1], name)
    with listener:
        select_loop(listener, len(names))


if __name__ == "__main__":
    main()
