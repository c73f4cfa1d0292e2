"""The stackless face: garbage collection of suspended tasklets (shared spec
stackless.md §2.8). A started tasklet that is paused or blocked and that
nothing reaches any more is killed on its own stack (TaskletExit, so its
``finally`` blocks run), as greenlet does and as Stackless does for
hard-switched tasklets: at once when refcounting frees it, in gc.collect()
when it is part of a cycle (its frames are visited). One that catches
TaskletExit and suspends again ten times goes to gc.garbage."""
import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

import syncless
from syncless import coio

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]


def started(body, *args):
    """A tasklet of body(*args), run until it suspends, and a weakref to it
    (the test keeps no other reference)."""
    t = stackless.tasklet(body)(*args)
    stackless.run()
    assert t.alive and (t.paused or t.blocked)
    return weakref.ref(t)


def guarded(log, suspend):
    def body(*args):
        try:
            suspend(*args)
        except TaskletExit:  # noqa: F821 (a builtin)
            log.append("TaskletExit")
            raise
        finally:
            log.append("finally")
    return body


# --- what is collected -----------------------------------------------------


def test_blocked_on_a_channel_nobody_references():
    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    assert ref().blocked
    gc.collect()
    assert ref() is None
    assert log == ["TaskletExit", "finally"]


def test_blocked_on_its_own_channel_a_cycle():
    log = []

    def body():
        ch = stackless.channel()
        me = stackless.current  # noqa: F841 (the frame references its tasklet too)
        try:
            ch.send("never taken")
        finally:
            log.append(("finally", ch.balance))

    ref = started(body)
    gc.collect()
    assert ref() is None
    assert log == [("finally", 0)]  # unblocked before it was killed


@pytest.mark.xfail(reason="the for-loop's iterator (the channel) sits in a value-stack slot "
                          "the collector is not shown: FOR_ITER gives the channel no stack "
                          "pointer to vouch for, so the cycle looks externally held", strict=True)
def test_a_consumer_looping_over_its_channel():
    log = []

    def consumer(ch):
        try:
            for item in ch:
                log.append(item)
        finally:
            log.append("finally")

    ref = started(consumer, stackless.channel())
    gc.collect()
    assert ref() is None and log == ["finally"]


def test_blocked_in_a_nested_call():
    log = []

    def wait(ch, how):
        return how(ch)

    def body():
        try:
            wait(stackless.channel(), lambda c: c.receive())
        finally:
            log.append("finally")

    ref = started(body)
    gc.collect()
    assert ref() is None and log == ["finally"]


def test_paused_and_dropped_is_killed_at_once():
    log = []
    ref = started(guarded(log, lambda: stackless.schedule_remove(None)))
    assert ref() is None  # no cycle: refcounting alone
    assert log == ["TaskletExit", "finally"]


def test_schedule_remove_keeps_itself_in_tempval_a_cycle():
    log = []
    ref = started(guarded(log, stackless.schedule_remove))
    assert ref() is not None and ref().tempval is ref()
    gc.collect()
    assert ref() is None and log == ["TaskletExit", "finally"]


def test_removed_by_another_tasklet_and_dropped():
    log = []
    t = stackless.tasklet(guarded(log, lambda: [stackless.schedule() for _ in range(9)]))()
    stackless.schedule()
    t.remove()
    assert t.paused
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None and log == ["TaskletExit", "finally"]


def test_paused_by_switch_and_dropped():
    log = []
    main = stackless.current
    t = stackless.tasklet(guarded(log, lambda: main.switch()))
    t.setup()
    t.run()
    assert t.paused
    ref = weakref.ref(t)
    del t
    assert ref() is None and log == ["TaskletExit", "finally"]


def test_the_tasklet_functions_arguments_are_seen():
    log = []

    class Job:
        def __init__(self):
            self.channel = stackless.channel()

        def run(self):
            try:
                self.channel.receive()
            finally:
                log.append("finally")

    ref = started(Job().run)
    gc.collect()
    assert ref() is None and log == ["finally"]


def test_a_channel_on_the_value_stack_only_is_visited():
    def body():
        stackless.channel().receive()

    t = stackless.tasklet(body)()
    stackless.run()
    gc.collect()  # the call-site tables are made as a collection starts
    referents = gc.get_referents(t)
    assert any(isinstance(o, stackless.channel) for o in referents)
    t.kill()


def test_unstarted_tasklets_are_freed_without_running():
    ran = []
    t = stackless.tasklet()
    t.bind(ran.append, (1,))
    ref = weakref.ref(t)
    del t
    assert ref() is None and ran == []


def test_a_subclass_is_collected_too():
    class Worker(stackless.tasklet):
        pass

    log = []
    t = Worker(guarded(log, lambda: stackless.channel().receive()))()
    stackless.run()
    ref = weakref.ref(t)
    del t
    gc.collect()
    assert ref() is None and log == ["TaskletExit", "finally"]


def test_two_tasklets_blocked_on_each_others_channels():
    log = []

    def body(mine, theirs):
        try:
            mine.receive()
        finally:
            log.append(theirs.balance)

    a, b = stackless.channel(), stackless.channel()
    refs = [started(body, a, b), started(body, b, a)]
    del a, b
    gc.collect()
    assert [r() for r in refs] == [None, None] and sorted(log) == [-1, 0]


def test_collected_tasklets_give_their_stacks_back():
    in_use = syncless.stack_pool_stats()["in_use"]
    for _ in range(200):
        stackless.tasklet(lambda: stackless.channel().receive())()
    stackless.run()
    assert syncless.stack_pool_stats()["in_use"] == in_use + 200
    gc.collect()
    assert syncless.stack_pool_stats()["in_use"] == in_use


# --- what is not -------------------------------------------------------------


def test_a_reachable_channel_keeps_its_tasklets():
    ch = stackless.channel()
    got = []
    ref = started(lambda: got.append(ch.receive()))
    gc.collect()
    assert ref() is not None and ref().blocked
    ch.send("still there")
    assert got == ["still there"]


def test_a_registry_keeps_its_paused_tasklets():
    registry = []

    def park():
        registry.append(stackless.current)
        stackless.schedule_remove(None)
        registry.append("resumed")

    ref = started(park)
    gc.collect()
    assert ref() is registry[0] and ref().paused
    ref().insert()
    stackless.run()
    assert registry[1:] == ["resumed"]


def test_coio_waiters_and_the_hub_are_not_affected():
    done = []
    ref = weakref.ref(stackless.tasklet(lambda: (coio.sleep(0.02), done.append(1)))())
    stackless.schedule()  # it parks in the hub
    hub = weakref.ref(coio.get_main_loop_tasklet())
    gc.collect()
    assert ref() is not None and ref().alive
    stackless.run()
    assert done == [1] and ref() is None and hub().alive


# --- survivors ----------------------------------------------------------------


def stubborn(kills, resist):
    """Catches TaskletExit `resist` times, blocking again on its channel."""
    def body():
        ch = stackless.channel()
        while True:
            try:
                ch.receive()
            except TaskletExit:  # noqa: F821
                kills.append(1)
                if len(kills) > resist:
                    raise
    return body


def test_a_tasklet_that_dies_on_a_later_kill():
    kills = []
    ref = started(stubborn(kills, 3))
    gc.collect()
    assert ref() is None and len(kills) == 4


def test_one_that_survives_ten_kills_goes_to_gc_garbage():
    kills = []
    started(stubborn(kills, 10))
    gc.collect()
    assert len(kills) == 10
    # The collector cleared the weak references before the finaliser ran.
    [t] = [o for o in gc.garbage if isinstance(o, stackless.tasklet)]
    assert t.blocked and t.tempval is None
    gc.garbage.remove(t)
    t.kill()  # the eleventh
    assert len(kills) == 11 and not t.alive


# --- where the collection runs -------------------------------------------------


def test_collected_inside_another_tasklet():
    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    seen = []

    def collector():
        before = stackless.getruncount()
        gc.collect()
        seen.append((list(log), stackless.getruncount() == before))

    stackless.tasklet(collector)()
    stackless.tasklet(lambda: seen.append("next in ring"))()
    stackless.run()
    assert seen == [(["TaskletExit", "finally"], True), "next in ring"]
    assert ref() is None


def test_the_running_tasklets_tempval_is_kept():
    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    stackless.current.tempval = "mine"
    gc.collect()
    assert ref() is None and log[-1] == "finally"
    assert stackless.current.tempval == "mine"
    stackless.current.tempval = None


def test_inside_the_schedule_callback_the_kill_waits():
    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    seen = []

    def callback(prev, next):
        if not seen:
            gc.collect()
            seen.append(list(log))

    t = stackless.tasklet(lambda: log.append("other ran"))()
    old = stackless.set_schedule_callback(callback)
    try:
        t.run()
    finally:
        stackless.set_schedule_callback(old)
    assert seen == [[]]  # no switch inside the callback
    assert log == ["other ran", "TaskletExit", "finally"]  # at main's next switch
    assert ref() is None and stackless.getruncount() == 1


def test_inside_a_greenlet_the_kill_waits():
    import greenlet

    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    greenlet.greenlet(gc.collect).switch()
    assert log == []  # kept for later (its weak references are gone already)
    stackless.schedule()  # main alone: no switch, but a scheduling call
    assert log == ["TaskletExit", "finally"] and ref() is None


def test_under_switch_trap_the_kill_waits():
    log = []
    ref = started(guarded(log, lambda: stackless.channel().receive()))
    stackless.switch_trap(1)
    try:
        gc.collect()
        assert log == []
    finally:
        stackless.switch_trap(-1)
    stackless.schedule()
    assert log == ["TaskletExit", "finally"] and ref() is None


def test_an_exception_from_a_finally_is_reported(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_type))

    def body():
        try:
            stackless.channel().receive()
        finally:
            raise ValueError("from finally")

    ref = started(body)
    gc.collect()
    assert ref() is None and reported == [ValueError]


def test_a_tasklet_of_another_thread_dies_in_its_thread():
    log = []
    refs = []
    collected = threading.Event()

    def thread_main():
        refs.append(started(guarded(log, lambda: stackless.channel().receive())))
        refs.append(threading.get_ident())
        collected.wait(10)
        stackless.run()  # the kill waits in the ring of this thread
        log.append("thread ran")

    th = threading.Thread(target=thread_main)
    th.start()
    while len(refs) < 2:
        threading.Event().wait(0.001)
    gc.collect()
    assert log == []  # not killed from here
    collected.set()
    th.join(10)
    assert log == ["TaskletExit", "finally", "thread ran"]
    gc.collect()
    assert refs[0]() is None


def test_a_tasklet_of_an_ended_thread_is_dropped_unrun():
    log = []
    refs = []

    def thread_main():
        refs.append(started(guarded(log, lambda: stackless.channel().receive())))

    th = threading.Thread(target=thread_main)
    th.start()
    th.join(10)
    gc.collect()
    assert refs[0]() is None
    assert log == []  # its thread is gone: nothing could run the finally


def test_interpreter_shutdown_with_suspended_tasklets():
    script = textwrap.dedent("""
        import gc, syncless
        stackless = syncless.install_stackless()
        keep = stackless.channel()

        def body(ch):
            try:
                ch.receive()
            finally:
                print("finally", flush=True)

        stackless.tasklet(body)(keep)
        stackless.tasklet(body)(stackless.channel())
        stackless.tasklet(stackless.schedule_remove)()
        stackless.run()
        gc.collect()
        print("exiting", keep.balance, flush=True)
    """)
    out = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["finally", "exiting -1"]
    assert "Error" not in out.stderr


# --- frames of many shapes -------------------------------------------------


def shapes():
    def inline_calls(ch):
        def inner(c):
            return [c.receive()]
        return inner(ch)

    def comprehension(ch):
        return [c.receive() for c in [ch]]

    def with_block(ch):
        import contextlib
        with contextlib.nullcontext(ch) as c:
            return c.receive()

    def in_except(ch):
        try:
            raise KeyError("handled")
        except KeyError:
            return ch.receive()

    def keywords(ch):
        return dict(a=1, b=ch.receive())

    def method_of(ch):
        return ch.receive.__call__()

    def sending(ch):
        return ch.send(("a tuple holding", ch))

    def generator(ch):
        def gen():
            yield ch.receive()
        return list(gen())

    def star_call(ch):
        return ch.receive(*())

    def next_item(ch):
        return next(ch)

    def sorted_key(ch):
        return sorted([1], key=lambda _: ch.receive())

    def property_get(ch):
        class Holder:
            @property
            def value(self):
                return ch.receive()
        return Holder().value

    return [inline_calls, comprehension, with_block, in_except, keywords, method_of, sending,
            generator, star_call, next_item, sorted_key, property_get]


def blocked_in(shape, log):
    """A tasklet body that blocks inside `shape` and logs its finally."""
    def body(ch):
        try:
            shape(ch)
        finally:
            log.append("finally")
    return body


@pytest.mark.parametrize("shape", shapes(), ids=lambda f: f.__name__)
def test_frames_of_many_shapes_are_read_safely(shape):
    """Blocked in all kinds of frames: collecting never misreads them (the
    ASan run checks that), and each is either collected with its finally run
    or still alive and killable."""
    log = []
    ref = started(blocked_in(shape, log), stackless.channel())
    for _ in range(3):
        gc.collect()
    t = ref()
    if t is not None:
        assert t.blocked and log == []
        t.kill()
        del t
    assert log == ["finally"]
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("shape", [s for s in shapes() if s.__name__ in (
    "inline_calls", "comprehension", "in_except", "keywords", "sending")],
    ids=lambda f: f.__name__)
def test_shapes_whose_stacks_are_read_are_collected(shape):
    log = []
    ref = started(blocked_in(shape, log), stackless.channel())
    gc.collect()
    assert ref() is None and log == ["finally"]


@pytest.mark.xfail(reason="references held by C code on the tasklet's stack (here sorted()'s "
                          "list and key call) are invisible to the collector, so what they "
                          "reach stays alive", strict=True)
def test_a_channel_reached_only_through_c_code_on_the_stack():
    log = []

    def body(ch):
        try:
            sorted([ch], key=lambda c: c.receive())
        finally:
            log.append("finally")

    ref = started(body, stackless.channel())
    try:
        gc.collect()
        assert ref() is None
    finally:
        if ref() is not None:
            ref().kill()


# --- frames stopped at a call whose operands are being dropped ---------------
# The call returned and the interpreter drops its arguments one by one; one's
# __del__, a weakref callback or a trace function blocks there. The frame's
# instruction still says "call", but slots of arguments already dropped hold
# freed memory: the collector must not be shown them. Each scenario runs in
# its own process (a misread crashes it), with freed memory reused by junk.

STALE_PRELUDE = """if True:
    import gc, operator, sys, weakref
    import syncless
    stackless = syncless.install_stackless()
    ch = stackless.channel()
    class Victim:
        pass
"""

STALE_SCENARIOS = {
    "del_of_an_argument": """
    class Blocker:
        def __del__(self):
            ch.receive()
    def body():
        operator.is_(Victim(), Blocker())
""",
    "weakref_callback": """
    class Target:
        pass
    refs = []
    def target():
        t = Target()
        refs.append(weakref.ref(t, lambda r: ch.receive()))
        return t
    def body():
        operator.is_(Victim(), target())
""",
    "trace_exception_event": """
    def tracer(frame, event, arg):
        if event == "exception" and frame.f_code.co_name == "body":
            ch.receive()
        return tracer
    def body():
        sys.settrace(tracer)
        sys._getframe().f_trace = tracer
        try:
            int(Victim())
        except TypeError:
            pass
""",
}

STALE_CHECK = """
    ts = [stackless.tasklet(body)() for _ in range(50)]
    stackless.run()
    junk = [bytearray(b"\\xff" * 48) for _ in range(2000)]
    blocked = sum(t.blocked for t in ts)
    for _ in range(3):
        gc.collect()
    for t in ts:
        t.kill()
    print(blocked, ch.balance)
"""


@pytest.mark.parametrize("scenario", sorted(STALE_SCENARIOS))
def test_a_frame_dropping_call_operands_is_read_safely(scenario):
    code = STALE_PRELUDE + textwrap.indent(textwrap.dedent(STALE_SCENARIOS[scenario]), "    ")
    code += textwrap.indent(textwrap.dedent(STALE_CHECK), "    ")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    # (A kill inside __del__ or a weakref callback is reported as "Exception
    # ignored", as CPython reports anything those raise.)
    assert (proc.returncode, proc.stdout) == (0, "50 0\n"), proc.stderr[-2000:]


def test_blocked_inside_a_generator_it_iterates():
    log = []

    def gen():
        ch = stackless.channel()
        try:
            yield ch.receive()
        finally:
            log.append("finally")

    def body():
        for _ in gen():
            pass

    ref = started(body)
    for _ in range(3):
        gc.collect()
    assert ref() is None and log == ["finally"]
