"""coio.thread_pool: blocking calls in OS threads while tasklets run.

Some calls block the whole thread inside C code: hashing big buffers,
compression, an unpatched time.sleep, a C database driver. ``pool(f, *args)``
runs f in one of the pool's OS threads and parks only the calling tasklet
until f returns (or raises, in the caller), so the other tasklets run on.
Calls overlap as far as f releases the GIL, which hashlib does for big data
and time.sleep always does. At most max_threads calls run at a time.

    python thread_pool.py   # a few seconds, then exits
                            # (--self-test is accepted and changes nothing)
"""
import hashlib
import time

import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)

BLOB = 64 << 20  # bytes hashed, by each of four algorithms


def ticker(ticks):
    while True:
        coio.sleep(0.02)
        ticks[0] += 1


def in_parallel(pool, function, args_list):
    """[pool(function, *args) for args in args_list], all at once, each in a
    tasklet of its own; also the seconds that took."""
    results = [None] * len(args_list)
    done = stackless.channel()

    def call(i, args):
        try:
            results[i] = pool(function, *args)
        finally:
            done.send(i)

    start = time.monotonic()
    for i, args in enumerate(args_list):
        stackless.tasklet(call)(i, args)
    for _ in args_list:
        done.receive()
    return results, time.monotonic() - start


def main():
    ticks = [0]
    heart = stackless.tasklet(ticker)(ticks)

    for threads in (4, 2):
        ticks[0] = 0
        _, elapsed = in_parallel(coio.thread_pool(threads), time.sleep, [(0.5,)] * 4)
        print("4 x time.sleep(0.5) on %d threads took %.2f s; the ticker ticked %d times"
              % (threads, elapsed, ticks[0]))

    ticks[0] = 0
    data = bytes(range(256)) * (BLOB // 256)
    algorithms = ["sha256", "sha512", "sha3_256", "blake2b"]

    def digest(name):  # runs in a pool thread; hashlib lets go of the GIL meanwhile
        return hashlib.new(name, data).hexdigest()

    digests, elapsed = in_parallel(coio.thread_pool(4), digest, [(name,) for name in algorithms])
    for name, digest in zip(algorithms, digests):
        print("%s of %d MiB: %s" % (name, BLOB >> 20, digest))
    print("hashing took %.2f s; the ticker ticked %d times" % (elapsed, ticks[0]))

    try:
        coio.thread_pool(1)(int, "forty-two")
    except ValueError as exc:
        print("an exception in the thread reached the caller: ValueError: %s" % exc)
    heart.kill()


if __name__ == "__main__":
    main()
