"""Heartbeat: a ticker tasklet keeps printing while the main tasklet does
blocking-style work.

The work is ordinary code calling time.sleep() (think: a slow query or a
download). After patch.patch_time() that sleep parks only the main tasklet,
so the ticker runs in between; unpatched, it would freeze the whole thread
and no tick would appear until the work was over.

    python heartbeat.py   # takes about a second, then exits
                          # (--self-test is accepted and changes nothing)
"""
import time

import syncless

stackless = syncless.install_stackless()

from syncless import coio, patch  # noqa: E402  (after install_stackless)

TICK = 0.1  # seconds between heartbeats
STEP = 0.35  # seconds each work step waits


def ticker():
    beat = 0
    while True:
        coio.sleep(TICK)
        beat += 1
        print("  tick %d" % beat)


def main():
    patch.patch_time()
    heart = stackless.tasklet(ticker)()
    for step in range(1, 4):
        print("work step %d: started" % step)
        time.sleep(STEP)  # blocking-style: only this tasklet waits
        print("work step %d: done" % step)
    heart.kill()  # the work is over: stop the heartbeat, so the program ends
    print("all work done")


if __name__ == "__main__":
    main()
