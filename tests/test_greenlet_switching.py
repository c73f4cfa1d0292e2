"""The greenlet switching model as seen from Python: what switch() passes and
returns, where a finished or failing greenlet goes, throw(), and the
attributes that describe a greenlet (gr_frame, gr_context, run, repr, ...).

Every test here states greenlet 3.x's documented (or observable) behaviour, so
the file also passes on the real greenlet:

    SYNCLESS_TEST_REAL_GREENLET=1 pytest -p no:cacheprovider --noconftest \
        tests/test_greenlet_switching.py

Tests that are about Syncless itself are skipped in that mode.
"""
import contextvars
import copy
import gc
import os
import pickle
import re
import sys
import weakref

import pytest

import greenlet
from greenlet import GreenletExit, getcurrent

REAL = os.environ.get("SYNCLESS_TEST_REAL_GREENLET") == "1"
ours_only = pytest.mark.skipif(REAL, reason="checks Syncless itself")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_tracer_left_behind():
    yield
    greenlet.settrace(None)


def suspend(*args, **kwargs):
    """Switch to the parent with these arguments; return what comes back."""
    return getcurrent().parent.switch(*args, **kwargs)


@ours_only
def test_greenlet_module_is_syncless():
    import syncless

    package = os.path.realpath(os.path.dirname(syncless.__file__))
    assert os.path.realpath(greenlet.__file__).startswith(package + os.sep)


# --- switch(): arguments and return values -------------------------------


def test_first_switch_calls_run_with_args_and_kwargs():
    calls = []

    def run(*args, **kwargs):
        calls.append((args, kwargs))
        return "done"

    assert greenlet.greenlet(run).switch(1, 2, key="v") == "done"
    assert calls == [((1, 2), {"key": "v"})]


SWITCH_CONVENTIONS = [
    pytest.param((), {}, (), id="nothing->empty-tuple"),
    pytest.param((1,), {}, 1, id="one-arg->unwrapped"),
    pytest.param((None,), {}, None, id="one-None->None"),
    pytest.param(((1,),), {}, (1,), id="one-tuple-arg->that-tuple"),
    pytest.param((1, 2), {}, (1, 2), id="two-args->tuple"),
    pytest.param((), {"k": 1}, {"k": 1}, id="kwargs-only->dict"),
    pytest.param((1,), {"k": 2}, ((1,), {"k": 2}), id="both->(args,kwargs)"),
    pytest.param((1, 2), {"k": 3}, ((1, 2), {"k": 3}), id="both-many->(args,kwargs)"),
]


@pytest.mark.parametrize("args, kwargs, expected", SWITCH_CONVENTIONS)
def test_switch_into_suspended_greenlet_returns_by_convention(args, kwargs, expected):
    def run():
        return ("received", suspend())

    g = greenlet.greenlet(run)
    g.switch()
    # The greenlet's own switch() returns what we send; its return value comes
    # back to us as a 1-tuple, unwrapped.
    assert g.switch(*args, **kwargs) == ("received", expected)
    assert g.dead


@pytest.mark.parametrize("args, kwargs, expected", SWITCH_CONVENTIONS)
def test_switch_to_parent_returns_by_convention(args, kwargs, expected):
    g = greenlet.greenlet(lambda: suspend(*args, **kwargs))
    result = g.switch()
    assert result == expected
    assert type(result) is type(expected)
    assert not g.dead


@pytest.mark.parametrize(
    "value", [5, None, (7,), (1, 2), (), {"k": 1}, "text"], ids=repr
)
def test_return_value_of_run_reaches_parent_unchanged(value):
    g = greenlet.greenlet(lambda: value)
    assert g.switch() == value
    assert g.dead


def test_values_ping_pong_between_two_greenlets():
    log = []

    def ping():
        n = 0
        while n < 6:
            log.append(("ping", n))
            n = pong.switch(n + 1)
        return ("ping finished", n)

    def pong(n):
        while True:
            log.append(("pong", n))
            n = ping.switch(n + 1)

    ping = greenlet.greenlet(ping)
    pong = greenlet.greenlet(pong)
    assert ping.switch() == ("ping finished", 6)
    assert log == [("ping", 0), ("pong", 1), ("ping", 2), ("pong", 3), ("ping", 4), ("pong", 5)]
    assert ping.dead and not pong.dead


# --- where a greenlet goes when it ends -----------------------------------


def test_finished_greenlet_switches_to_parent_not_to_caller():
    main = getcurrent()

    def parent_run():
        got = main.switch("parent suspended")
        return ("parent got", got)

    parent = greenlet.greenlet(parent_run)
    assert parent.switch() == "parent suspended"
    child = greenlet.greenlet(lambda: "child result", parent=parent)
    # The child ends in its parent (which was waiting in main.switch()); the
    # parent's own return value then comes back to us, its parent.
    assert child.switch() == ("parent got", "child result")
    assert child.dead and parent.dead


def test_uncaught_exception_is_raised_in_parent():
    main = getcurrent()

    def parent_run():
        try:
            main.switch("parent suspended")
        except KeyError as exc:
            return ("parent caught", exc.args)
        return "not raised"

    parent = greenlet.greenlet(parent_run)
    assert parent.switch() == "parent suspended"

    def child_run():
        raise KeyError("from child")

    child = greenlet.greenlet(child_run, parent=parent)
    assert child.switch() == ("parent caught", ("from child",))
    assert child.dead and parent.dead


def test_uncaught_exception_in_child_of_main_raises_from_switch():
    def fails():
        suspend()
        raise ZeroDivisionError("child failed")

    g = greenlet.greenlet(fails)
    g.switch()
    with pytest.raises(ZeroDivisionError, match="child failed") as info:
        g.switch()
    assert g.dead
    # The traceback reaches into the greenlet's frame.
    assert "fails" in [entry.name for entry in info.traceback]


def test_exit_skips_dead_parents():
    main = getcurrent()

    def waiting_run():
        try:
            return ("waiting got", main.switch("waiting"))
        except KeyError as exc:
            return ("waiting caught", exc.args)

    for outcome in ("return", "raise"):
        waiting = greenlet.greenlet(waiting_run)
        assert waiting.switch() == "waiting"
        dead_parent = greenlet.greenlet(lambda: None)
        dead_parent.switch()
        dead_parent.parent = waiting

        def child_run():
            if outcome == "raise":
                raise KeyError("child")
            return "child result"

        child = greenlet.greenlet(child_run, parent=dead_parent)
        expected = ("waiting got", "child result") if outcome == "return" else ("waiting caught", ("child",))
        assert child.switch() == expected
        assert waiting.dead


def test_exit_into_unstarted_parent_starts_it_with_the_result():
    parent = greenlet.greenlet(lambda *args: ("parent started with", args))
    child = greenlet.greenlet(lambda: "child result", parent=parent)
    assert child.switch() == ("parent started with", ("child result",))
    assert child.dead and parent.dead


def test_switch_to_dead_greenlet_lands_in_its_parent():
    main = getcurrent()
    finished = greenlet.greenlet(lambda: None)
    finished.switch()
    assert finished.dead

    # With the current greenlet as parent, the switch returns at once.
    assert finished.switch(1, 2) == (1, 2)
    assert finished.switch("only") == "only"

    def waiting_run():
        got = main.switch("waiting")
        return ("waiting got", got)

    waiting = greenlet.greenlet(waiting_run)
    assert waiting.switch() == "waiting"
    finished.parent = waiting
    assert finished.switch("hello") == ("waiting got", "hello")
    assert waiting.dead


def test_dead_greenlet_is_falsy_and_dead():
    g = greenlet.greenlet(lambda: None)
    assert not g and not g.dead  # unstarted: not active, not dead
    g.switch()
    assert not g and g.dead


# --- throw() --------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        ((1,), "exceptions must be classes, or instances, not int"),
        (("text",), "exceptions must be classes, or instances, not str"),
        ((ValueError("x"), "separate"), "instance exception may not have a separate value"),
        ((ValueError, None, 5), "throw() third argument must be a traceback object"),
        ((ValueError, "v", "tb"), "throw() third argument must be a traceback object"),
    ],
)
def test_throw_argument_errors(args, message):
    ran = []
    g = greenlet.greenlet(lambda: ran.append(1))
    with pytest.raises(TypeError) as info:
        g.throw(*args)
    assert str(info.value) == message
    # Nothing was switched: the greenlet is still unstarted and usable.
    assert not g.dead and not g
    g.switch()
    assert ran == [1]


def test_throw_into_suspended_greenlet_raises_at_its_switch():
    def run():
        try:
            suspend()
        except ValueError as exc:
            return ("caught", type(exc), exc.args)
        return "not raised"

    g = greenlet.greenlet(run)
    g.switch()
    assert g.throw(ValueError, "v") == ("caught", ValueError, ("v",))
    assert g.dead


def test_throw_forms_class_instance_and_traceback():
    def catcher():
        caught = []
        while True:
            try:
                suspend(caught[-1] if caught else None)
            except Exception as exc:  # noqa: BLE001
                caught.append(exc)

    g = greenlet.greenlet(catcher)
    g.switch()

    exc = g.throw(KeyError)
    assert type(exc) is KeyError and exc.args == ()

    exc = g.throw(KeyError, "value")
    assert type(exc) is KeyError and exc.args == ("value",)

    instance = IndexError("same object")
    assert g.throw(instance) is instance

    try:
        raise OSError("with traceback")
    except OSError as raised:
        tb = raised.__traceback__
    exc = g.throw(OSError, OSError("with traceback"), tb)
    assert type(exc) is OSError
    assert exc.__traceback__ is not None
    assert tb.tb_frame in [t.tb_frame for t in _walk_tb(exc.__traceback__)]

    g.throw(GreenletExit)  # uncaught by `except Exception`: ends it
    assert g.dead


def _walk_tb(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_throw_into_unstarted_greenlet_never_runs_it():
    ran = []
    g = greenlet.greenlet(lambda: ran.append("ran"))
    with pytest.raises(ValueError, match="unstarted"):
        g.throw(ValueError("unstarted"))
    assert g.dead
    assert ran == []


def test_throw_default_is_greenlet_exit_and_becomes_the_return_value():
    ran = []
    g = greenlet.greenlet(lambda: ran.append("ran"))
    result = g.throw()
    assert type(result) is GreenletExit
    assert g.dead and ran == []


def test_throw_into_dead_greenlet_raises_in_parent():
    g = greenlet.greenlet(lambda: 5)
    assert g.switch() == 5
    with pytest.raises(KeyError):
        g.throw(KeyError("k"))
    assert type(g.throw()) is GreenletExit


def test_greenlet_exit_becomes_return_value_of_suspended_greenlet():
    finally_ran = []

    def run():
        try:
            suspend()
        finally:
            finally_ran.append(True)

    g = greenlet.greenlet(run)
    g.switch()
    exit_exc = GreenletExit("bye")
    assert g.throw(exit_exc) is exit_exc
    assert g.dead and finally_ran == [True]


def test_greenlet_exit_subclass_is_also_a_return_value():
    class Stop(GreenletExit):
        pass

    g = greenlet.greenlet(suspend)
    g.switch()
    result = g.throw(Stop, "x")
    assert type(result) is Stop and result.args == ("x",)


def test_raising_greenlet_exit_from_run_returns_it():
    exc = GreenletExit("raised in run")

    def run():
        raise exc

    assert greenlet.greenlet(run).switch() is exc


# --- getcurrent() ---------------------------------------------------------


def test_getcurrent_identity():
    main = getcurrent()
    assert getcurrent() is main
    assert main.parent is None
    assert main  # main is always active
    assert not main.dead
    assert greenlet.greenlet.getcurrent is getcurrent

    seen = {}

    def run():
        seen["inside"] = getcurrent()
        seen["parent"] = getcurrent().parent
        suspend()
        seen["after resume"] = getcurrent()

    g = greenlet.greenlet(run)
    assert g.parent is main
    g.switch()
    assert getcurrent() is main
    g.switch()
    assert seen == {"inside": g, "parent": main, "after resume": g}
    assert getcurrent() is main


def test_default_parent_is_the_creating_greenlet():
    made = []

    def creator():
        made.append(greenlet.greenlet(lambda: None))

    outer = greenlet.greenlet(creator)
    outer.switch()
    assert made[0].parent is outer


# --- gr_frame -------------------------------------------------------------


def test_gr_frame_is_none_unless_suspended():
    seen = {}

    def inner():
        seen["running"] = getcurrent().gr_frame
        local_marker = "here"  # noqa: F841
        getcurrent().parent.switch()

    def outer():
        inner()

    g = greenlet.greenlet(outer)
    assert g.gr_frame is None  # unstarted
    assert getcurrent().gr_frame is None  # main, running
    g.switch()
    assert seen["running"] is None  # running

    frame = g.gr_frame
    assert frame is not None
    assert frame.f_code is inner.__code__
    assert frame.f_locals["local_marker"] == "here"
    assert frame.f_back.f_code is outer.__code__
    # The chain ends at run's frame: it does not lead into the parent.
    assert frame.f_back.f_back is None

    g.switch()
    assert g.dead and g.gr_frame is None


# --- gr_context -----------------------------------------------------------

VAR = contextvars.ContextVar("VAR", default="default")


def test_new_greenlet_starts_with_an_empty_context():
    token = VAR.set("main value")
    try:
        seen = {}

        def run():
            seen["value"] = VAR.get()
            seen["size"] = len(contextvars.copy_context())

        g = greenlet.greenlet(run)
        assert g.gr_context is None
        g.switch()
        assert seen == {"value": "default", "size": 0}
    finally:
        VAR.reset(token)


def test_context_vars_are_isolated_between_greenlets():
    token = VAR.set("main")
    try:
        log = []

        def run(name):
            VAR.set(name)
            log.append((name, VAR.get()))
            suspend()
            log.append((name, VAR.get()))

        a = greenlet.greenlet(run)
        b = greenlet.greenlet(run)
        a.switch("a")
        b.switch("b")
        assert VAR.get() == "main"
        a.switch()
        b.switch()
        assert log == [("a", "a"), ("b", "b"), ("a", "a"), ("b", "b")]
        assert VAR.get() == "main"
    finally:
        VAR.reset(token)


def test_gr_context_get_and_set():
    def run():
        VAR.set("inside")
        suspend()
        return VAR.get()

    g = greenlet.greenlet(run)
    g.switch()
    ctx = g.gr_context
    assert isinstance(ctx, contextvars.Context)
    assert ctx[VAR] == "inside"

    # Replacing a suspended greenlet's context changes what it sees on resume.
    replacement = contextvars.Context()
    replacement.run(VAR.set, "replaced")
    g.gr_context = replacement
    assert g.gr_context is replacement
    assert g.switch() == "replaced"


def test_gr_context_of_unstarted_greenlet_is_used_when_it_starts():
    token = VAR.set("copied from main")
    try:
        g = greenlet.greenlet(VAR.get)
        g.gr_context = contextvars.copy_context()
        assert g.switch() == "copied from main"
    finally:
        VAR.reset(token)


def test_gr_context_of_running_greenlet_is_the_live_context():
    token = VAR.set("main live")
    try:
        ctx = getcurrent().gr_context
        assert ctx[VAR] == "main live"

        def run():
            mine = contextvars.Context()
            getcurrent().gr_context = mine
            VAR.set("set after assignment")
            return getcurrent().gr_context is mine, mine[VAR]

        assert greenlet.greenlet(run).switch() == (True, "set after assignment")
        assert VAR.get() == "main live"
    finally:
        VAR.reset(token)


def test_gr_context_rejects_non_context_and_delete():
    g = greenlet.greenlet(lambda: None)
    with pytest.raises(TypeError) as info:
        g.gr_context = {}
    assert str(info.value) == "greenlet context must be a contextvars.Context or None"
    with pytest.raises(AttributeError) as info:
        del g.gr_context
    assert str(info.value) == "can't delete context attribute"
    g.gr_context = None  # allowed
    assert g.gr_context is None


# --- run ------------------------------------------------------------------


def test_run_attribute_rules():
    def body():
        suspend()

    g = greenlet.greenlet(body)
    assert g.run is body

    def other():
        return "other"

    g.run = other  # allowed until started
    assert g.run is other
    assert g.switch() == "other"
    assert g.dead

    g = greenlet.greenlet(body)
    g.switch()
    with pytest.raises(AttributeError) as info:
        g.run
    assert str(info.value) == "run"
    with pytest.raises(AttributeError) as info:
        g.run = other
    assert str(info.value) == "run cannot be set after the start of the greenlet"
    g.switch()


def test_greenlet_without_run_fails_on_switch():
    g = greenlet.greenlet()
    with pytest.raises(AttributeError) as info:
        g.run
    assert str(info.value) == "run"
    with pytest.raises(AttributeError, match="run"):
        g.switch()


def test_deleting_run_of_unstarted_greenlet():
    g = greenlet.greenlet(lambda: 1)
    del g.run
    with pytest.raises(AttributeError):
        g.run
    with pytest.raises(AttributeError):
        g.switch()


def test_main_greenlet_has_no_run():
    main = getcurrent()
    with pytest.raises(AttributeError) as info:
        main.run
    assert str(info.value) == "Main greenlets do not have a run attribute."


def test_main_greenlet_run_cannot_be_set():
    main = getcurrent()
    with pytest.raises(AttributeError) as info:
        main.run = lambda: None
    assert str(info.value) == "Main greenlets do not have a run attribute."


def test_constructor_arguments():
    with pytest.raises(TypeError):
        greenlet.greenlet(lambda: None, getcurrent(), "extra")
    parent = greenlet.greenlet(lambda: None)
    g = greenlet.greenlet(run=lambda: None, parent=parent)
    assert g.parent is parent
    assert greenlet.greenlet(lambda: None, None).parent is getcurrent()


# --- repr -----------------------------------------------------------------

OTID = r"\(otid=0x(?:[0-9a-f]+|\(nil\))\)"


def _repr_pattern(suffix):
    return re.compile(r"^<greenlet\.greenlet object at 0x[0-9a-f]+ %s%s>$" % (OTID, suffix))


def test_repr_states():
    main = getcurrent()
    assert _repr_pattern(" current active started main").match(repr(main)), repr(main)

    inside = []
    g = greenlet.greenlet(lambda: inside.append(repr(getcurrent())) or suspend())
    assert _repr_pattern(" pending").match(repr(g)), repr(g)
    g.switch()
    assert _repr_pattern(" current active started").match(inside[0]), inside[0]
    assert _repr_pattern(" suspended active started").match(repr(g)), repr(g)
    # The main greenlet, seen from another greenlet, is suspended.
    seen = greenlet.greenlet(lambda: repr(main)).switch()
    assert _repr_pattern(" suspended active started main").match(seen), seen
    g.switch()
    assert _repr_pattern(" dead").match(repr(g)), repr(g)
    assert "0x%x" % id(g) in repr(g)


def test_repr_of_subclass_uses_its_name():
    class Worker(greenlet.greenlet):
        pass

    text = repr(Worker(lambda: None))
    assert re.match(r"^<.*Worker object at 0x[0-9a-f]+ %s pending>$" % OTID, text), text


# --- __dict__, weakrefs, subclassing, pickling ----------------------------


def test_instance_dict():
    g = greenlet.greenlet(lambda: None)
    g.name = "worker"
    assert g.__dict__ == {"name": "worker"}
    g.__dict__ = {"other": 1}
    assert g.other == 1 and not hasattr(g, "name")
    assert getcurrent().__dict__ is getcurrent().__dict__  # main has one too


def test_weakrefs_to_greenlets():
    g = greenlet.greenlet(lambda: None)
    ref = weakref.ref(g)
    assert ref() is g
    g.switch()
    assert ref() is g  # dead but referenced
    del g
    gc.collect()
    assert ref() is None

    suspended = greenlet.greenlet(suspend)
    suspended.switch()
    ref = weakref.ref(suspended)
    del suspended  # killed (GreenletExit) and freed
    assert ref() is None

    main_ref = weakref.ref(getcurrent())
    assert main_ref() is getcurrent()


def test_subclass_with_run_method_and_init():
    class Worker(greenlet.greenlet):
        def __init__(self, label, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.label = label

        def run(self, a, b=0):
            got = suspend(("started", self.label, a, b))
            return ("finished", self.label, got)

    w = Worker("w1")
    assert isinstance(w, greenlet.greenlet)
    assert w.switch(1, b=2) == ("started", "w1", 1, 2)
    assert getcurrent() is not w
    assert w.switch("resume") == ("finished", "w1", "resume")
    assert w.dead


def test_subclass_getcurrent_returns_subclass_instance():
    class Worker(greenlet.greenlet):
        def run(self):
            return getcurrent()

    w = Worker()
    assert w.switch() is w


@pytest.mark.parametrize("state", ["unstarted", "suspended", "dead", "main"])
def test_pickling_is_refused(state):
    g = greenlet.greenlet(suspend)
    if state == "suspended":
        g.switch()
    elif state == "dead":
        g.switch()
        g.switch()
    elif state == "main":
        g = getcurrent()
    # Protocols 0 and 1 fail earlier, in copyreg ("cannot pickle ...").
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError) as info:
            pickle.dumps(g, protocol)
        assert str(info.value) == "cannot serialize 'greenlet.greenlet' object"
    with pytest.raises(TypeError, match="cannot serialize"):
        copy.copy(g)
    with pytest.raises(TypeError, match="cannot serialize"):
        copy.deepcopy(g)
    if state == "suspended":
        g.switch()


def test_pickling_subclass_is_refused_with_its_name():
    class Worker(greenlet.greenlet):
        pass

    with pytest.raises(TypeError) as info:
        pickle.dumps(Worker())
    assert str(info.value) == "cannot serialize 'Worker' object"


# --- settrace / gettrace --------------------------------------------------


def test_settrace_reports_switch_and_throw_events():
    main = getcurrent()
    events = []

    def tracer(event, args):
        origin, target = args
        events.append((event, origin, target))

    assert greenlet.gettrace() is None
    assert greenlet.settrace(tracer) is None
    assert greenlet.gettrace() is tracer

    g = greenlet.greenlet(suspend)
    g.switch()  # main -> g (start), g -> main (suspend)
    g.throw()  # main -> g as a throw, g -> main on exit
    assert greenlet.settrace(None) is tracer
    assert greenlet.gettrace() is None

    assert events == [
        ("switch", main, g),
        ("switch", g, main),
        ("throw", main, g),
        ("switch", g, main),
    ]


def test_settrace_returns_previous_tracer():
    def first(event, args):
        pass

    def second(event, args):
        pass

    assert greenlet.settrace(first) is None
    assert greenlet.settrace(second) is first
    assert greenlet.settrace(None) is second


def test_tracer_runs_in_the_target_greenlet():
    where = []
    greenlet.settrace(lambda event, args: where.append(getcurrent()))
    g = greenlet.greenlet(lambda: None)
    g.switch()
    greenlet.settrace(None)
    assert where == [g, getcurrent()]


def test_raising_tracer_is_removed_and_its_error_replaces_the_switch():
    ran = []

    def bad(event, args):
        raise RuntimeError("tracer failed")

    greenlet.settrace(bad)
    g = greenlet.greenlet(lambda: ran.append("ran"))
    # The tracer fails in the new greenlet before run: that error ends it and
    # arrives in the parent.
    with pytest.raises(RuntimeError, match="tracer failed"):
        g.switch()
    assert ran == [] and g.dead
    assert greenlet.gettrace() is None

    def resumable():
        try:
            suspend()
        except RuntimeError as exc:
            return ("resumed with", str(exc))
        return "resumed normally"

    r = greenlet.greenlet(resumable)
    r.switch()
    greenlet.settrace(bad)
    # Into a suspended greenlet: its switch() raises the tracer's error.
    assert r.switch() == ("resumed with", "tracer failed")
    assert greenlet.gettrace() is None


def test_switch_and_throw_to_self_are_traced():
    main = getcurrent()
    events = []
    greenlet.settrace(lambda event, args: events.append((event, args)))
    assert main.switch(42) == 42
    with pytest.raises(KeyError):
        main.throw(KeyError)
    greenlet.settrace(None)
    assert events == [("switch", (main, main)), ("throw", (main, main))]


# --- misc -----------------------------------------------------------------


def test_module_and_type_expose_the_same_names():
    for name in ("getcurrent", "error", "GreenletExit", "settrace", "gettrace"):
        assert getattr(greenlet.greenlet, name) is getattr(greenlet, name)
    assert issubclass(greenlet.GreenletExit, BaseException)
    assert not issubclass(greenlet.GreenletExit, Exception)
    assert issubclass(greenlet.error, Exception)


def _depth():
    n, f = 0, sys._getframe(1)
    while f is not None:
        n, f = n + 1, f.f_back
    return n


def _recurse(n):
    return 0 if n == 0 else 1 + _recurse(n - 1)


def test_recursion_depth_is_per_greenlet():
    # A greenlet resumed from a deep stack must not inherit that depth, and
    # the deep stack gets its own depth back afterwards.
    limit = sys.getrecursionlimit()

    def run():
        suspend()
        return _recurse(limit // 2)

    g = greenlet.greenlet(run)
    g.switch()  # started from a shallow stack

    def deep(n):
        if n > 0:
            return deep(n - 1)
        result = g.switch()
        with pytest.raises(RecursionError):
            _recurse(limit // 2)
        return result, _recurse(40)

    headroom = 100
    assert deep(limit - _depth() - headroom) == (limit // 2, 40)
