"""Echo server: one tasklet per connection, written as plain blocking code.

accept(), recv() and sendall() look blocking, but each parks only the
tasklet that called it, so one thread serves every connection at once.

    python echo_server.py [PORT]       # serve 127.0.0.1:PORT (default 8007);
                                       # try: nc 127.0.0.1 8007
    python echo_server.py --self-test  # serve a free port to three client
                                       # tasklets, print what came back, exit
"""
import sys

import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)

open_connections = 0
peak_connections = 0


def handle(conn):
    global open_connections, peak_connections
    open_connections += 1
    peak_connections = max(peak_connections, open_connections)
    try:
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:  # the client hung up
                    break
                conn.sendall(data)
    except ConnectionError:
        pass  # a reset is a hang-up too; uncaught, it would reach the main tasklet
    finally:
        open_connections -= 1


def serve(listener):
    while True:
        conn, _ = listener.accept()
        stackless.tasklet(handle)(conn)


def client(port, name, done):
    with coio.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as replies:
        for i in range(3):
            sock.sendall(b"%s says %d\n" % (name, i))
            print("%s got back: %s" % (name.decode(), replies.readline().decode().rstrip()))
            coio.sleep(0.05)  # stay connected a while: the others run meanwhile
    done.send(name)


def self_test():
    listener = coio.create_server(("127.0.0.1", 0))
    server = stackless.tasklet(serve)(listener)
    done = stackless.channel()
    names = [b"alice", b"bob", b"carol"]
    for name in names:
        stackless.tasklet(client)(listener.getsockname()[1], name, done)
    for _ in names:
        done.receive()
    server.kill()
    listener.close()
    stackless.run()  # let the handlers see their clients' EOF and finish
    print("peak concurrent connections: %d" % peak_connections)
    print("open connections at exit: %d" % open_connections)


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return
    port = int(argv[1]) if len(argv) > 1 else 8007
    listener = coio.create_server(("127.0.0.1", port))
    print("echoing on 127.0.0.1:%d (Ctrl-C stops)" % port)
    serve(listener)


if __name__ == "__main__":
    main(sys.argv)
