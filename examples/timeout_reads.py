"""One deadline over several reads: coio.Timeout.

A per-read timeout (settimeout) restarts with every read, so a peer that
sends a line every now and then keeps it from ever firing. ``with
coio.Timeout(seconds):`` bounds the whole block instead, however many
blocking calls it makes: when time is up it raises into the tasklet wherever
it waits, and leaving the block swallows that exception.

    python timeout_reads.py              # type lines; reading stops 5 s after it began
    python timeout_reads.py --self-test  # a tasklet feeds a pipe a line every 0.2 s;
                                         # the reader gives up after 0.5 s
"""
import os
import sys
import time

import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)


def read_lines(f, seconds):
    """The lines f yields within ``seconds`` (all of them, if EOF comes first)."""
    start = time.monotonic()
    lines = []
    with coio.Timeout(seconds) as clock:
        for line in f:  # each readline() parks only this tasklet
            lines.append(line)
            print("got %r after %.1f s" % (line.decode().rstrip(), time.monotonic() - start))
    if clock.expired:
        print("timed out after %.1f s with %d lines" % (time.monotonic() - start, len(lines)))
    else:
        print("end of input after %.1f s with %d lines" % (time.monotonic() - start, len(lines)))
    return lines


def feed(writer, count, interval):
    for i in range(1, count + 1):
        coio.sleep(interval)
        writer.write(b"line %d\n" % i)
        writer.flush()


def self_test():
    reader, writer = coio.pipe()
    with reader, writer:
        # Each line comes within 0.2 s, yet the 0.5 s deadline covers them all.
        feeder = stackless.tasklet(feed)(writer, 10, 0.2)
        read_lines(reader, 0.5)
        feeder.kill()  # the reader has given up: stop feeding


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return
    print("type lines; reading stops after 5 s")
    # do_close=False: closing this file must not close the process's stdin.
    stdin = coio.fdopen(0, "r", do_close=False)
    try:
        read_lines(stdin, 5)
    finally:
        # coio made stdin non-blocking, and a terminal shares that flag with
        # the shell that started us: give it back as it was.
        os.set_blocking(0, True)


if __name__ == "__main__":
    main(sys.argv)
