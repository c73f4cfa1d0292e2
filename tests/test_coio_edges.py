"""Edge cases found in review: the hub tasklet cannot be killed, dup'ed or
cross-thread-closed sockets do not leave the hub spinning or deaf, forked
children get working pools, and stdlib corner semantics (MSG_WAITALL,
connect_ex timeouts, huge timeouts, regular files, sleep(0))."""
import errno
import os
import resource
import socket
import tempfile
import threading
import time

import greenlet
import pytest

import syncless
from syncless import coio, patch

stackless = syncless.install_stackless()


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_the_hub_tasklet_cannot_be_killed_removed_or_rebound():
    hub = coio.get_main_loop_tasklet()
    for attempt in (hub.kill, hub.remove, lambda: hub.throw(ValueError),
                    lambda: hub.bind(print)):
        with pytest.raises(RuntimeError, match="coio hub tasklet"):
            attempt()
    coio.sleep(0.001)  # and it still serves waits


def test_closing_one_of_two_dups_leaves_the_hub_idle():
    # A deferred epoll delete after close() left the other fd's open file
    # registered: epoll_wait returned at once forever.
    a, b = coio.socketpair()
    twin = a.dup()
    with b, twin:
        b.sendall(b"x")
        assert a.recv(1) == b"x"
        b.sendall(b"y")  # readable again when a closes
        a.close()
        before = cpu_seconds()
        coio.sleep(0.2)
        assert cpu_seconds() - before < 0.1


def test_a_socket_closed_in_another_thread_leaves_no_stale_watch():
    a, b = coio.socketpair()
    b.sendall(b"x")
    assert a.recv(1) == b"x"  # a's fd now has a watch in this thread's hub
    old_fd = a.fileno()
    closer = threading.Thread(target=a.close)
    closer.start()
    closer.join()
    b.close()
    c, d = coio.socketpair()
    with c, d:
        assert old_fd in (c.fileno(), d.fileno())
        reader = c if c.fileno() == old_fd else d
        writer = d if reader is c else c
        stackless.tasklet(lambda: (coio.sleep(0.01), writer.sendall(b"hello")))()
        reader.settimeout(5)
        assert reader.recv(5) == b"hello"


def test_a_close_in_another_thread_wakes_the_waiter_with_ebadf():
    a, b = coio.socketpair()
    outcome = []

    def waiter():
        try:
            a.recv(1)
        except OSError as exc:
            outcome.append(exc.errno)

    t = stackless.tasklet(waiter)()
    stackless.schedule()
    assert t.alive and not t.scheduled
    closer = threading.Thread(target=a.close)
    closer.start()
    closer.join()
    deadline = time.monotonic() + 5
    while t.alive and time.monotonic() < deadline:
        coio.sleep(0.001)
    b.close()
    assert outcome == [errno.EBADF]


# The pool's idle workers are threads: forking beside them is the point.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_thread_pool_works_in_a_forked_child():
    pool = coio.thread_pool(2)
    assert pool(lambda: 41) == 41
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = 0 if pool(lambda: 42) == 42 else 2
        finally:
            os._exit(status)
    _, status = coio.thread_pool(1)(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_recv_waitall_and_own_dontwait_follow_the_socket_module():
    a, b = coio.socketpair()
    with a, b:
        def trickle():
            for _ in range(10):
                b.sendall(b"0123456789")
                coio.sleep(0.001)

        stackless.tasklet(trickle)()
        assert a.recv(100, socket.MSG_WAITALL) == b"0123456789" * 10
        with pytest.raises(BlockingIOError):
            a.recv(10, socket.MSG_DONTWAIT)
        stackless.run()  # the writer's last sleep


def test_connect_ex_after_a_timeout_returns_an_errno():
    with coio.create_server(("127.0.0.1", 0), backlog=0) as server:
        address = server.getsockname()
        fillers = []
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(address)
            fillers.append(c)
        time.sleep(0.05)
        try:
            with coio.socket() as s:
                s.settimeout(0.05)
                assert s.connect_ex(address) == errno.EWOULDBLOCK
            with coio.socket() as s:
                s.settimeout(0.05)
                with pytest.raises(TimeoutError, match="timed out"):
                    s.connect(address)
        finally:
            for c in fillers:
                c.close()


def test_huge_timeouts_are_refused_like_the_stdlib():
    with pytest.raises(OverflowError):
        coio.sleep(1e19)
    with pytest.raises(OverflowError):
        coio.sleep(float("inf"))
    with coio.socket() as s:
        with pytest.raises(OverflowError):
            s.settimeout(1e19)
    with pytest.raises(OverflowError):
        coio.wait_readable(0, 1e19)


def test_a_regular_file_is_always_ready():
    with tempfile.TemporaryFile() as f:
        start = time.monotonic()
        assert coio.wait_readable(f, 5) is True
        assert coio.wait_writable(f.fileno()) is True
        assert time.monotonic() - start < 1


def test_patched_time_sleep_zero_yields():
    ran = []
    stackless.tasklet(ran.append)(1)
    patch.patch_time()
    try:
        time.sleep(0)
    finally:
        patch.unpatch_all()
    assert ran == [1]


def test_an_empty_selector_waits_for_its_timeout():
    with coio.DefaultSelector() as selector:
        start = time.monotonic()
        assert selector.select(0.05) == []
        assert time.monotonic() - start >= 0.04


def test_a_subclass_storing_an_int_timeout_still_times_out_right():
    class Mine(coio.socket):
        pass

    a, b = socket.socketpair()
    with b, Mine(fileno=a.detach()) as s:
        s._timeout = 0.05  # the slot, bypassing settimeout
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recv(1)
        assert time.monotonic() - start >= 0.04
        s._timeout = "soon"
        with pytest.raises(TypeError):
            s.recv(1)


def test_a_greenlet_in_the_main_tasklet_resolves_names():
    g = greenlet.greenlet(lambda: coio.getaddrinfo("127.0.0.1", 80)[0][4])
    assert g.switch() == ("127.0.0.1", 80)


def test_the_leak_check_sees_a_watch_left_on_a_closed_fd():
    from syncless._syncless import coio_module as _coio

    a, b = coio.socketpair()
    with b:
        stackless.tasklet(lambda: (coio.sleep(0.01), b.sendall(b"x")))()
        assert a.recv(1) == b"x"  # it waited: a's fd has a watch now
        os.close(a.fileno())  # behind coio's back
        assert _coio.stale_watches() == 1
        a.detach()  # the object lets go of the fd: the watch goes
        assert _coio.stale_watches() == 0
