"""Line-based chat server: every line a client sends goes to all the others.

Each connection gets two tasklets: a reader doing blocking-style readline()
on a coio.nbfile over the socket, and a writer sending whatever arrives in the
client's coio.Queue. Broadcasting only appends to queues, so a client that
reads slowly holds up its own queue, never the sender or anyone else.

    python chat_server.py [PORT]       # serve 127.0.0.1:PORT (default 8008);
                                       # connect a few: nc 127.0.0.1 8008
                                       # (the first line you send is your name)
    python chat_server.py --self-test  # three client tasklets chat, then exit
"""
import sys

import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)

room = {}  # name -> that client's outgoing coio.Queue of lines


def broadcast(line, sender=None):
    for name, outbox in room.items():
        if name != sender:
            outbox.append(line)


def writer(f, outbox, conn):
    """Sends the queued lines until the reader queues None; then hangs up."""
    try:
        for line in iter(outbox.popleft, None):
            f.write(line)
    except OSError:
        pass  # the client is gone: its reader sees that too and tidies up
    finally:
        conn.close()


def handle(conn):
    # Unbuffered writes (limit 0): each line leaves as soon as it is written.
    f = coio.nbfile(conn.fileno(), conn.fileno(), write_buffer_limit=0)
    outbox = coio.Queue([b"* welcome! the first line you send is your name\n"])
    stackless.tasklet(writer)(f, outbox, conn)
    name = None
    try:
        name = f.readline().strip().decode(errors="replace") or "anonymous"
        while name in room:
            name += "_"
        outbox.append(b"* hello %s; also here: %s\n" %
                      (name.encode(), ", ".join(room).encode() or b"nobody"))
        broadcast(b"* %s joined\n" % name.encode())
        room[name] = outbox
        for line in f:  # ends at EOF
            broadcast(b"%s: %s" % (name.encode(), line), sender=name)
    except OSError:
        pass  # a reset or a writer that hung up already: the client left
    finally:
        if room.pop(name, None) is not None:
            broadcast(b"* %s left\n" % name.encode())
        outbox.append(None)  # the writer ends after what is queued


def serve(listener):
    while True:
        conn, _ = listener.accept()
        stackless.tasklet(handle)(conn)


def client(port, name, joined, go, done):
    with coio.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as lines:
        lines.readline()  # the welcome
        sock.sendall(name + b"\n")
        print(lines.readline().decode().rstrip())  # "* hello NAME; also here: ..."
        joined.send(name)
        go.receive()  # everyone is in the room: talk
        sock.sendall(b"hello from %s\n" % name)
        heard = 0
        while heard < 2:  # one line from each of the other two
            line = lines.readline().decode().rstrip()
            if not line.startswith("*"):
                print("%s heard: %s" % (name.decode(), line))
                heard += 1
    done.send(name)


def self_test():
    listener = coio.create_server(("127.0.0.1", 0))
    server = stackless.tasklet(serve)(listener)
    joined, go, done = stackless.channel(), stackless.channel(), stackless.channel()
    names = [b"alice", b"bob", b"carol"]
    for name in names:
        stackless.tasklet(client)(listener.getsockname()[1], name, joined, go, done)
    # Nobody talks before all have joined, so everyone hears every line.
    for _ in names:
        joined.receive()
    for _ in names:
        go.send(None)
    for _ in names:
        done.receive()
    server.kill()
    listener.close()
    stackless.run()  # every reader sees its client leave; every writer ends
    print("left in the room: %d" % len(room))


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return
    port = int(argv[1]) if len(argv) > 1 else 8008
    listener = coio.create_server(("127.0.0.1", port))
    print("chat on 127.0.0.1:%d (Ctrl-C stops)" % port)
    serve(listener)


if __name__ == "__main__":
    main(sys.argv)
