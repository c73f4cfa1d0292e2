"""Trace and profile functions per tasklet (Stackless 3.7's test_tracing):
sys.settrace() sets the running tasklet's, each tasklet keeps its own across
switches, a new tasklet starts with none, and tasklet.trace_function /
profile_function read and set them, also for tasklets that are not running."""
import sys
import threading

import pytest

import syncless

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]


@pytest.fixture(autouse=True)
def no_hooks_left():
    assert sys.gettrace() is None and sys.getprofile() is None
    yield
    sys.settrace(None)
    sys.setprofile(None)


class Counter:
    def __init__(self):
        self.events = []

    def __call__(self, frame, event, arg):
        self.events.append((frame.f_code.co_name, event))
        return self

    def names(self):
        return {name for name, _ in self.events}


def observe(out, label):
    """Records what the running tasklet sees as its trace/profile functions."""
    me = stackless.current
    out.append((label, sys.gettrace(), me.trace_function, sys.getprofile(), me.profile_function))


def test_current_tasklet_is_the_thread():
    tracer = Counter()
    me = stackless.current
    assert me.trace_function is None and me.profile_function is None
    me.trace_function = tracer
    assert sys.gettrace() is tracer and me.trace_function is tracer
    me.trace_function = None
    assert sys.gettrace() is None
    me.profile_function = tracer
    assert sys.getprofile() is tracer and me.profile_function is tracer
    me.profile_function = None
    assert sys.getprofile() is None


def test_a_new_tasklet_starts_untraced_and_main_keeps_its_tracer():
    tracer = Counter()
    seen = []

    def body():
        observe(seen, "body")

    t = stackless.tasklet(body)()
    sys.settrace(tracer)
    stackless.run()
    traced_main = sys.gettrace()
    sys.settrace(None)
    assert seen == [("body", None, None, None, None)]
    assert traced_main is tracer
    assert "body" not in tracer.names()
    assert not t.alive


def test_set_on_a_tasklet_that_is_not_running():
    tracer, profiler = Counter(), Counter()
    seen = []

    def traced_body():
        observe(seen, "first")
        stackless.schedule()
        observe(seen, "second")

    t = stackless.tasklet(traced_body)()
    t.trace_function = tracer
    t.profile_function = profiler
    assert t.trace_function is tracer and t.profile_function is profiler
    assert sys.gettrace() is None  # main is not traced by it
    stackless.run()
    assert seen == [("first", tracer, tracer, profiler, profiler),
                    ("second", tracer, tracer, profiler, profiler)]
    assert "traced_body" in tracer.names() and "traced_body" in profiler.names()
    assert sys.gettrace() is None and sys.getprofile() is None
    assert t.trace_function is None  # dead: nothing kept


def test_settrace_inside_a_tasklet_stays_with_it():
    tracer = Counter()
    order = []

    def a():
        sys.settrace(tracer)
        stackless.schedule()
        order.append(("a", sys.gettrace()))
        sys.settrace(None)

    def b():
        order.append(("b", sys.gettrace()))
        stackless.schedule()
        order.append(("b", sys.gettrace()))

    ta = stackless.tasklet(a)()
    stackless.tasklet(b)()
    stackless.run()
    assert order == [("b", None), ("a", tracer), ("b", None)]
    assert ta.trace_function is None


def test_cleared_before_it_ran():
    tracer = Counter()
    t = stackless.tasklet(lambda: None)()
    t.trace_function = tracer
    t.trace_function = None
    stackless.run()
    assert tracer.events == []


def test_set_while_paused_in_the_middle():
    tracer = Counter()

    def body():
        stackless.schedule_remove()
        inner()

    def inner():
        return 1

    t = stackless.tasklet(body)()
    stackless.run()
    assert t.paused and t.trace_function is None
    t.trace_function = tracer
    t.insert()
    stackless.run()
    assert ("inner", "call") in tracer.events


def test_a_trace_function_that_switches_keeps_the_others_traced():
    # The thread's tracing depth travels with the tasklet (Stackless's
    # TestTracingFlag): a switch inside a trace function leaves the next
    # tasklet traced.
    calls = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "foo":
            calls.append(stackless.current)
            stackless.schedule()
        return None

    def foo():
        pass

    def task():
        foo()
        foo()

    t1 = stackless.tasklet(task)()
    t2 = stackless.tasklet(task)()
    t1.trace_function = tracer
    t2.trace_function = tracer
    stackless.run()
    assert calls.count(t1) == 2 and calls.count(t2) == 2
    assert sys.gettrace() is None


def test_a_schedule_callback_can_trace_every_tasklet():
    tracer = Counter()

    def callback(prev, nxt):
        if nxt is not None and not nxt.is_main and nxt.alive:
            nxt.trace_function = tracer

    def work(name):
        stackless.schedule()

    stackless.set_schedule_callback(callback)
    try:
        stackless.tasklet(work)("x")
        stackless.tasklet(work)("y")
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
    assert ("work", "call") in tracer.events
    assert sys.gettrace() is None


def test_errors():
    dead = stackless.tasklet()
    assert dead.trace_function is None and dead.profile_function is None
    with pytest.raises(RuntimeError, match="tasklet is not alive"):
        dead.trace_function = Counter()
    with pytest.raises(RuntimeError, match="tasklet is not alive"):
        dead.profile_function = Counter()
    t = stackless.tasklet(lambda: None)()
    with pytest.raises(TypeError, match="trace_function must be callable or None"):
        t.trace_function = 3
    main = stackless.current
    errors = []

    def other_thread():
        for attribute in ("trace_function", "profile_function"):
            try:
                setattr(main, attribute, None)
            except RuntimeError as e:
                errors.append(str(e))

    th = threading.Thread(target=other_thread)
    th.start()
    th.join()
    assert len(errors) == 2 and all("another thread" in e for e in errors)


def test_greenlets_inside_a_tasklet_share_its_tracer():
    import greenlet
    tracer = Counter()

    def in_greenlet():
        return sys.gettrace()

    def body():
        return greenlet.greenlet(in_greenlet).switch()

    results = []
    t = stackless.tasklet(lambda: results.append(body()))()
    t.trace_function = tracer
    stackless.run()
    assert results == [tracer]
    assert "in_greenlet" in tracer.names()


def test_an_audit_hook_for_settrace_cannot_switch_mid_switch():
    # Installing a tasklet's trace function raises the "sys.settrace" audit
    # event: Python code in the middle of a switch. A switch there is refused
    # (and reported), never corrupting the ring. Audit hooks cannot be
    # removed, so this runs in a child process.
    import subprocess
    import textwrap
    code = textwrap.dedent("""
        import sys, syncless
        stackless = syncless.install_stackless()
        seen = []
        armed = []
        def hook(event, args):
            if event == "sys.settrace" and armed:
                try:
                    stackless.schedule()
                except RuntimeError as e:
                    seen.append(str(e))
        sys.addaudithook(hook)
        def traced():
            pass
        t = stackless.tasklet(traced)()
        t.trace_function = lambda *a: None
        armed.append(1)
        stackless.run()
        armed.clear()
        print(len(seen) > 0, set(seen), stackless.getruncount())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True {'Recursive scheduler call due to callbacks!'} 1\n"
