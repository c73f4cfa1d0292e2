"""Greenlets and tasklets in one thread (issue 3, item 5; docs/stackless.md,
"Greenlets inside tasklets").

The rule: each tasklet is to greenlets what a thread is in greenlet. It has a
main greenlet of its own (made when greenlet is first used in it, parent
None); greenlets started in it belong to it and switch only within it; a
tasklet switch suspends the tasklet with whichever of its greenlets runs, and
resuming the tasklet resumes that greenlet; a switch to another tasklet's
greenlet raises greenlet.error; once a tasklet ends, its suspended greenlets
are dead, and each is killed with GreenletExit when its last reference goes.
The main tasklet's main greenlet is the thread's."""
import gc
import itertools
import re
import subprocess
import sys
import threading
import time
import weakref

import greenlet
import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]

THREAD_MAIN = greenlet.getcurrent()
OTHER_TASKLET = "cannot switch to a different tasklet"
EXITED_TASKLET = "cannot switch to a different tasklet (which happens to have exited)"


def run_in_tasklets(*funcs):
    """Runs each function in a tasklet of its own; returns their results."""
    results = {}
    for i, func in enumerate(funcs):
        stackless.tasklet(lambda i=i, func=func: results.__setitem__(i, func()))()
    stackless.run()
    return [results.get(i) for i in range(len(funcs))]


def back_to_parent(value=None):
    return greenlet.getcurrent().parent.switch(value)


# --- each tasklet has its own main greenlet ------------------------------


def test_a_fresh_tasklet_has_its_own_main_greenlet():
    def body():
        main = greenlet.getcurrent()
        assert main is not THREAD_MAIN
        assert main.parent is None and main is greenlet.getcurrent()
        assert bool(main) and not main.dead and main.gr_frame is None
        assert repr(main).endswith(" current active started main>")
        with pytest.raises(AttributeError, match="cannot set the parent of a main greenlet"):
            main.parent = THREAD_MAIN
        return main

    a, b = run_in_tasklets(body, body)
    assert a is not b
    # The tasklets ended: their main greenlets are dead, as those of exited
    # threads are.
    for main in (a, b):
        assert main.dead and not bool(main) and main.gr_frame is None
        assert repr(main).endswith(" (tasklet exited) dead>")


def test_the_main_tasklets_main_greenlet_is_the_threads():
    def in_greenlet():
        assert stackless.getcurrent() is stackless.main
        return greenlet.getcurrent().parent

    assert greenlet.greenlet(in_greenlet).switch() is THREAD_MAIN
    assert THREAD_MAIN.parent is None and not THREAD_MAIN.dead


def test_greenlets_made_in_a_tasklet_belong_to_it_and_finish_into_its_main():
    def body():
        main = greenlet.getcurrent()
        tasklet = stackless.getcurrent()

        def run(x):
            assert stackless.getcurrent() is tasklet
            assert greenlet.getcurrent() is g and g.parent is main
            return x * 2

        g = greenlet.greenlet(run)
        assert g.parent is main
        return g.switch(21), g.dead, greenlet.getcurrent() is main

    assert run_in_tasklets(body) == [(42, True, True)]


def test_a_greenlet_makes_and_runs_tasklets_that_start_with_no_greenlet_of_their_own():
    seen = []

    def in_tasklet(creator):
        main = greenlet.getcurrent()
        seen.append((main is not creator, main.parent, stackless.getcurrent().is_main))
        stackless.schedule()
        seen.append(greenlet.getcurrent() is main)

    def in_greenlet():
        me = greenlet.getcurrent()
        t = stackless.tasklet(in_tasklet)(me)
        t.run()
        seen.append(("back", greenlet.getcurrent() is me))
        stackless.tasklet(in_tasklet)(me)
        stackless.run()  # the main tasklet waits here, with this greenlet
        seen.append(("run returned", greenlet.getcurrent() is me, t.alive))
        return "done"

    assert greenlet.greenlet(in_greenlet).switch() == "done"
    assert seen == [
        (True, None, False),
        ("back", True),
        True,
        (True, None, False),
        True,
        ("run returned", True, False),
    ]


# --- interleaving ----------------------------------------------------------


def test_greenlet_switches_in_several_tasklets_interleave_with_tasklet_switches():
    log = []
    channel = stackless.channel()

    def body(name):
        main = greenlet.getcurrent()

        def ping(n):
            for i in range(n):
                log.append(f"{name} ping {i}")
                stackless.schedule()  # the tasklet goes, with this greenlet
                assert greenlet.getcurrent() is p
                n = pong.switch(i)
            return f"{name} ping done"

        def pong(i):
            while True:
                log.append(f"{name} pong {i}")
                i = p.switch(i)

        p = greenlet.greenlet(ping)
        pong = greenlet.greenlet(pong, parent=main)
        result = p.switch(2)
        assert greenlet.getcurrent() is main
        return result

    def sender():
        def run():
            channel.send("from a greenlet of the sender")
            return "sent"
        return greenlet.greenlet(run).switch()

    def receiver():
        def run():
            return channel.receive()
        return greenlet.greenlet(run).switch()

    results = run_in_tasklets(lambda: body("a"), lambda: body("b"), receiver, sender)
    assert results == ["a ping done", "b ping done", "from a greenlet of the sender", "sent"]
    assert log == [
        "a ping 0", "b ping 0",
        "a pong 0", "a ping 1", "b pong 0", "b ping 1",
        "a pong 1", "b pong 1",
    ]


def test_a_tasklet_blocked_in_a_greenlet_resumes_in_that_greenlet():
    channel = stackless.channel()
    frames = {}

    def body():
        def waiting_in_greenlet():
            return channel.receive() + 1

        g = greenlet.greenlet(waiting_in_greenlet)
        frames["g"] = g
        frames["main"] = greenlet.getcurrent()
        return g.switch()

    t = stackless.tasklet(body)()
    t.run()
    assert t.blocked
    # The tasklet's innermost frame is its greenlet's; its main greenlet sits
    # in the switch to that greenlet.
    assert t.frame.f_code.co_name == "waiting_in_greenlet"
    assert frames["g"].gr_frame.f_code.co_name == "waiting_in_greenlet"
    assert frames["main"].gr_frame.f_code.co_name == "body"
    assert "suspended active" in repr(frames["g"])
    channel.send(41)
    assert not t.alive and frames["g"].dead


# --- exceptions, kill --------------------------------------------------------


def test_exceptions_travel_up_the_tasklets_greenlets_then_as_stackless_says():
    log = []

    def body():
        def fails():
            raise ValueError("in a greenlet")

        try:
            greenlet.greenlet(fails).switch()
        except ValueError as e:
            log.append(str(e))
        g = greenlet.greenlet(lambda: back_to_parent("suspended"))
        g.switch()
        exit_value = g.throw(greenlet.GreenletExit("bye"))
        log.append((type(exit_value).__name__, str(exit_value), g.dead))

        def escapes():
            raise KeyError("out of the tasklet")

        greenlet.greenlet(escapes).switch()
        log.append("not reached")

    stackless.tasklet(body)()
    # Out of the tasklet's main greenlet, the exception is the tasklet's: it
    # goes to the main tasklet, as in Stackless.
    with pytest.raises(KeyError, match="out of the tasklet"):
        stackless.run()
    assert log == ["in a greenlet", ("GreenletExit", "bye", True)]


def test_throw_into_a_greenlet_of_the_running_tasklet():
    def body():
        def run():
            try:
                back_to_parent()
            except ZeroDivisionError:
                return "handled"

        g = greenlet.greenlet(run)
        g.switch()
        return g.throw(ZeroDivisionError)

    assert run_in_tasklets(body) == ["handled"]


@pytest.mark.parametrize("how", ["kill", "raise_exception"])
def test_killing_a_tasklet_whose_greenlet_runs_unwinds_that_greenlet_first(how):
    log = []
    channel = stackless.channel()

    def body():
        def blocked():
            try:
                channel.receive()
            except BaseException as e:
                log.append(("greenlet", type(e).__name__))
                raise
            finally:
                log.append("greenlet finally")

        g = greenlet.greenlet(blocked)
        try:
            g.switch()
        except BaseException as e:
            log.append(("tasklet main greenlet", type(e).__name__, g.dead))
            raise

    t = stackless.tasklet(body)()
    t.run()
    if how == "kill":
        t.kill()
        assert log[0] == ("greenlet", "TaskletExit")
    else:
        with pytest.raises(LookupError):  # uncaught in the tasklet: to main
            t.raise_exception(LookupError)
        assert log[0] == ("greenlet", "LookupError")
    assert log[1:] == ["greenlet finally", ("tasklet main greenlet", log[0][1], True)]
    assert not t.alive and channel.balance == 0


def test_a_tasklet_killing_itself_from_a_greenlet():
    log = []

    def body():
        def run():
            try:
                stackless.getcurrent().kill()
            finally:
                log.append("greenlet finally")

        try:
            greenlet.greenlet(run).switch()
        finally:
            log.append("tasklet finally")

    t = stackless.tasklet(body)()
    stackless.run()
    assert log == ["greenlet finally", "tasklet finally"] and not t.alive


def test_killing_a_tasklet_kills_its_suspended_greenlets_as_they_are_freed():
    log = []
    channel = stackless.channel()

    def body():
        main = greenlet.getcurrent()

        def suspended():
            try:
                back_to_parent()
            except greenlet.GreenletExit:
                # The kill runs it with the greenlet that freed it as parent.
                log.append(("GreenletExit", greenlet.getcurrent().parent is main))
                raise

        g = greenlet.greenlet(suspended)
        g.switch()
        channel.receive()

    t = stackless.tasklet(body)()
    t.run()
    t.kill()
    assert log == [("GreenletExit", True)] and not t.alive


def test_a_greenlet_blocked_in_coio_inside_a_killed_tasklet_leaves_no_wait():
    started = []

    def body():
        def sleeping():
            started.append(coio.waiting())
            coio.sleep(30)

        greenlet.greenlet(sleeping).switch()

    t = stackless.tasklet(body)()
    t.run()
    while not started or coio.waiting() == 0:
        stackless.schedule()
    t.kill()
    assert not t.alive and coio.waiting() == 0


# --- the boundary between tasklets ------------------------------------------


def test_switching_to_a_greenlet_of_another_tasklet_raises():
    parked = {}
    errors = []

    def owner():
        g = greenlet.greenlet(lambda: back_to_parent("parked") or "finished")
        parked["g"] = g
        parked["unstarted"] = greenlet.greenlet(lambda: "never")
        parked["main"] = greenlet.getcurrent()
        assert g.switch() == "parked"
        stackless.schedule()  # the other tasklet tries meanwhile
        return g.switch()  # still works here

    def intruder():
        for attempt in (lambda: parked["g"].switch(), lambda: parked["g"].throw(ValueError),
                        lambda: parked["main"].switch(), lambda: THREAD_MAIN.switch(),
                        lambda: parked["unstarted"].switch()):
            with pytest.raises(greenlet.error, match=OTHER_TASKLET) as info:
                attempt()
            errors.append(str(info.value))
        mine = greenlet.greenlet(back_to_parent)
        mine.switch()
        with pytest.raises(ValueError, match="parent cannot be on a different tasklet"):
            mine.parent = parked["g"]
        mine.switch()  # finishes

    assert run_in_tasklets(owner, intruder) == ["finished", None]
    assert all("Current:" in e and "Expected:" in e for e in errors)
    # From the main tasklet, and after the owner ended.
    with pytest.raises(greenlet.error, match=re.escape(EXITED_TASKLET)):
        parked["unstarted"].switch()


def test_an_unstarted_greenlet_may_be_moved_to_another_tasklet_before_it_starts():
    # As greenlet allows between threads (gevent's thread pool does it): its
    # lineage decides where it belongs when it starts.
    made = {}

    def maker():
        made["g"] = greenlet.greenlet(lambda: stackless.getcurrent())
        stackless.schedule()

    def starter():
        g = made["g"]
        g.parent = greenlet.getcurrent()
        return g.switch() is stackless.getcurrent()

    assert run_in_tasklets(maker, starter) == [None, True]


@pytest.mark.parametrize("owner_uses_greenlet_again", [True, False])
def test_a_greenlet_freed_in_another_tasklet_is_killed_in_its_own(owner_uses_greenlet_again):
    log = []
    box = {}

    def owner():
        def suspended():
            try:
                back_to_parent()
            finally:
                log.append(("killed in", stackless.getcurrent() is owner_tasklet))

        g = greenlet.greenlet(suspended)
        g.switch()
        box["g"] = g
        del g
        stackless.schedule()  # the other tasklet drops it meanwhile
        log.append("owner runs on")
        if owner_uses_greenlet_again:
            greenlet.getcurrent()
            log.append("owner used greenlet")

    def other():
        box.pop("g")  # queued for its own tasklet, not killed here
        log.append("dropped")

    owner_tasklet = stackless.tasklet(owner)()
    stackless.tasklet(other)()
    stackless.run()
    if owner_uses_greenlet_again:
        assert log == ["dropped", "owner runs on", ("killed in", True), "owner used greenlet"]
    else:  # the tasklet's end runs the kill
        assert log == ["dropped", "owner runs on", ("killed in", True)]


# --- after a tasklet ends ------------------------------------------------------


def test_greenlets_of_a_finished_tasklet_are_dead_and_killed_when_freed():
    log = []
    kept = {}

    def body():
        def suspended():
            try:
                back_to_parent()
            finally:
                me = greenlet.getcurrent()
                log.append(("finally", me is not THREAD_MAIN, me.parent is THREAD_MAIN))

        g = greenlet.greenlet(suspended)
        g.switch()
        kept["g"] = g
        kept["main"] = weakref.ref(greenlet.getcurrent())

    mains_before = greenlet._greenlet.get_total_main_greenlets()
    run_in_tasklets(body)
    g = kept.pop("g")
    assert greenlet._greenlet.get_total_main_greenlets() == mains_before
    assert g.dead and not bool(g)
    assert repr(g).endswith(" (tasklet exited) dead>")
    # Its stack is still there (a thread's exit would have taken it).
    assert g.gr_frame.f_code.co_name == "back_to_parent"
    with pytest.raises(greenlet.error, match=re.escape(EXITED_TASKLET)):
        g.switch()
    with pytest.raises(greenlet.error, match="which happens to have exited"):
        g.throw(ValueError)
    assert kept["main"]() is not None  # g still names its family's main
    used = syncless.stack_pool_stats()["in_use"]
    del g  # killed here: its finally runs, with this greenlet as parent
    assert log == [("finally", True, True)]
    assert syncless.stack_pool_stats()["in_use"] == used - 1
    gc.collect()
    assert kept["main"]() is None


def test_a_finished_greenlet_of_a_finished_tasklet_is_collected():
    def body():
        g = greenlet.greenlet(lambda: None)
        g.switch()
        g.cycle = g  # only the collector can free it
        return weakref.ref(g), weakref.ref(greenlet.getcurrent())

    [(g, main)] = run_in_tasklets(body)
    gc.collect()
    assert g() is None and main() is None


def test_a_thread_that_ends_with_a_tasklet_suspended_in_a_greenlet():
    kept = {}

    def thread_main():
        def body():
            def inner():
                stackless.channel().receive()  # never answered

            kept["g"] = greenlet.greenlet(inner)
            kept["main"] = greenlet.getcurrent()
            kept["g"].switch()

        kept["t"] = stackless.tasklet(body)()
        kept["t"].run()
        kept["thread main"] = greenlet.getcurrent()

    stacks = syncless.stack_pool_stats()["in_use"]
    thread = threading.Thread(target=thread_main)
    thread.start()
    thread.join()
    # join() returns before the thread's C++ thread-locals (where greenlet
    # learns that the thread is gone) are destroyed, and the state is then
    # torn down by a pending call: poll for both, as test_greenlet_misuse.py.
    deadline = time.monotonic() + 5
    while (not kept["thread main"].dead or greenlet._greenlet.get_pending_cleanup_count()) \
            and time.monotonic() < deadline:
        time.sleep(0.001)
    for g in (kept["g"], kept["main"], kept["thread main"]):
        assert g.dead and repr(g).endswith(" (thread exited) dead>")
    with pytest.raises(greenlet.error, match="different thread"):
        kept["g"].switch()
    kept.pop("t").kill()  # drops its frames (and its greenlet's)
    kept.clear()
    gc.collect()
    assert syncless.stack_pool_stats()["in_use"] == stacks


def test_greenlet_used_by_the_schedule_callback_as_a_tasklet_ends():
    # The callback runs in the ending tasklet after its greenlets were retired:
    # the main greenlet it makes there is retired with the tasklet too.
    seen = []

    def callback(prev, next):
        seen.append(greenlet.getcurrent())

    mains = greenlet._greenlet.get_total_main_greenlets()
    stackless.set_schedule_callback(callback)
    try:
        stackless.tasklet(lambda: None)()
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
    # main -> tasklet (called in main), tasklet -> main (called in the tasklet)
    assert len(seen) == 2 and seen[0] is THREAD_MAIN and seen[1] is not THREAD_MAIN
    assert seen[1].dead and greenlet._greenlet.get_total_main_greenlets() == mains


# --- coio ------------------------------------------------------------------------


def test_coio_sleep_in_a_greenlet_of_a_tasklet_lets_the_others_run():
    log = []

    def sleeper():
        def run():
            coio.sleep(0.05)
            log.append("slept")
            return "woke in its greenlet"

        g = greenlet.greenlet(run)
        result = g.switch()
        return result, greenlet.getcurrent().parent is None

    def busy():
        for i in range(3):
            log.append(f"busy {i}")
            stackless.schedule()

    assert run_in_tasklets(sleeper, busy) == [("woke in its greenlet", True), None]
    assert log == ["busy 0", "busy 1", "busy 2", "slept"]


def test_gevent_style_hub_greenlets_in_two_tasklets():
    # Each tasklet runs a little hub greenlet of its own, which blocks in coio
    # and switches to the worker greenlet whose timer is due, as gevent's does.
    def world(name):
        log, timers, order = [], [], itertools.count()

        def hub_loop():
            while timers:
                timers.sort(key=lambda timer: timer[:2])
                deadline, _, waiter, args = timers.pop(0)
                delay = deadline - time.monotonic()
                if delay > 0:
                    coio.sleep(delay)
                waiter.switch(*args)

        hub = greenlet.greenlet(hub_loop)

        def sleep(seconds):
            timers.append((time.monotonic() + seconds, next(order), greenlet.getcurrent(), ()))
            hub.switch()

        def worker(i):
            sleep(0.002 * (3 - i))
            log.append(f"{name} worker {i}")

        workers = [greenlet.greenlet(worker, parent=hub) for i in range(3)]
        for i, w in enumerate(workers):
            timers.append((0, next(order), w, (i,)))  # spawn: start soon
        hub.switch()  # returns here (its parent) once no timer is left
        return log, all(w.dead for w in workers), hub.dead

    a, b = run_in_tasklets(lambda: world("a"), lambda: world("b"))
    assert a == ([f"a worker {i}" for i in (2, 1, 0)], True, True)
    assert b == ([f"b worker {i}" for i in (2, 1, 0)], True, True)


GEVENT_IN_A_TASKLET = """
import syncless
syncless.install_greenlet()
stackless = syncless.install_stackless()
import gevent, greenlet

def uses_gevent():
    jobs = [gevent.spawn(lambda i=i: (gevent.sleep(0.001 * (3 - i)), i)[1]) for i in range(3)]
    gevent.joinall(jobs)
    print("values", [job.value for job in jobs])
    stackless.tasklet(other_tasklet)()
    stackless.schedule()

def other_tasklet():
    try:
        gevent.sleep(0)
    except greenlet.error as e:
        print("other:", str(e).splitlines()[0])

stackless.tasklet(uses_gevent)()
stackless.run()
other_tasklet()
"""


def test_gevent_runs_in_a_non_main_tasklet_and_its_hub_stays_there():
    # In a process of its own: gevent's hub is per thread, and this process's
    # belongs to the main tasklet (test_gevent_on_syncless.py).
    proc = subprocess.run([sys.executable, "-c", GEVENT_IN_A_TASKLET], capture_output=True,
                          text=True, timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "values [0, 1, 2]",
        "other: cannot switch to a different tasklet",
        "other: cannot switch to a different tasklet (which happens to have exited)",
    ]


# --- tracing ------------------------------------------------------------------------


def test_greenlet_settrace_is_per_thread_and_sees_switches_inside_tasklets():
    events = []
    seen = {}

    def body():
        main = greenlet.getcurrent()
        g = greenlet.greenlet(lambda: back_to_parent())
        g.switch()
        stackless.schedule()  # a tasklet switch: no greenlet event
        g.switch()
        seen.update(main=main, g=g, trace=greenlet.gettrace())

    def tracer(event, args):
        events.append((event, args))

    old = greenlet.settrace(tracer)
    try:
        stackless.tasklet(body)().run()
        stackless.run()
    finally:
        assert greenlet.settrace(old) is tracer
    main, g = seen["main"], seen["g"]
    assert seen["trace"] is tracer
    assert events == [("switch", (main, g)), ("switch", (g, main)),
                      ("switch", (main, g)), ("switch", (g, main))]


# --- leaks ----------------------------------------------------------------------------


def one_round(channel):
    def worker(n):
        main = greenlet.getcurrent()

        def inner(x):
            stackless.schedule()
            y = main.switch(x + 1)
            coio.sleep(0)
            return y

        g = greenlet.greenlet(inner)
        assert g.switch(n) == n + 1
        channel.send(n)
        parked = greenlet.greenlet(back_to_parent)
        parked.switch()
        return g.switch(n)

    def blocked():
        def inner():
            stackless.channel().receive()
        greenlet.greenlet(inner).switch()

    orphans = []

    def leaves_a_greenlet_behind():
        g = greenlet.greenlet(back_to_parent)
        g.switch()
        orphans.append(g)

    doomed = stackless.tasklet(blocked)()
    for n in range(3):
        stackless.tasklet(worker)(n)
    stackless.tasklet(lambda: [channel.receive() for _ in range(3)])()
    stackless.tasklet(leaves_a_greenlet_behind)()
    stackless.run()
    doomed.kill()
    orphans.clear()


def test_no_growth_after_many_rounds():
    channel = stackless.channel()
    for _ in range(20):
        one_round(channel)
    gc.collect()
    objects = len(gc.get_objects())
    blocks = sys.getallocatedblocks()
    stacks = syncless.stack_pool_stats()["in_use"]
    mains = greenlet._greenlet.get_total_main_greenlets()
    for _ in range(300):
        one_round(channel)
    gc.collect()
    assert syncless.stack_pool_stats()["in_use"] == stacks
    assert greenlet._greenlet.get_total_main_greenlets() == mains
    assert len(gc.get_objects()) - objects < 50
    assert sys.getallocatedblocks() - blocks < 300
