"""The stackless face, part 1: the module, tasklets, the run ring and its
exact order, run()/schedule()/schedule_remove(), kill/throw of unstarted and
runnable tasklets, and exceptions travelling to main (shared spec
stackless.md §1.1, §1.2, §2.1, §2.3-§2.7)."""
import builtins
import sys
import threading

import pytest

import syncless

stackless = syncless.install_stackless()
import _stackless  # noqa: E402  (after install_stackless)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]


# --- module -------------------------------------------------------------


def test_module_layout():
    assert stackless.stackless is stackless
    assert sys.modules["stackless"] is stackless
    assert _stackless.tasklet is stackless.tasklet
    assert _stackless.channel is stackless.channel
    assert stackless.bomb is _stackless.bomb
    assert syncless.install_stackless() is stackless
    assert stackless.__reduce__() == "stackless"
    for name in ["getcurrent", "getmain", "getruncount", "run", "schedule",
                 "schedule_remove", "tasklet", "channel", "stackless"]:
        assert name in stackless.__all__


def test_taskletexit_is_a_builtin_systemexit():
    assert builtins.TaskletExit is stackless.TaskletExit
    assert issubclass(TaskletExit, SystemExit)  # noqa: F821 (a builtin now)
    assert TaskletExit(3).code == 3  # noqa: F821
    assert TaskletExit.__module__ == "builtins"  # noqa: F821


def test_both_faces_importable_in_one_process():
    import greenlet

    assert greenlet.getcurrent() is not None
    assert stackless.getcurrent().is_main


def test_main_tasklet():
    main = stackless.getmain()
    assert main is stackless.main is stackless.getcurrent() is stackless.current
    assert main.is_main and main.is_current and main.alive and main.scheduled
    assert not main.blocked and not main.paused
    assert main.next is main and main.prev is main
    assert stackless.getruncount() == stackless.runcount == 1
    assert main.restorable and main.nesting_level == 0
    assert stackless.enable_softswitch(None) is False


def test_new_thread_has_its_own_main():
    seen = {}

    def body():
        main = stackless.getmain()
        seen["main"] = main
        seen["current"] = stackless.getcurrent() is main
        seen["runcount"] = stackless.getruncount()
        out = []
        stackless.tasklet(out.append)(1)
        stackless.run()
        seen["out"] = out

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen["main"] is not stackless.getmain()
    assert seen["current"] and seen["runcount"] == 1 and seen["out"] == [1]


# --- states, bind, setup ------------------------------------------------


def f(*args, **kwargs):
    return args, kwargs


def test_states_through_bind_setup_and_end():
    t = stackless.tasklet()
    assert not t.alive and not t.scheduled and not t.paused and not t.blocked
    assert t.tempval is None and t.restorable and t.next is None and t.prev is None
    assert t.bind(f) is t
    assert not t.alive and t.tempval is f  # bound
    assert t.bind(None, (1,)) is t
    assert t.alive and t.paused and not t.scheduled and t.tempval is None
    t.bind(None)  # unbind
    assert not t.alive and t.tempval is None
    t.bind(f)
    assert t.setup(1, x=2) is t
    assert t.alive and t.scheduled and not t.paused
    assert t.next is stackless.main and t.prev is stackless.main
    assert stackless.getruncount() == 2
    stackless.run()
    assert not t.alive and not t.scheduled and t.tempval is None


def test_constructor_and_call():
    out = []
    append = out.append
    t = stackless.tasklet(append)
    assert t.tempval is append and not t.alive
    assert t(5) is t
    t2 = stackless.tasklet(f, (1,), {"a": 2})
    assert t2.alive and t2.paused
    t2.insert()
    stackless.run()
    assert out == [5] and not t2.alive
    t3 = stackless.tasklet(func=out.append, args=(7,))
    t3.insert().run()
    assert out == [5, 7]


@pytest.mark.parametrize(
    "args, message",
    [
        ((1,), "tasklet function must be a callable or None"),
        ((f, [1]), "tasklet args must be a tuple or None"),
        ((f, (), []), "tasklet kwargs must be a dictionary or None"),
    ],
)
def test_bind_type_errors(args, message):
    with pytest.raises(TypeError, match=message):
        stackless.tasklet().bind(*args)
    with pytest.raises(TypeError, match=message):
        stackless.tasklet(*args)


def test_bind_and_setup_runtime_errors():
    with pytest.raises(RuntimeError, match=r"can't \(re\)bind the current tasklet"):
        stackless.current.bind(f)
    t = stackless.tasklet(f)()
    with pytest.raises(RuntimeError, match="tasklet is scheduled"):
        t.bind(f)
    with pytest.raises(RuntimeError, match="tasklet is alive"):
        t.setup()
    t.kill()
    with pytest.raises(RuntimeError, match="the tasklet was not bound to a function"):
        stackless.tasklet().setup()
    with pytest.raises(RuntimeError, match="the tasklet was not bound to a function"):
        stackless.tasklet().bind(None, ())


def test_paused_started_tasklet_cannot_be_rebound():
    def body():
        stackless.schedule_remove()

    t = stackless.tasklet(body)()
    t.run()
    assert t.paused and t.alive
    with pytest.raises(RuntimeError, match="tasklet has C state on its stack"):
        t.bind(f)
    t.kill()
    assert not t.alive


def test_rebind_after_end():
    out = []
    t = stackless.tasklet(out.append)(1)
    t.run()
    t.bind(out.append)(2)
    t.run()
    assert out == [1, 2]


def test_subclass_and_weakref():
    import weakref

    class T(stackless.tasklet):
        pass

    out = []
    t = T(out.append)(3)
    t.extra = 1
    r = weakref.ref(t)
    stackless.run()
    assert out == [3] and r() is t


# --- the run ring -------------------------------------------------------


def test_fifo_and_schedule_goes_to_the_tail():
    out = []

    def body(name):
        out.append(name + "1")
        stackless.schedule()
        out.append(name + "2")

    for name in "abc":
        stackless.tasklet(body)(name)
    assert stackless.getruncount() == 4
    stackless.run()
    assert out == ["a1", "b1", "c1", "a2", "b2", "c2"]
    assert stackless.getruncount() == 1


def test_schedule_from_main_runs_the_ring_once_around():
    out = []

    def body(name):
        out.append(name)
        stackless.schedule()
        out.append(name.upper())

    stackless.tasklet(body)("a")
    stackless.tasklet(body)("b")
    stackless.schedule()
    assert out == ["a", "b"]
    stackless.schedule()
    assert out == ["a", "b", "A", "B"]


def test_schedule_returns_retval():
    assert stackless.schedule() is stackless.current  # alone: a no-op
    assert stackless.schedule(42) == 42
    got = []
    stackless.tasklet(lambda: got.append(stackless.schedule("x")))()
    assert stackless.schedule("y") == "y"
    stackless.run()
    assert got == ["x"]


def test_runcount_inside_run_excludes_main():
    seen = []

    def body():
        main = stackless.main
        seen.append((stackless.getruncount(), main.paused, main.scheduled, main.alive))

    stackless.tasklet(body)()
    stackless.tasklet(body)()
    assert stackless.run() is None
    assert seen == [(2, True, False, True), (1, True, False, True)]
    assert stackless.main.scheduled and not stackless.main.paused


def test_run_with_empty_ring_returns():
    assert stackless.run() is None
    assert stackless.getruncount() == 1


def test_run_argument_checks():
    assert stackless.run(100) is None  # nothing to run, nothing to preempt
    with pytest.raises(TypeError):
        stackless.run("x")
    with pytest.raises(TypeError):
        stackless.run(timeout=1, slices=2)
    assert stackless.getruncount() == 1


def test_schedule_remove_and_insert():
    out = []

    def body():
        out.append(1)
        out.append(stackless.schedule_remove("r"))
        out.append(2)

    t = stackless.tasklet(body)()
    stackless.run()
    assert out == [1] and t.paused and t.alive and not t.scheduled
    assert t.tempval == "r"
    t.insert()
    stackless.run()
    assert out == [1, "r", 2] and not t.alive


def test_schedule_remove_by_lone_main_is_a_noop():
    assert stackless.schedule_remove(7) == 7
    assert stackless.main.scheduled and stackless.getruncount() == 1


def test_run_skips_tasklets_between():
    out = []

    def body(name):
        out.append(name)

    a = stackless.tasklet(body)("a")
    b = stackless.tasklet(body)("b")
    c = stackless.tasklet(body)("c")
    assert stackless.main.next is a and a.next is b and b.next is c and c.next is stackless.main
    assert c.prev is b
    c.run()  # the ring pointer jumps to c; main is next after it
    assert out == ["c"]
    stackless.run()
    assert out == ["c", "a", "b"]
    del a, b


def test_run_of_an_unscheduled_tasklet_returns_to_the_caller_next():
    out = []
    a = stackless.tasklet(out.append)("a")
    t = stackless.tasklet(out.append, ("t",))  # paused, not scheduled
    t.run()
    assert out == ["t"]
    stackless.run()
    assert out == ["t", "a"]
    del a


def test_run_returns_callers_tempval():
    o = object()
    stackless.current.tempval = o
    t = stackless.tasklet(f)()
    assert t.run() is o
    assert stackless.current.tempval is None


def test_switch_pauses_the_caller():
    out = []

    def body():
        out.append(("t", stackless.main.paused, stackless.main.scheduled))
        stackless.main.insert()
        stackless.schedule()
        out.append("t2")

    t = stackless.tasklet(body)()
    assert t.switch() is None
    assert out == [("t", True, False)]
    stackless.run()
    assert out == [("t", True, False), "t2"]
    assert stackless.current.switch() is None  # on oneself: no-op


def test_insert_remove_checks():
    t = stackless.tasklet(f)
    with pytest.raises(RuntimeError, match=r"You cannot run an unbound\(dead\) tasklet"):
        t.insert()
    with pytest.raises(RuntimeError, match=r"You cannot run an unbound\(dead\) tasklet"):
        t.run()
    with pytest.raises(RuntimeError, match="The current tasklet cannot be removed."):
        stackless.current.remove()
    t.setup()
    assert t.insert() is t and stackless.getruncount() == 2  # already scheduled: no-op
    assert t.remove() is t and t.paused and stackless.getruncount() == 1
    assert t.remove() is t  # not scheduled: no-op
    t.insert()
    stackless.run()


def test_tasklet_flags_while_running():
    seen = []

    def body():
        me = stackless.current
        seen.append((me.is_current, me.is_main, me.scheduled, me.alive, me.paused))

    t = stackless.tasklet(body)()
    assert not t.is_current
    stackless.run()
    assert seen == [(True, False, True, True, False)]


# --- ends and exceptions -----------------------------------------------


def test_uncaught_exception_reaches_main_from_run_others_stay():
    out = []

    def bad():
        raise ValueError("boom")

    stackless.tasklet(bad)()
    other = stackless.tasklet(out.append)(1)
    with pytest.raises(ValueError, match="boom"):
        stackless.run()
    assert other.scheduled and out == []
    assert stackless.main.scheduled
    stackless.run()
    assert out == [1]


def test_uncaught_exception_reaches_main_from_schedule():
    def bad():
        raise KeyError("k")

    stackless.tasklet(bad)()
    with pytest.raises(KeyError):
        stackless.schedule()
    assert stackless.getruncount() == 1


def test_exception_keeps_its_traceback():
    def inner():
        raise IndexError("deep")

    stackless.tasklet(inner)()
    with pytest.raises(IndexError) as info:
        stackless.run()
    assert any(entry.name == "inner" for entry in info.traceback)


def test_taskletexit_ends_a_tasklet_silently():
    def body():
        raise TaskletExit  # noqa: F821

    t = stackless.tasklet(body)()
    stackless.run()
    assert not t.alive


def test_systemexit_in_a_tasklet_goes_to_main():
    def body():
        sys.exit(3)

    stackless.tasklet(body)()
    with pytest.raises(SystemExit) as info:
        stackless.run()
    assert info.value.code == 3


# --- kill / throw / raise_exception (unstarted, runnable) ---------------


def test_kill_unstarted_never_runs_the_body():
    out = []
    t = stackless.tasklet(out.append)(1)
    t.kill()
    assert out == [] and not t.alive and not t.scheduled
    with pytest.raises(RuntimeError, match=r"You cannot run an unbound\(dead\) tasklet"):
        t.run()
    t.kill()  # dead: no-op


def test_kill_runnable_runs_finally_and_returns():
    out = []

    def body():
        try:
            stackless.schedule()
            out.append("not reached")
        finally:
            out.append("finally")

    t = stackless.tasklet(body)()
    t.run()
    assert t.alive and t.scheduled
    assert t.kill() is None
    assert out == ["finally"] and not t.alive and stackless.getruncount() == 1


def test_kill_pending_makes_it_runnable_only():
    out = []

    def body():
        try:
            stackless.schedule_remove()
        except TaskletExit:  # noqa: F821
            out.append("exit")
            raise

    t = stackless.tasklet(body)()
    t.run()
    assert t.paused
    t.kill(pending=True)
    assert out == [] and t.scheduled and t.alive
    stackless.run()
    assert out == ["exit"] and not t.alive


def test_current_kill_raises_here():
    with pytest.raises(TaskletExit):  # noqa: F821
        stackless.current.kill()
    got = []

    def body():
        try:
            stackless.current.kill()
        except TaskletExit:  # noqa: F821
            got.append(1)

    stackless.tasklet(body)()
    stackless.run()
    assert got == [1]


def test_throw_to_unstarted_reaches_main_at_once_or_pending():
    t = stackless.tasklet(f)()
    with pytest.raises(IndexError):
        t.throw(IndexError)
    assert not t.alive
    t = stackless.tasklet(f)()
    t.throw(IndexError, pending=True)
    assert t.alive
    with pytest.raises(IndexError):
        stackless.run()
    assert not t.alive


def test_throw_to_runnable_with_value_and_instance():
    got = []

    def body():
        try:
            stackless.schedule_remove()
        except Exception as e:
            got.append((type(e), e.args))

    t = stackless.tasklet(body)()
    t.run()
    t.throw(ValueError, "v")
    t = stackless.tasklet(body)()
    t.run()
    t.throw(KeyError("i"))
    assert got == [(ValueError, ("v",)), (KeyError, ("i",))]


def test_throw_errors():
    t = stackless.tasklet(f)
    with pytest.raises(RuntimeError, match="You cannot throw to a dead tasklet"):
        t.throw(ValueError)
    t.throw(TaskletExit)  # noqa: F821  (accepted on a dead tasklet)
    t.setup()
    with pytest.raises(TypeError, match="instance exception may not have a separate value"):
        t.throw(ValueError("a"), "b")
    with pytest.raises(TypeError, match="exceptions must be classes, or instances, not int"):
        t.throw(1)
    with pytest.raises(TypeError, match="third argument must be a traceback object"):
        t.throw(ValueError, None, 1)
    assert t.scheduled
    t.kill()


def test_raise_exception():
    got = []

    def body():
        try:
            stackless.schedule()
        except ValueError as e:
            got.append(e.args)

    t = stackless.tasklet(body)()
    t.run()
    t.raise_exception(ValueError, 1, 2)
    assert got == [(1, 2)]
    with pytest.raises(TypeError, match="tasklet.raise_exception needs Exception or string "
                                        "subclass as first parameter"):
        stackless.tasklet(f)().raise_exception(1)
    with pytest.raises(RuntimeError, match="dead"):
        t.raise_exception(ValueError)


# --- tempval and bomb ---------------------------------------------------


def test_bomb_object():
    b = stackless.bomb(ValueError, ValueError("x"), None)
    assert b.type is ValueError and b.value.args == ("x",) and b.traceback is None
    try:
        raise KeyError("k")
    except KeyError:
        b2 = stackless.bomb(sys.exc_info())
    assert b2.type is KeyError and b2.traceback is not None
    assert stackless.bomb().type is None


def test_bomb_in_tempval_explodes_on_resume():
    got = []

    def body():
        try:
            stackless.schedule_remove()
        except ZeroDivisionError:
            got.append("zero")

    t = stackless.tasklet(body)()
    t.run()
    t.tempval = stackless.bomb(ZeroDivisionError, ZeroDivisionError("z"))
    t.run()
    assert got == ["zero"]


def test_bomb_as_schedule_retval_explodes():
    with pytest.raises(ValueError):
        stackless.schedule(stackless.bomb(ValueError, ValueError("s")))


# --- more attributes, nesting, handlers -------------------------------------


def test_atomic_and_ignore_nesting_flags():
    cur = stackless.current
    assert cur.atomic is False
    with stackless.atomic():
        assert cur.atomic is True
    assert cur.atomic is False
    assert cur.set_atomic(1) is False and cur.set_atomic(0) is True
    assert cur.set_ignore_nesting(True) is False and cur.ignore_nesting
    assert cur.set_ignore_nesting(False) is True
    with pytest.raises(TypeError, match="set_atomic needs exactly one bool or integer"):
        cur.set_atomic("x")
    with pytest.raises(TypeError, match="set_ignore_nesting needs exactly one bool or integer"):
        cur.set_ignore_nesting(None)
    assert stackless.tasklet(f).atomic is False  # not inherited


def test_thread_id_and_frame():
    assert stackless.current.thread_id == threading.get_ident()
    frames = []

    def body():
        frames.append(stackless.current.frame.f_code.co_name)
        stackless.schedule()

    t = stackless.tasklet(body)()
    assert t.frame is None  # not started
    stackless.schedule()
    assert frames == ["body"] and t.frame.f_code.co_name == "body"
    assert stackless.current.frame.f_code.co_name == "test_thread_id_and_frame"
    stackless.run()
    assert t.frame is None

    ids = []
    th = threading.Thread(target=lambda: ids.append(stackless.tasklet(f)))
    th.start()
    th.join()
    assert ids[0].thread_id == -1  # its thread is gone


def test_nested_run_from_a_tasklet():
    out = []

    def inner(name):
        out.append(name)

    def outer():
        stackless.tasklet(inner)("i1")
        out.append("outer-run")
        stackless.run()  # returns once the ring is empty: before main resumes
        out.append("outer-back")

    stackless.tasklet(outer)()
    stackless.run()
    assert out == ["outer-run", "i1", "outer-back"]


def test_exception_goes_to_the_innermost_run():
    got = []

    def bad():
        raise ValueError("inner")

    def outer():
        stackless.tasklet(bad)()
        try:
            stackless.run()
        except ValueError:
            got.append("outer caught")

    stackless.tasklet(outer)()
    stackless.run()
    assert got == ["outer caught"]


def test_kill_a_tasklet_parked_in_run():
    out = []

    def watcher():
        try:
            stackless.run()
        finally:
            out.append("watcher ends")

    w = stackless.tasklet(watcher)()
    victim_of = []

    def killer():
        victim_of.append(w.paused)
        w.kill()
        out.append("killer after")

    stackless.tasklet(killer)()
    w.run()
    assert victim_of == [True] and out == ["watcher ends", "killer after"]
    stackless.run()


def test_exc_info_is_per_tasklet():
    seen = []

    def body():
        seen.append(sys.exc_info()[0])
        try:
            raise KeyError
        except KeyError:
            stackless.schedule()
            seen.append(sys.exc_info()[0])

    stackless.tasklet(body)()
    try:
        raise ValueError
    except ValueError:
        stackless.schedule()
        assert sys.exc_info()[0] is ValueError
        stackless.schedule()
    assert seen == [None, KeyError]


def test_set_error_handler():
    seen = []

    def handler(typ, val, tb):
        seen.append((typ, val.args))

    def bad():
        raise ValueError("handled")

    assert stackless.set_error_handler(handler) is None
    try:
        stackless.tasklet(bad)()
        stackless.run()
        assert seen == [(ValueError, ("handled",))]

        def failing(typ, val, tb):
            raise KeyError("from handler")

        assert stackless.set_error_handler(failing) is handler
        stackless.tasklet(bad)()
        with pytest.raises(KeyError, match="from handler"):
            stackless.run()
    finally:
        stackless.set_error_handler(None)
    assert stackless.set_error_handler() is None
    with pytest.raises(TypeError):
        stackless.set_error_handler(1)


def test_many_tasklets():
    count = []
    for i in range(10000):
        stackless.tasklet(count.append)(i)
    stackless.run()
    assert len(count) == 10000 and count[-1] == 9999


def test_deep_recursion_in_a_tasklet_is_a_recursion_error():
    def deep(n):
        return deep(n + 1)

    got = []

    def body():
        try:
            deep(0)
        except RecursionError:
            got.append(True)

    stackless.tasklet(body)()
    stackless.run()
    assert got == [True]


def test_switch_trap():
    assert stackless.switch_trap(1) == 0
    try:
        t = stackless.tasklet(f)()
        for op in (stackless.schedule, stackless.run, t.run, t.switch, t.kill,
                   stackless.schedule_remove, stackless.channel().receive):
            with pytest.raises(RuntimeError, match="^switch_trap$"):
                op()
            assert stackless.main.scheduled and stackless.getruncount() == 2
            assert t.alive and t.scheduled
        t.insert()  # not a switch
        t.kill(pending=True)  # not a switch either
    finally:
        assert stackless.switch_trap(-1) == 1
    stackless.run()
    assert not t.alive


def test_bombs_pickle():
    # Tasklets and channels: test_stackless_pickle.py.
    import pickle

    b = pickle.loads(pickle.dumps(stackless.bomb(ValueError, ValueError("p"))))
    assert b.type is ValueError and b.value.args == ("p",)


def test_thread_info_and_threads():
    info = []

    def body():
        info.extend(stackless.get_thread_info(threading.get_ident()))

    t = stackless.tasklet().bind(body, ())
    t.run()
    assert info[0] is stackless.main and info[1] is t and info[2] == 2
    assert stackless.get_thread_info() == (stackless.main, stackless.main, 1)
    threads = stackless.threads
    assert threads == stackless.getthreads()
    assert threads[0] == threading.main_thread().ident
    assert set(threads) == set(sys._current_frames())
    with pytest.raises(RuntimeError, match="Thread id not found"):
        stackless.get_thread_info(123456789)

    ready, go, seen = threading.Event(), threading.Event(), {}

    def other():
        seen["main"] = stackless.main
        ready.set()
        go.wait()

    th = threading.Thread(target=other)
    th.start()
    ready.wait()
    try:
        m, cur, count = stackless.get_thread_info(th.ident)
        assert m is seen["main"] and cur is m and count == 1
    finally:
        go.set()
        th.join()


def test_bind_thread():
    t = stackless.tasklet(f, ())
    assert t.bind_thread() is None
    assert t.bind_thread(-1) is None
    assert t.bind_thread(threading.get_ident()) is None
    with pytest.raises(ValueError, match="bad thread"):
        t.bind_thread(123456789)
    t.insert()
    with pytest.raises(RuntimeError, match=r"can't \(re\)bind a runnable tasklet"):
        t.bind_thread()
    stackless.run()


def test_run_signature():
    stackless.run(0, False, False, False, False)
    stackless.run(timeout=0, threadblock=False, soft=False, ignore_nesting=False,
                  totaltimeout=False)
    with pytest.raises(TypeError, match="at most 5 arguments"):
        stackless.run(0, False, False, False, False, None)


def test_lifecycle_through_channel_with_sender_preferred():
    c, result = stackless.channel(), []
    c.preference = 1

    def body():
        c.send(123)
        assert stackless.current is t and t.tempval is None
        result.append(0)

    t = stackless.tasklet(body)()
    t.run()
    assert t.blocked and t.scheduled and t.alive and not t.paused
    assert c.receive() == 123
    result.append(1)
    assert result == [0, 1] and not t.alive


def test_schedule_callback():
    seen = []

    def cb(prev, next):
        seen.append((prev, next))

    assert stackless.set_schedule_callback(cb) is None
    try:
        assert stackless.get_schedule_callback() is cb
        t = stackless.tasklet(f)()
        stackless.run()
        main = stackless.main
        assert seen == [(main, t), (t, main)]
        seen.clear()
        th = threading.Thread(target=stackless.getcurrent)
        th.start()
        th.join()
        assert len(seen) == 1 and seen[0][0] is None and seen[0][1].is_main
    finally:
        assert stackless.set_schedule_callback(None) is cb
    assert stackless.get_schedule_callback() is None
    with pytest.raises(TypeError, match="callback must be callable or None"):
        stackless.set_schedule_callback(1)


def test_schedule_callback_errors_and_recursion(monkeypatch):
    errors, unraisable = [], []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def bad(prev, next):
        errors.append(1)
        raise ValueError("in callback")

    def recursive(prev, next):
        try:
            stackless.schedule()
        except RuntimeError as e:
            errors.append(str(e))
        try:
            next.remove()
        except RuntimeError as e:
            errors.append(str(e))

    out = []
    stackless.set_schedule_callback(bad)
    try:
        stackless.tasklet(out.append)(1)
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
    assert out == [1] and errors == [1, 1]
    assert [u.object for u in unraisable] == ["Error in scheduling callback"] * 2
    assert all(u.exc_type is ValueError for u in unraisable)
    errors.clear()
    stackless.set_schedule_callback(recursive)
    try:
        stackless.tasklet(out.append)(2)
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
    assert out == [1, 2]
    assert errors == ["Recursive scheduler call due to callbacks!"] * 4


def test_channel_callback():
    seen = []
    c = stackless.channel()

    def cb(channel, tasklet, sending, willblock):
        seen.append((channel is c, tasklet.is_main, sending, willblock))
        if len(seen) == 1:
            with pytest.raises(RuntimeError, match="Recursive channel call due to callbacks!"):
                c.send(0)

    assert stackless.set_channel_callback(cb) is None
    try:
        assert stackless.get_channel_callback() is cb
        stackless.tasklet(c.send)(5)
        assert c.receive() == 5  # main blocks, then the sender exchanges
    finally:
        assert stackless.set_channel_callback(None) is cb
    assert seen == [(True, True, 0, 1), (True, False, 1, 0)]
    stackless.run()

    def failing(*args):
        raise KeyError("cb")

    stackless.set_channel_callback(failing)
    try:
        with pytest.raises(KeyError):
            c.send(1)
        assert c.balance == 0
    finally:
        stackless.set_channel_callback(None)


# --- contextvars (Stackless 3.7.6+) ---------------------------------------------

import contextvars  # noqa: E402

var = contextvars.ContextVar("var", default="unset")


def test_bound_tasklet_shares_the_binders_context():
    seen = []

    def body():
        seen.append(var.get())
        var.set("from tasklet")

    token = var.set("from main")
    try:
        t = stackless.tasklet(body)()
        assert t.context_id == stackless.current.context_id
        stackless.run()
        assert seen == ["from main"] and var.get() == "from tasklet"
    finally:
        var.reset(token) if var.get() == "from main" else var.set("unset")


def test_set_context_and_context_run():
    ctx = contextvars.Context()
    ctx.run(var.set, "in ctx")
    seen = []

    def body():
        seen.append(var.get())
        stackless.schedule()
        seen.append(var.get())

    t = stackless.tasklet(body)
    assert t.set_context(ctx) is t
    t()
    assert t.context_id == id(ctx)
    stackless.schedule()  # t started in ctx and is suspended now
    assert t.context_id == id(ctx)
    assert t.context_run(var.get) == "in ctx"
    t.context_run(var.set, "changed")
    stackless.run()
    assert seen == ["in ctx", "changed"]
    assert var.get() == "unset"
    with pytest.raises(TypeError, match="argument must be a contextvars.Context"):
        t.set_context({})
    other = contextvars.Context()
    cur = stackless.current
    old = contextvars.copy_context()
    cur.set_context(other)
    try:
        assert cur.context_id == id(other)
        var.set("other")
    finally:
        cur.set_context(old)
    assert var.get() == "unset" and other[var] == "other"


def test_process_exits_cleanly_with_suspended_tasklets():
    import subprocess
    import textwrap

    script = textwrap.dedent("""
        import threading
        import syncless
        stackless = syncless.install_stackless()
        c = stackless.channel()
        def blocked():
            c.receive()
        def paused():
            stackless.schedule_remove()
        stackless.tasklet(blocked)()
        stackless.tasklet(paused)()
        stackless.tasklet(lambda: None)()
        stackless.schedule()
        def thread_body():
            stackless.tasklet(blocked)()
            stackless.run()
        t = threading.Thread(target=thread_body)
        t.start()
        t.join()
        stackless.tasklet(lambda: None)()  # left runnable, never run
        print("exiting", c.balance)
    """)
    out = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "exiting -2"


def test_pickle_flags_and_debug():
    assert stackless.getdebug() is False and stackless.debug is False
    assert stackless.pickle_flags() == 0
    assert stackless.pickle_flags(stackless.PICKLEFLAGS_PICKLE_CONTEXT) == 0
    try:
        assert stackless.pickle_flags() == 8
        stackless.pickle_with_tracing_state = True
        assert stackless.pickle_with_tracing_state and stackless.pickle_flags() == 9
        with pytest.raises(ValueError, match="you must not set an undefined pickle-flag"):
            stackless.pickle_flags(16)
        assert stackless.pickle_flags_default() == 0
    finally:
        stackless.pickle_flags(0)
    assert stackless.pickle_flags() == 0 and not stackless.pickle_with_tracing_state


def test_uncollectables_are_the_started_unfinished_tasklets():
    def body():
        assert stackless.current in stackless.getuncollectables()
        stackless.schedule_remove()

    t = stackless.tasklet(body)()
    u = stackless.tasklet(f)()
    assert t not in stackless.uncollectables
    t.run()
    assert t in stackless.getuncollectables() and u not in stackless.getuncollectables()
    t.kill()
    assert t not in stackless.getuncollectables()
    stackless.run()


# --- more ring edge cases ------------------------------------------------------


def test_running_main_from_a_tasklet_ends_run_early():
    out = []

    def body():
        out.append("a")
        stackless.main.run()  # main is parked in run(): it is revived at once
        out.append("a2")

    t = stackless.tasklet(body)()
    assert stackless.run() is None
    assert out == ["a"] and t.scheduled and stackless.getruncount() == 2
    stackless.run()
    assert out == ["a", "a2"]


def test_schedule_remove_of_the_last_tasklet_returns_to_run():
    def body():
        stackless.schedule_remove()

    t = stackless.tasklet(body)()
    stackless.run()
    assert t.paused and t.alive and stackless.getruncount() == 1
    t.kill()


def test_switch_between_tasklets():
    out = []

    def a():
        out.append("a1")
        tb.switch()  # a is paused now
        out.append("a2")

    def b():
        out.append("b1")
        assert ta.paused
        ta.insert()
        stackless.schedule()
        out.append("b2")

    ta = stackless.tasklet(a)()
    tb = stackless.tasklet(b)
    tb.bind(b, ())
    stackless.run()
    assert out == ["a1", "b1", "a2", "b2"]


def test_kill_pending_of_an_unstarted_tasklet_in_the_ring():
    out = []
    t = stackless.tasklet(out.append)(1)
    t.kill(pending=True)
    assert t.scheduled
    stackless.run()
    assert out == [] and not t.alive


def test_exception_while_main_is_blocked_leaves_others_queued():
    c = stackless.channel()
    out = []

    def bad():
        raise OSError("io")

    stackless.tasklet(bad)()
    other = stackless.tasklet(out.append)("later")
    with pytest.raises(OSError, match="io"):
        c.receive()
    assert other.scheduled and out == [] and c.balance == 0
    stackless.run()
    assert out == ["later"]


def test_tempval_after_blocked_send_and_receive():
    c = stackless.channel()
    t = stackless.tasklet(c.send)(123)
    t.run()
    assert t.blocked and t.tempval == 123  # a blocked sender keeps its value
    assert c.receive() == 123
    assert t.tempval is None and t.scheduled
    stackless.run()


def test_schedule_argument_checks():
    assert stackless.schedule(retval=5) == 5
    assert stackless.schedule_remove(retval=6) == 6
    with pytest.raises(TypeError, match=r"schedule\(\) takes at most 1 argument \(2 given\)"):
        stackless.schedule(1, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        stackless.schedule_remove(x=1)
    c = stackless.channel()
    with pytest.raises(TypeError, match=r"send\(\) takes exactly one argument \(0 given\)"):
        c.send()
    with pytest.raises(TypeError, match="unexpected keyword argument 'v'"):
        c.send(v=1)
    assert stackless.getruncount() == 1 and c.balance == 0


def test_kill_of_a_tasklet_whose_thread_ended_drops_it():
    c = stackless.channel()
    made = {}

    def thread_body():
        def paused():
            stackless.schedule_remove()

        def blocked():
            c.receive()

        made["paused"] = stackless.tasklet(paused)()
        made["paused"].run()
        made["blocked"] = stackless.tasklet(blocked)()
        made["blocked"].run()
        made["unstarted"] = stackless.tasklet(f, ())
        made["runnable"] = stackless.tasklet(f)()  # left in the ring, never run

    th = threading.Thread(target=thread_body)
    th.start()
    th.join()
    assert c.balance == -1
    for name in ("paused", "blocked", "unstarted", "runnable"):
        t = made[name]
        assert t.alive and t.thread_id == -1
        with pytest.raises(RuntimeError, match="tasklet has no thread"):
            t.throw(ValueError)
        assert t.kill() is None
        assert not t.alive and not t.scheduled and not t.blocked
        assert t not in stackless.getuncollectables()
    assert c.balance == 0 and c.queue is None


def test_recursion_depth():
    depths = {}

    def nest(n):
        if n == 0:
            depths["inside"] = stackless.current.recursion_depth
            stackless.schedule_remove()
            return
        nest(n - 1)

    t = stackless.tasklet(nest)(5)
    assert t.recursion_depth == 0  # not started
    stackless.run()
    # Tasklets start at depth 0: nest(5) .. nest(0) are 6 Python calls.
    assert depths["inside"] == 6
    # Suspended inside schedule_remove(): CPython 3.11 counts that C call too.
    assert t.recursion_depth in (6, 7)
    here = stackless.current.recursion_depth
    assert here == stackless.main.recursion_depth > 0
    t.insert()
    stackless.run()
    assert t.recursion_depth == 0  # finished
