"""Process-level behaviour of the hub: Ctrl-C, signal handlers in tasklets,
fork, program exit, and one hub per OS thread."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()


def run_python(code, timeout=30, **kwargs):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def test_ctrl_c_reaches_main_blocked_in_io_promptly():
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time, syncless
        stackless = syncless.install_stackless()
        from syncless import coio
        a, b = coio.socketpair()
        stackless.tasklet(coio.sleep)(60)
        print("ready", flush=True)
        try:
            a.recv(1)
        except KeyboardInterrupt:
            print("interrupted", coio.waiting(), flush=True)
        """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    time.sleep(0.1)
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=10)
    assert time.monotonic() - start < 2
    # The sleeper still waits; main's own wait is gone.
    assert out == "interrupted 1\n"


def test_signal_handler_runs_in_a_tasklet_that_may_block():
    got = []

    def handler(signum):
        coio.sleep(0.001)  # blocking is fine: its own tasklet
        got.append((signum, stackless.getcurrent() is not stackless.getmain()))

    old = coio.signal(signal.SIGUSR2, handler)
    try:
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            coio.sleep(0.005)
        stackless.run()
    finally:
        signal.signal(signal.SIGUSR2, old)
    assert got == [(signal.SIGUSR2, True)]


# Earlier tests' thread-pool workers (daemons) may still be around.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_gets_a_working_hub_of_its_own():
    a, b = coio.socketpair()
    ticks = []
    stackless.tasklet(lambda: [ticks.append(coio.sleep(0.002)) for _ in range(20)])()
    stackless.schedule()
    pid = os.fork()
    if pid == 0:  # the child: its hub must work and not see the parent's
        status = 1
        try:
            b.close()
            coio.sleep(0.01)
            a.sendall(b"child")
            status = 0 if a.recv(6) == b"parent" else 2
        finally:
            os._exit(status)
    a.close()
    assert b.recv(5) == b"child"
    b.sendall(b"parent")
    waited = coio.thread_pool(1)(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(waited[1]) == 0
    stackless.run()
    assert len(ticks) == 20
    b.close()


def test_main_returning_ends_the_program_and_run_waits_for_all():
    quick = run_python("""
        import syncless
        stackless = syncless.install_stackless()
        from syncless import coio
        stackless.tasklet(coio.sleep)(30)
        stackless.schedule()
        print("bye")
        """, timeout=10)
    assert quick.returncode == 0 and quick.stdout == "bye\n", quick.stderr
    everyone = run_python("""
        import syncless
        stackless = syncless.install_stackless()
        from syncless import coio
        done = []
        for i in range(5):
            stackless.tasklet(lambda i: (coio.sleep(0.01 * i), done.append(i)))(i)
        stackless.run()
        print(sorted(done))
        """)
    assert everyone.returncode == 0 and everyone.stdout == "[0, 1, 2, 3, 4]\n", everyone.stderr


def test_each_thread_has_its_own_hub():
    results = {}

    def thread_main(name):
        done = []
        for i in range(3):
            stackless.tasklet(lambda i: (coio.sleep(0.005), done.append(i)))(i)
        stackless.run()
        results[name] = (sorted(done), coio.get_main_loop_tasklet().thread_id)

    threads = [threading.Thread(target=thread_main, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    coio.sleep(0.01)  # the main thread's hub runs meanwhile
    for t in threads:
        t.join()
    assert results["a"][0] == results["b"][0] == [0, 1, 2]
    assert results["a"][1] != results["b"][1]
    assert coio.get_main_loop_tasklet().thread_id == threading.get_ident()


def test_a_thread_that_used_coio_gives_its_hub_back_when_it_ends():
    def fd_count():
        return len(os.listdir("/proc/self/fd"))

    def work():
        coio.sleep(0.001)
        a, b = coio.socketpair()
        with a, b:
            stackless.tasklet(lambda: (coio.sleep(0.001), b.sendall(b"x")))()
            assert a.recv(1) == b"x"  # a readiness watch, too
        coio.getaddrinfo("localhost", 80)  # and a resolver
        stackless.run()
        wakers.append(coio.Waker())

    wakers = []
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:  # the first ones may create lazily shared state
        t.start()
        t.join()
    before = fd_count()
    for _ in range(50):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert fd_count() == before  # each hub had ~5 fds: they went with it
    for waker in wakers:
        waker.fire()  # its thread and hub are gone: nothing to wake
