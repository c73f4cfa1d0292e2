"""A greenlet that blocks in coio parks only itself (and the tasklet it runs
in): other tasklets and the hub keep running, and the wake-up resumes that
greenlet, not whoever switched to it."""
import time

import greenlet

import syncless
from syncless import coio

stackless = syncless.install_stackless()


def ticker(ticks, count=10, every=0.005):
    for _ in range(count):
        ticks.append(time.monotonic())
        coio.sleep(every)


def test_greenlet_in_the_main_tasklet_sleeps_while_tasklets_run():
    ticks = []
    stackless.tasklet(ticker)(ticks)

    def body(x):
        coio.sleep(0.03)
        return x * 2

    g = greenlet.greenlet(body)
    start = time.monotonic()
    assert g.switch(21) == 42
    assert g.dead and time.monotonic() - start >= 0.025
    assert len(ticks) >= 3  # the ticker ran while the greenlet slept
    stackless.run()


def test_greenlet_does_socket_io_and_switches_back_and_forth():
    a, b = coio.socketpair()
    with a, b:
        def reader():
            data = a.recv(10)
            back = greenlet.getcurrent().parent.switch(data)
            return back + a.recv(10)

        g = greenlet.greenlet(reader)
        stackless.tasklet(lambda: (coio.sleep(0.01), b.sendall(b"one")))()
        assert g.switch() == b"one"
        b.sendall(b"two")
        assert g.switch(b"1:") == b"1:two"
    stackless.run()


def test_a_greenlet_blocked_in_io_is_interrupted_through_its_tasklet():
    # The main tasklet carries the parked greenlet: an exception raised into
    # the tasklet lands in the greenlet's wait, whose registration goes.
    class Marker(Exception):
        pass

    a, b = coio.socketpair()
    with a, b:
        caught = []

        def body():
            try:
                a.recv(1)
            except Marker:
                caught.append(coio.waiting())
                return "interrupted"

        main = stackless.getcurrent()
        stackless.tasklet(lambda: (coio.sleep(0.01), main.raise_exception(Marker)))()
        g = greenlet.greenlet(body)
        assert g.switch() == "interrupted"
        assert caught == [0]
    stackless.run()
