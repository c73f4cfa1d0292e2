"""Timeout, receive_with_timeout, run_with_timeout, Queue, the thread pool,
Waker, select and the selectors selector."""
import os
import selectors
import threading
import time

import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()


def test_timeout_interrupts_a_channel_receive_and_is_suppressed():
    channel = stackless.channel()
    start = time.monotonic()
    with coio.Timeout(0.02) as clock:
        channel.receive()
    assert clock.expired and 0.015 < time.monotonic() - start < 1
    assert channel.balance == 0


def test_timeout_interrupts_io_and_sleep():
    a, b = coio.socketpair()
    with a, b:
        with coio.Timeout(0.02) as clock:
            a.recv(1)
        assert clock.expired
    with coio.Timeout(0.02) as clock:
        coio.sleep(10)
    assert clock.expired


def test_timeout_that_does_not_expire_leaves_nothing_behind():
    with coio.Timeout(10) as clock:
        coio.sleep(0.001)
    assert not clock.expired
    stackless.run()
    assert stackless.getruncount() == 1


def test_timeout_with_a_custom_exception_and_change():
    class Slow(Exception):
        pass

    clock = coio.Timeout(10, Slow)
    with clock:
        clock.change(0.01)
        coio.sleep(1)
    assert clock.expired
    with pytest.raises(ZeroDivisionError):
        with coio.Timeout(1):
            1 / 0


def test_one_timeout_over_several_reads():
    a, b = coio.socketpair()
    with a, b:
        def trickle():
            for _ in range(100):
                b.sendall(b"x")
                coio.sleep(0.01)

        writer = stackless.tasklet(trickle)()
        got = []
        with coio.Timeout(0.05) as clock:
            while True:
                got.append(a.recv(1))
        assert clock.expired and 2 <= len(got) < 20
        writer.kill()


def test_receive_with_timeout():
    channel = stackless.channel()
    assert coio.receive_with_timeout(0.01, channel, "default") == "default"
    stackless.tasklet(channel.send)("value")
    assert coio.receive_with_timeout(1, channel) == "value"
    stackless.tasklet(channel.send)("plain")
    assert coio.receive_with_timeout(None, channel) == "plain"


def test_run_with_timeout():
    assert coio.run_with_timeout(lambda x: x * 2, 1, args=(21,)) == 42
    assert coio.run_with_timeout(coio.sleep, 0.01, "late", args=(10,)) == "late"
    with pytest.raises(KeyError):
        coio.run_with_timeout(lambda: {}["missing"], 1)
    stackless.run()
    assert stackless.getruncount() == 1


def test_queue_order_and_blocked_consumers():
    q = coio.Queue([1, 2, 3])
    assert len(q) == 3 and q.pop() == 3 and q.popleft() == 1
    q.appendleft(0)
    assert list(q) == [0, 2]
    q.popleft(), q.popleft()
    got = []
    for name in "ab":
        stackless.tasklet(lambda n: got.append((n, q.popleft())))(name)
    stackless.schedule()
    assert q.pending_receiver_count == 2 and not q
    q.append("first")
    q.appendleft("second")
    stackless.run()
    assert got == [("a", "first"), ("b", "second")]


def test_thread_pool_runs_calls_in_threads_while_tasklets_run():
    pool = coio.thread_pool(2)
    ticks = []
    stackless.tasklet(lambda: [ticks.append(coio.sleep(0.01)) for _ in range(5)])()
    main_thread = threading.get_ident()
    result = pool(lambda: (time.sleep(0.08), threading.get_ident())[1])
    assert result != main_thread
    assert len(ticks) >= 3  # the ticker ran while the pool worked
    with pytest.raises(ValueError, match="boom"):
        pool(lambda: (_ for _ in ()).throw(ValueError("boom")))
    results = []
    for i in range(6):
        stackless.tasklet(lambda i: results.append(pool(lambda: (time.sleep(0.01), i)[1])))(i)
    stackless.run()
    assert sorted(results) == list(range(6)) and pool.thread_count <= 2


def test_waker_fired_from_another_thread():
    waker = coio.Waker()
    threading.Timer(0.02, waker.fire).start()
    start = time.monotonic()
    waker.wait()
    assert waker.fired and time.monotonic() - start >= 0.015
    waker.wait()  # already fired: returns at once


def test_select_returns_the_callers_objects():
    a, b = coio.socketpair()
    with a, b:
        assert coio.select([a], [], [], 0) == ([], [], [])
        r, w, x = coio.select([a], [b], [], 0)
        assert (r, w, x) == ([], [b], [])
        stackless.tasklet(lambda: (coio.sleep(0.01), b.sendall(b"x")))()
        r, w, x = coio.select([a, b.fileno()], [], [], 5)
        assert r == [a]
        start = time.monotonic()
        assert coio.select([b], [], [], 0.02) == ([], [], [])
        assert time.monotonic() - start >= 0.015
        with pytest.raises(TypeError):
            coio.select(["x"], [], [])


def test_selector_parks_until_ready():
    rfd, wfd = os.pipe()
    try:
        with coio.DefaultSelector() as selector:
            key = selector.register(rfd, selectors.EVENT_READ, "data")
            assert selector.select(0) == []
            stackless.tasklet(lambda: (coio.sleep(0.01), os.write(wfd, b"x")))()
            ready = selector.select()
            assert ready == [(key, selectors.EVENT_READ)] and key.data == "data"
            selector.unregister(rfd)
            assert selector.select(0.01) == []
    finally:
        os.close(rfd)
        os.close(wfd)


def test_thread_pool_starts_a_thread_per_queued_call_in_a_burst():
    pool = coio.thread_pool(4)
    done = []
    for _ in range(4):
        stackless.tasklet(lambda: done.append(pool(time.sleep, 0.2)))()
    start = time.monotonic()
    stackless.run()
    assert len(done) == 4 and pool.thread_count == 4
    assert time.monotonic() - start < 0.6  # one thread would take 0.8 s
