"""The stackless face across OS threads (shared spec stackless.md §2.2 last
row, §2.3, §2.9): channels whose partner waits in another thread, insert/
run/kill/throw/bind_thread on another thread's tasklets, a thread whose
tasklets all wait sleeping until another thread wakes one (or raising the
deadlock errors when none can), run(threadblock=True), a thread parked in
its hub's epoll_wait woken by another thread, and Ctrl-C while main waits."""
import _thread
import signal
import threading
import time

import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]

DEADLOCK = r"Deadlock: the last runnable tasklet cannot be blocked\."


def until(condition):
    """Polls (with the GIL let go) until another thread made it true."""
    while not condition():
        time.sleep(0.001)


class Worker:
    """A thread that runs `body` and keeps what it returns or raises."""

    def __init__(self, body, daemon=False):
        self.result = self.error = None
        self.thread = threading.Thread(target=self._main, args=(body,), daemon=daemon)
        self.thread.start()
        self.ident = self.thread.ident

    def _main(self, body):
        try:
            self.result = body()
        except BaseException as exc:  # noqa: B036 - handed to the test
            self.error = exc

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


# --- channels between threads ----------------------------------------------


@pytest.mark.parametrize("preference", [-1, 0, 1])
def test_main_receives_what_another_thread_sends(preference):
    c = stackless.channel()
    c.preference = preference
    worker = Worker(lambda: [c.send(i) for i in range(3)])
    assert [c.receive() for _ in range(3)] == [0, 1, 2]
    worker.join()
    assert c.balance == 0


@pytest.mark.parametrize("preference", [-1, 0, 1])
def test_another_thread_receives_what_main_sends(preference):
    c = stackless.channel()
    c.preference = preference
    worker = Worker(lambda: [c.receive() for _ in range(3)])
    for i in range(3):
        c.send(i)
    assert worker.join() == [0, 1, 2]
    assert c.balance == 0


@pytest.mark.parametrize("schedule_all", [0, 1])
@pytest.mark.parametrize("preference", [-1, 0, 1])
def test_a_partner_in_another_thread_never_switches_the_acting_tasklet(preference, schedule_all):
    # Same thread, preference -1 would switch to the receiver at once; here
    # the receiver only becomes runnable in its own thread and main goes on
    # (the local tasklet has not run when send() returns).
    c = stackless.channel()
    c.preference, c.schedule_all = preference, schedule_all
    got = []
    worker = Worker(lambda: got.append((c.receive(), threading.get_ident())))
    until(lambda: c.balance == -1)
    ran = []
    stackless.tasklet(ran.append)("local")
    assert c.send("x") is None
    assert ran == [] and c.balance == 0
    worker.join()
    assert got == [("x", worker.ident)]
    stackless.run()
    assert ran == ["local"]


@pytest.mark.parametrize("preference", [-1, 0, 1])
@pytest.mark.parametrize("main_sends", [True, False])
def test_ten_thousand_messages_between_threads(main_sends, preference):
    n = 10_000
    c = stackless.channel()
    c.preference = preference
    if main_sends:
        worker = Worker(lambda: [c.receive() for _ in range(n)])
        for i in range(n):
            c.send(i)
        received = worker.join()
    else:
        worker = Worker(lambda: [c.send(i) for i in range(n)])
        received = [c.receive() for _ in range(n)]
        worker.join()
    assert received == list(range(n))
    assert c.balance == 0


def test_tasklets_of_both_threads_talk_over_one_channel():
    c, out = stackless.channel(), []

    def thread_body():
        finished = stackless.channel()

        def echo():
            for _ in range(3):
                c.send(("echo", c.receive()))
            finished.send(None)

        stackless.tasklet(echo)()
        finished.receive()  # its ring empties whenever echo waits for main

    worker = Worker(thread_body)
    for word in "abc":
        c.send(word)
        out.append(c.receive())
    worker.join()
    assert out == [("echo", "a"), ("echo", "b"), ("echo", "c")]


def test_an_exception_sent_to_another_thread_is_raised_there():
    c = stackless.channel()

    def thread_body():
        with pytest.raises(ValueError, match="over there"):
            c.receive()
        return "caught"

    worker = Worker(thread_body)
    until(lambda: c.balance == -1)
    c.send_exception(ValueError, "over there")
    assert worker.join() == "caught"


def test_the_channel_callback_runs_after_an_exchange_with_another_thread():
    c, seen = stackless.channel(), []
    worker = Worker(c.receive)
    until(lambda: c.balance == -1)

    def callback(channel, tasklet, sending, willblock):
        seen.append((channel, tasklet, sending, willblock, channel.balance))

    stackless.set_channel_callback(callback)
    try:
        c.send(5)
    finally:
        stackless.set_channel_callback(None)
    assert worker.join() == 5
    assert seen == [(c, stackless.main, 1, 0, 0)]


def test_a_partner_whose_thread_ended_has_no_thread():
    c = stackless.channel()

    def thread_body():
        stackless.tasklet(c.receive)().run()

    Worker(thread_body).join()
    assert c.balance == -1
    with pytest.raises(RuntimeError, match="tasklet has no thread"):
        c.send(1)
    assert c.balance == -1
    c.queue.kill()
    assert c.balance == 0


def test_tasklets_of_a_thread_that_ended_cannot_run():
    made = {}

    def thread_body():
        made["t"] = stackless.tasklet(stackless.schedule_remove)()
        made["t"].run()

    worker = Worker(thread_body)
    worker.join()
    t = made["t"]
    assert t.paused and t.thread_id == -1
    for op in (t.insert, t.run, lambda: t.throw(ValueError)):
        with pytest.raises(RuntimeError, match="tasklet has no thread"):
            op()
    with pytest.raises(ValueError, match="bad thread"):
        stackless.tasklet(lambda: None, ()).bind_thread(worker.ident)
    t.kill()
    assert not t.alive


# --- tasklets of another thread ----------------------------------------------


class Host:
    """A thread with a tasklet `t` of its own that waits in `body`; the
    thread's main sits in run(threadblock=True) until `stop` is sent."""

    def __init__(self, body):
        self.made = threading.Event()
        self.stop = stackless.channel()
        self.log = []
        self.worker = Worker(lambda: self._main(body))
        self.made.wait(10)

    def _main(self, body):
        def wrapped():
            try:
                self.log.append(("result", body(), threading.get_ident()))
            except BaseException as exc:  # noqa: B036 - the test looks at it
                self.log.append(("raised", type(exc).__name__, threading.get_ident()))
        self.t = stackless.tasklet(wrapped)()
        self.t.run()
        self.made.set()
        self.stop.receive()
        stackless.run()  # whatever is still runnable

    def finish(self):
        self.stop.send(None)
        self.worker.join()
        return self.log


def test_insert_of_another_threads_tasklet_runs_it_in_that_thread():
    host = Host(lambda: stackless.schedule_remove("resumed"))
    assert host.t.paused and host.t.thread_id == host.worker.ident
    assert host.t.insert() is host.t
    until(lambda: host.log)
    assert host.finish() == [("result", "resumed", host.worker.ident)]


def test_run_of_another_threads_tasklet_runs_it_there_and_main_goes_on():
    host = Host(lambda: stackless.schedule_remove("resumed"))
    stackless.current.tempval = "mine"
    assert host.t.run() == "mine"  # the caller's tempval: no switch here
    with pytest.raises(RuntimeError, match="can't switch to a different thread"):
        host.t.switch()
    until(lambda: host.log)
    assert host.finish() == [("result", "resumed", host.worker.ident)]


def test_kill_of_another_threads_tasklet_blocked_on_a_channel():
    c = stackless.channel()
    host = Host(c.receive)
    assert host.t.blocked and c.balance == -1
    assert host.t.kill() is None
    assert c.balance == 0 and not host.t.blocked
    until(lambda: host.log)
    assert host.finish() == [("raised", "TaskletExit", host.worker.ident)]
    assert not host.t.alive


@pytest.mark.parametrize("how", ["throw", "throw_pending", "raise_exception"])
def test_throw_into_another_threads_tasklet_blocked_on_a_channel(how):
    c = stackless.channel()
    host = Host(c.receive)
    if how == "raise_exception":
        host.t.raise_exception(KeyError, "k")
    else:
        host.t.throw(KeyError, pending=how == "throw_pending")
    assert c.balance == 0
    until(lambda: host.log)
    assert host.finish() == [("raised", "KeyError", host.worker.ident)]


def test_another_threads_running_tasklet_cannot_be_thrown_into():
    # It would find the bomb at its next switch only, if ever.
    release = threading.Event()
    worker = Worker(lambda: (stackless.getcurrent(), release.wait(30)))
    until(lambda: stackless.get_thread_info(worker.ident)[0] is not None)
    running = stackless.get_thread_info(worker.ident)[1]
    for op in (running.kill, lambda: running.throw(ValueError)):
        with pytest.raises(RuntimeError, match="can't throw into the running tasklet"):
            op()
    release.set()
    worker.join()


def test_another_threads_runnable_tasklet_cannot_be_removed():
    # That thread may be about to switch to it.
    ready, release = threading.Event(), threading.Event()
    made = []

    def thread_body():
        made.append(stackless.tasklet(lambda: None)())
        ready.set()
        release.wait(30)
        stackless.run()

    worker = Worker(thread_body)
    ready.wait(10)
    with pytest.raises(RuntimeError, match="can't remove a tasklet of another thread"):
        made[0].remove()
    assert made[0].scheduled
    release.set()
    worker.join()
    assert not made[0].alive


def test_bind_thread_to_another_thread_then_insert_runs_it_there():
    host = Host(lambda: stackless.schedule_remove())
    seen = []
    t = stackless.tasklet(lambda: seen.append(threading.get_ident()), ())
    assert t.thread_id == threading.get_ident()
    assert t.bind_thread(host.worker.ident) is None
    assert t.thread_id == host.worker.ident
    t.insert()
    until(lambda: seen)
    assert seen == [host.worker.ident]
    with pytest.raises(ValueError, match="bad thread"):
        stackless.tasklet(lambda: None, ()).bind_thread(host.worker.ident + 1)
    with pytest.raises(RuntimeError, match="C state"):
        host.t.bind_thread()
    host.t.insert()
    host.finish()


def test_setup_of_a_tasklet_bound_to_another_thread_starts_it_there():
    host = Host(lambda: stackless.schedule_remove())
    seen = []
    t = stackless.tasklet(lambda x: seen.append((x, threading.get_ident())))
    t.bind_thread(host.worker.ident)
    t(7)
    until(lambda: seen)
    assert seen == [(7, host.worker.ident)]
    host.t.insert()
    host.finish()


# --- a thread whose tasklets all wait ----------------------------------------


def test_a_thread_blocked_in_receive_sleeps_until_another_thread_sends():
    c = stackless.channel()
    worker = Worker(c.receive)
    until(lambda: c.balance == -1)  # its main blocked, its ring empty
    time.sleep(0.05)
    c.send("late")
    assert worker.join() == "late"


def test_a_last_tasklet_ending_while_main_waits_for_another_thread():
    # Main blocks while one local tasklet still runs; when it ends the ring
    # is empty, and main waits for the other thread instead of the error.
    c, ready = stackless.channel(), threading.Event()
    stackless.tasklet(ready.set)()
    worker = Worker(lambda: (ready.wait(10), time.sleep(0.05), c.send("ok")))
    assert c.receive() == "ok"
    worker.join()


def test_the_deadlock_error_stays_when_no_other_thread_exists():
    c = stackless.channel()
    with pytest.raises(RuntimeError, match=DEADLOCK):
        c.receive()
    assert c.balance == 0


@pytest.mark.parametrize("uses_stackless", [True, False])
def test_deadlock_error_once_the_only_other_thread_ends_without_sending(uses_stackless):
    c = stackless.channel()

    def thread_body():
        if uses_stackless:
            stackless.getcurrent()  # its end wakes the waiter at once
        time.sleep(0.1)

    worker = Worker(thread_body)
    with pytest.raises(RuntimeError, match=DEADLOCK):
        c.receive()
    assert c.balance == 0
    worker.join()


def test_a_thread_that_waits_itself_cannot_help():
    mine, theirs = stackless.channel(), stackless.channel()
    worker = Worker(theirs.receive)
    until(lambda: theirs.balance == -1)
    with pytest.raises(RuntimeError, match=DEADLOCK):
        mine.receive()
    theirs.send("free")
    assert worker.join() == "free"


def test_a_daemon_thread_that_never_used_stackless_cannot_help():
    c, release = stackless.channel(), threading.Event()
    worker = Worker(lambda: release.wait(30), daemon=True)
    with pytest.raises(RuntimeError, match=DEADLOCK):
        c.receive()
    release.set()
    worker.join()


def test_a_thread_threading_does_not_know_helps_once_it_used_stackless():
    c, ready, done = stackless.channel(), threading.Event(), threading.Event()

    def body():
        stackless.getcurrent()
        ready.set()
        time.sleep(0.05)
        c.send("from _thread")
        done.set()

    _thread.start_new_thread(body, ())
    ready.wait(10)
    assert c.receive() == "from _thread"
    done.wait(10)


# Earlier tests' thread-pool workers (daemons) may still be around.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_wait_for_its_parents_threads():
    import os

    c, release = stackless.channel(), threading.Event()
    worker = Worker(lambda: (stackless.getcurrent(), release.wait(30)))
    until(lambda: stackless.get_thread_info(worker.ident)[0] is not None)
    pid = os.fork()
    if pid == 0:  # the worker does not exist here: nobody can send
        status = 1
        try:
            c.receive()
        except RuntimeError as exc:
            status = 0 if "Deadlock" in str(exc) else 2
        finally:
            os._exit(status)
    release.set()
    worker.join()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_main_blocked_gets_the_main_tasklet_error_when_the_last_tasklet_ends_alone():
    c = stackless.channel()
    stackless.tasklet(lambda: None)()
    with pytest.raises(RuntimeError, match="receiving without a sender available"):
        c.receive()


# --- run(threadblock=True) ----------------------------------------------------


def test_threadblock_run_waits_for_other_threads_then_returns():
    me, ran = threading.get_ident(), []
    t = stackless.tasklet(lambda: ran.append(threading.get_ident()), ())

    def thread_body():
        until(lambda: stackless.get_thread_info(me)[2] == 0)  # main waits in run()
        time.sleep(0.05)
        t.insert()

    worker = Worker(thread_body)
    assert stackless.run(threadblock=True) is None  # returns once the worker ended
    assert ran == [me]
    worker.join()
    assert stackless.getruncount() == 1


def test_threadblock_run_returns_at_once_without_other_threads():
    assert stackless.run(threadblock=True) is None
    stackless.tasklet(lambda: None)()
    assert stackless.run(threadblock=True) is None
    assert stackless.getruncount() == 1


def test_run_without_threadblock_returns_when_the_ring_empties():
    release = threading.Event()
    worker = Worker(lambda: (stackless.getcurrent(), release.wait(30)))
    stackless.tasklet(lambda: None)()
    assert stackless.run() is None  # does not wait for the worker
    release.set()
    worker.join()


# --- the hub ---------------------------------------------------------------------


def test_a_thread_parked_in_its_hubs_epoll_is_woken_by_another_threads_send():
    c = stackless.channel()

    def thread_body():
        sleeper = stackless.tasklet(coio.sleep)(3600)  # keeps the hub blocked in epoll
        sleeper.run()
        value = c.receive()
        sleeper.kill()
        return value

    worker = Worker(thread_body)
    until(lambda: c.balance == -1)
    time.sleep(0.05)
    c.send("through the doorbell")
    assert worker.join() == "through the doorbell"


def test_kill_reaches_a_tasklet_of_another_thread_parked_on_io():
    host = Host(lambda: coio.sleep(3600))
    assert host.t.paused
    host.t.kill()
    until(lambda: host.log)
    assert host.finish() == [("raised", "TaskletExit", host.worker.ident)]


# --- Ctrl-C -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["pthread_kill", "interrupt_main"])
def test_keyboard_interrupt_reaches_main_waiting_for_another_thread(how):
    c, release = stackless.channel(), threading.Event()
    me = threading.get_ident()

    def thread_body():
        until(lambda: c.balance == -1)
        time.sleep(0.05)
        if how == "pthread_kill":
            signal.pthread_kill(me, signal.SIGINT)
        else:
            _thread.interrupt_main()
        release.wait(30)

    worker = Worker(thread_body)
    with pytest.raises(KeyboardInterrupt):
        c.receive()
    assert c.balance == 0
    release.set()
    worker.join()


def test_a_signal_handler_cannot_switch_while_main_waits_for_another_thread():
    # Main is blocked on a channel, in no ring, while the thread waits: a
    # handler that switches gets a clear error there instead of corrupting
    # the queues; main can wait again and gets the other thread's value.
    c = stackless.channel()
    notify = stackless.channel()

    def handler(signum, frame):
        notify.send("signal")

    def sender():
        time.sleep(0.5)
        c.send("from thread")

    old = signal.signal(signal.SIGALRM, handler)
    th = threading.Thread(target=sender)
    th.start()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(RuntimeError, match="while this thread waits for another thread"):
            c.receive()
        assert c.balance == 0 and stackless.getruncount() == 1
        assert c.receive() == "from thread"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        th.join(10)
