"""A tasklet blocked in any coio wait can be interrupted (FAQ A3-A5): a bomb
in tempval plus insert(), raise_exception, kill, throw; insert() alone ends a
sleep early and makes I/O retry. In every case the wait's registration is
gone afterwards (the conftest fixture checks coio_module.waiting() == 0)."""
import contextlib
import socket
import time

import pytest

import syncless
from syncless import coio
from syncless._syncless import coio_module as _coio

stackless = syncless.install_stackless()


class Marker(Exception):
    pass


@contextlib.contextmanager
def blocked_recv():
    a, b = coio.socketpair()
    with a, b:
        yield lambda: a.recv(10)


@contextlib.contextmanager
def blocked_send():
    a, b = coio.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        yield lambda: a.sendall(b"x" * (1 << 22))


@contextlib.contextmanager
def blocked_accept():
    with coio.create_server(("127.0.0.1", 0)) as server:
        yield server.accept


@contextlib.contextmanager
def blocked_recvfrom():
    with coio.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield lambda: s.recvfrom(100)


@contextlib.contextmanager
def blocked_connect():
    # A listener whose backlog is full drops further SYNs on loopback, so
    # the next connect stays in progress.
    with coio.create_server(("127.0.0.1", 0), backlog=0) as server:
        address = server.getsockname()
        fillers = []
        try:
            for _ in range(8):
                c = socket.socket()
                c.setblocking(False)
                c.connect_ex(address)
                fillers.append(c)
            time.sleep(0.05)
            probe = coio.socket()
            try:
                yield lambda: probe.connect(address)
            finally:
                probe.close()
        finally:
            for c in fillers:
                c.close()


@contextlib.contextmanager
def blocked_select():
    a, b = coio.socketpair()
    with a, b:
        yield lambda: coio.select([a], [], [])


@contextlib.contextmanager
def blocked_selector():
    a, b = coio.socketpair()
    with a, b, coio.DefaultSelector() as selector:
        selector.register(a, 1)
        yield selector.select


@contextlib.contextmanager
def blocked_wait_readable():
    a, b = coio.socketpair()
    with a, b:
        yield lambda: coio.wait_readable(a)


@contextlib.contextmanager
def blocked_waker():
    yield coio.Waker().wait


@contextlib.contextmanager
def blocked_sleep():
    yield lambda: coio.sleep(30)


@contextlib.contextmanager
def blocked_nbfile_readline():
    reader, writer = coio.pipe()
    with reader, writer:
        yield reader.readline


@contextlib.contextmanager
def blocked_thread_pool_call():
    # The caller is interrupted; the OS thread finishes its call and the
    # pool drops the result.
    yield lambda: coio.thread_pool(1)(time.sleep, 0.2)


PRIMITIVES = {
    "sleep": blocked_sleep,
    "recv": blocked_recv,
    "sendall": blocked_send,
    "accept": blocked_accept,
    "recvfrom": blocked_recvfrom,
    "connect": blocked_connect,
    "select": blocked_select,
    "selector": blocked_selector,
    "wait_readable": blocked_wait_readable,
    "waker": blocked_waker,
    "nbfile_readline": blocked_nbfile_readline,
    "thread_pool": blocked_thread_pool_call,
}


def run_blocked(block):
    """Starts a tasklet in block(); returns it (parked) and its outcome list."""
    outcome = []

    def body():
        try:
            outcome.append(("returned", block()))
        except BaseException as exc:
            outcome.append(("raised", exc))
            if isinstance(exc, TaskletExit):
                raise

    t = stackless.tasklet(body)()
    stackless.schedule()
    assert t.alive and not t.scheduled and _coio.waiting() >= 1
    return t, outcome


def bomb_and_insert(t):
    t.tempval = stackless.bomb(Marker, Marker("bomb"))
    t.insert()
    stackless.schedule()


def raise_exception(t):
    t.raise_exception(Marker, "raised")


def throw(t):
    t.throw(Marker("thrown"))


INTERRUPTIONS = {"bomb": bomb_and_insert, "raise_exception": raise_exception, "throw": throw}


@pytest.mark.parametrize("primitive", sorted(PRIMITIVES))
@pytest.mark.parametrize("how", sorted(INTERRUPTIONS))
def test_exception_reaches_the_blocked_tasklet(primitive, how):
    with PRIMITIVES[primitive]() as block:
        t, outcome = run_blocked(block)
        INTERRUPTIONS[how](t)
        stackless.run()
        assert len(outcome) == 1 and outcome[0][0] == "raised"
        assert isinstance(outcome[0][1], Marker)
        assert not t.alive
        assert _coio.waiting() == 0


@pytest.mark.parametrize("primitive", sorted(PRIMITIVES))
def test_kill_ends_the_blocked_tasklet(primitive):
    with PRIMITIVES[primitive]() as block:
        t, outcome = run_blocked(block)
        t.kill()
        assert not t.alive
        assert outcome[0][0] == "raised" and isinstance(outcome[0][1], TaskletExit)
        assert _coio.waiting() == 0


def test_insert_ends_a_sleep_early():
    t, outcome = run_blocked(lambda: coio.sleep(30))
    start = time.monotonic()
    t.insert()
    stackless.run()
    assert outcome == [("returned", None)]
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("primitive", ["recv", "accept", "wait_readable", "waker", "select"])
def test_insert_alone_makes_io_wait_again(primitive):
    with PRIMITIVES[primitive]() as block:
        t, outcome = run_blocked(block)
        t.insert()
        stackless.schedule()
        stackless.schedule()
        assert outcome == [] and t.alive and not t.scheduled
        assert _coio.waiting() == 1
        t.kill()


def test_close_wakes_a_waiter_with_ebadf():
    a, b = coio.socketpair()
    with b:
        t, outcome = run_blocked(lambda: a.recv(10))
        a.close()
        stackless.run()
    kind, exc = outcome[0]
    assert kind == "raised" and isinstance(exc, OSError) and exc.errno == 9
    assert "closed" in str(exc)


def test_a_dead_tasklet_parked_in_io_is_collected_with_its_socket():
    import gc
    import weakref

    a, b = coio.socketpair()
    t, outcome = run_blocked(lambda: a.recv(10))
    ref = weakref.ref(t)
    t.kill()
    del t
    gc.collect()
    assert ref() is None and _coio.waiting() == 0
    a.close()
    b.close()


def test_waiting_tasklet_survives_garbage_collection_of_its_handle():
    # Nothing but the hub's registration refers to a sleeping tasklet: it
    # must stay alive and finish.
    import gc

    done = []
    stackless.tasklet(lambda: (coio.sleep(0.01), done.append(1)))()
    stackless.schedule()
    gc.collect()
    stackless.run()
    assert done == [1]


def test_waiting_on_a_bad_fd_raises_at_once():
    import errno
    import os

    r, w = os.pipe()
    os.close(r)
    os.close(w)
    for fd in (r, 99999):
        with pytest.raises(OSError) as info:
            coio.wait_readable(fd)
        assert info.value.errno == errno.EBADF
    with pytest.raises(OSError):
        coio.select([r], [], [], None)
