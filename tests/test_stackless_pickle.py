"""The stackless face: pickling tasklets and channels (shared spec
stackless.md §1.2-§1.4; Stackless's tasklet_reduce/tasklet_setstate and
channel_reduce/channel_setstate). A tasklet pickles while it has no frames of
its own (not alive, or bound to a function and arguments but not started); a
started one refuses clearly, since stock CPython cannot serialise a running
frame."""
import copy
import pickle

import pytest

import syncless

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]

PROTOCOLS = list(range(pickle.HIGHEST_PROTOCOL + 1))
COPIES = [lambda o, p=p: pickle.loads(pickle.dumps(o, p)) for p in PROTOCOLS]
COPIES += [copy.copy, copy.deepcopy]
COPY_IDS = [f"pickle{p}" for p in PROTOCOLS] + ["copy", "deepcopy"]

results = []


def add(a, b=0):
    results.append(a + b)


class MyTasklet(stackless.tasklet):
    pass


class MyChannel(stackless.channel):
    pass


@pytest.fixture(autouse=True)
def fresh_results():
    results.clear()


@pytest.fixture(params=COPIES, ids=COPY_IDS)
def duplicate(request):
    return request.param


# --- tasklets without frames -------------------------------------------------


def test_a_tasklet_that_is_not_alive_round_trips(duplicate):
    t = stackless.tasklet()
    u = duplicate(t)
    assert type(u) is stackless.tasklet and u is not t
    assert not u.alive and not u.scheduled and u.tempval is None


def test_a_bound_tasklet_keeps_its_function(duplicate):
    u = duplicate(stackless.tasklet(add))
    assert not u.alive and u.tempval is add
    u(1, 2)
    stackless.run()
    assert results == [3]


def test_a_tasklet_bound_to_arguments_runs_after_unpickling(duplicate):
    t = stackless.tasklet()
    t.bind(add, (1,), {"b": 2})
    assert t.alive and t.paused
    u = duplicate(t)
    assert u.alive and u.paused and not u.scheduled
    assert u.frame is None
    u.insert()
    stackless.run()
    assert results == [3] and not u.alive
    assert t.alive  # the original is untouched
    t.kill()


def test_an_unpickled_tasklet_runs_with_run():
    t = stackless.tasklet()
    t.bind(add, (4,))
    u = pickle.loads(pickle.dumps(t))
    u.run()
    assert results == [4] and not u.alive
    t.kill()


def test_a_scheduled_tasklet_that_has_not_started_pickles():
    t = stackless.tasklet(add)(5, b=6)
    assert t.scheduled and t.alive
    u = pickle.loads(pickle.dumps(t))
    assert u.alive and u.paused and not u.scheduled
    stackless.run()
    assert results == [11]
    u.insert()
    stackless.run()
    assert results == [11, 11]


def test_flags_and_tempval_travel(duplicate):
    t = stackless.tasklet()
    t.bind(add, (1,))
    t.set_atomic(True)
    t.set_ignore_nesting(True)
    t.block_trap = True
    t.tempval = ["kept", 7]
    u = duplicate(t)
    assert u.atomic and u.ignore_nesting and u.block_trap
    assert u.tempval == ["kept", 7]
    t.kill()
    v = duplicate(stackless.tasklet(add))
    assert not (v.atomic or v.ignore_nesting or v.block_trap)


def test_a_pending_bomb_explodes_when_the_copy_starts():
    t = stackless.tasklet(add)
    t.bind(add, (1,))
    t.tempval = stackless.bomb(ValueError, ValueError("from the pickle"))
    u = pickle.loads(pickle.dumps(t))
    u.insert()
    with pytest.raises(ValueError, match="from the pickle"):
        stackless.run()
    assert results == [] and not u.alive
    t.kill()


def test_reduce_has_stacklesss_shape():
    t = stackless.tasklet()
    t.bind(add, (1, 2), {"b": 3})
    t.set_atomic(True)
    t.block_trap = True
    cls, args, state = t.__reduce__()
    assert cls is stackless.tasklet and args == ()
    assert len(state) == 8
    flags, tempval, nesting_level, frames = state[:4]
    assert flags == (1 << 2) | (1 << 5)  # atomic, block_trap (Stackless's bits)
    assert tempval is None and nesting_level == 0
    assert frames == [(add, (1, 2), {"b": 3})]
    assert state[4:] == (None, None, None, None)
    assert t.__reduce_ex__(2) == (cls, args, state)
    t.kill()
    assert stackless.tasklet(add).__reduce__()[2][1:4] == (add, 0, [])
    assert stackless.tasklet().__reduce__()[2][3] == []


def test_reduce_ex_wants_an_integer():
    with pytest.raises(TypeError, match="__reduce_ex__ argument should be an integer"):
        stackless.tasklet().__reduce_ex__("2")
    with pytest.raises(TypeError, match="__reduce_ex__ argument should be an integer"):
        stackless.channel().__reduce_ex__(None)


def test_pickle_context_flag_changes_nothing():
    old = stackless.pickle_flags(stackless.PICKLEFLAGS_PICKLE_CONTEXT)
    try:
        assert len(stackless.tasklet(add).__reduce__()[2]) == 8
    finally:
        stackless.pickle_flags(old)


def test_a_finished_tasklet_pickles_as_not_alive():
    t = stackless.tasklet(add)(1)
    stackless.run()
    u = pickle.loads(pickle.dumps(t))
    assert not u.alive and u.tempval is None


def test_a_tasklet_referring_to_itself_round_trips(duplicate):
    t = stackless.tasklet()
    t.bind(add, (1,))
    t.tempval = [t]
    u = duplicate(t)
    if duplicate is copy.copy:
        assert u.tempval[0] is t  # shallow: the state is shared
    else:
        assert u.tempval[0] is u
    t.kill()


def test_a_subclass_keeps_its_type_and_attributes(duplicate):
    t = MyTasklet(add)
    t.name = "worker"
    u = duplicate(t)
    assert type(u) is MyTasklet and u.name == "worker" and u.tempval is add
    cls, args, state = t.__reduce__()
    assert cls is MyTasklet and state[1] == {"name": "worker"} and len(state[0]) == 8


def test_tasklet_and_channel_pickled_together():
    ch = stackless.channel()
    t = stackless.tasklet()
    t.bind(ch.send, ("hello",))
    ch2, u = pickle.loads(pickle.dumps([ch, t]))
    assert u.alive and u.paused
    u.insert()
    assert ch2.receive() == "hello"
    t.kill()


# --- what refuses --------------------------------------------------------------


def test_the_current_tasklet_refuses():
    with pytest.raises(RuntimeError, match=r"You cannot __reduce__ the tasklet which is current\."):
        stackless.current.__reduce__()
    with pytest.raises(RuntimeError, match="which is current"):
        pickle.dumps(stackless.current)
    seen = []

    def inside():
        try:
            pickle.dumps(stackless.current)
        except RuntimeError as e:
            seen.append(str(e))

    stackless.tasklet(inside)()
    stackless.run()
    assert seen == ["You cannot __reduce__ the tasklet which is current."]


def test_started_tasklets_refuse_and_say_why():
    ch = stackless.channel()
    blocked = stackless.tasklet(ch.receive)()
    paused = stackless.tasklet(stackless.schedule_remove)()
    runnable = stackless.tasklet(lambda: [stackless.schedule() for _ in range(3)])()
    stackless.schedule()
    assert blocked.blocked and paused.paused and runnable.scheduled
    for t in (blocked, paused, runnable):
        for dup in (pickle.dumps, copy.copy):
            with pytest.raises(TypeError, match="has started: its frames run on a C stack") as e:
                dup(t)
            assert "stock CPython cannot serialise a running frame" in str(e.value)
    seen = []

    def pickles_main():
        try:
            pickle.dumps(stackless.main)
        except TypeError as e:
            seen.append("started" in str(e))

    stackless.tasklet(pickles_main)()
    stackless.schedule()
    assert seen == [True]
    ch.send(None)
    paused.insert()
    stackless.run()


def test_setstate_refuses_an_alive_tasklet():
    t = stackless.tasklet()
    t.bind(add, (1,))
    with pytest.raises(RuntimeError, match="tasklet is alive"):
        t.__setstate__(stackless.tasklet().__reduce__()[2])
    t.kill()
    with pytest.raises(RuntimeError, match="tasklet is alive"):
        stackless.current.__setstate__(stackless.tasklet().__reduce__()[2])


@pytest.mark.parametrize("state, error, message", [
    ((0, None), TypeError, "tasklet state must be a tuple"),
    ("nope", TypeError, "tasklet state must be a tuple"),
    (("x", None, 0, [], None, None, None, None), TypeError, "integer"),
    ((0, None, 0, (), None, None, None, None), TypeError, r"state\[3\] must be a list"),
    ((0, None, 0, [(add, (1,), None), (add, (), None)], None, None, None, None), ValueError,
     "cannot restore a tasklet's frames"),
    ((0, None, 0, ["a frame"], None, None, None, None), ValueError,
     "stock CPython cannot resume a pickled frame"),
    ((0, None, 0, [(1, (), None)], None, None, None, None), TypeError, "callable, tuple"),
    ((0, None, 0, [(add, [1], None)], None, None, None, None), TypeError, "callable, tuple"),
    ((0, None, 0, [(add, (1,), [])], None, None, None, None), TypeError, "kwargs must be a dict"),
    ((0, None, 0, [], None, None, None, None, "ctx"), TypeError,
     r"state\[8\] must be a contextvars.Context"),
])
def test_setstate_rejects_bad_states(state, error, message):
    with pytest.raises(error, match=message):
        stackless.tasklet().__setstate__(state)


def test_setstate_takes_stacklesss_longer_states():
    import contextvars

    var = contextvars.ContextVar("var")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in the pickled context")
    seen = []
    t = stackless.tasklet()
    t.__setstate__((0, None, 0, [(lambda: seen.append(var.get()), (), None)], None, None,
                    None, None, ctx))
    t.insert()
    stackless.run()
    assert seen == ["in the pickled context"]
    u = stackless.tasklet()
    u.__setstate__((1 << 2, add, 0, [], None, None, None, None, 0, 0, None, None))
    assert u.atomic and u.tempval is add and not u.alive


# --- channels ------------------------------------------------------------------


@pytest.mark.parametrize("preference", [-1, 0, 1])
def test_a_channel_keeps_its_flags(duplicate, preference):
    ch = stackless.channel()
    ch.preference = preference
    ch.schedule_all = 1
    ch.close()
    c = duplicate(ch)
    assert type(c) is stackless.channel and c is not ch
    assert c.preference == preference and c.schedule_all == 1 and c.closing and c.closed
    assert c.balance == 0 and c.queue is None
    d = duplicate(stackless.channel())
    assert d.preference == -1 and d.schedule_all == 0 and not d.closing


def test_channel_reduce_has_stacklesss_shape():
    ch = stackless.channel()
    ch.preference = 1
    cls, args, state = ch.__reduce__()
    assert (cls, args, state) == (stackless.channel, (), (0, 1 << 1, []))
    ch.preference = -1
    ch.close()
    assert ch.__reduce_ex__(4)[2] == (0, 1 | (3 << 1), [])


def test_a_channel_subclass_keeps_its_type_and_attributes(duplicate):
    ch = MyChannel()
    ch.label = "jobs"
    c = duplicate(ch)
    assert type(c) is MyChannel and c.label == "jobs"


def test_a_channel_with_blocked_tasklets_refuses():
    ch = stackless.channel()
    stackless.tasklet(ch.receive)()
    stackless.run()
    assert ch.balance == -1
    with pytest.raises(TypeError, match="channel with blocked tasklets: they have started"):
        pickle.dumps(ch)
    with pytest.raises(RuntimeError, match="channel has blocked tasklets"):
        ch.__setstate__((0, 0, []))
    ch.send(None)


def test_channel_setstate_rejects_blocked_tasklets_and_bad_states():
    with pytest.raises(ValueError, match="cannot restore tasklets blocked on a channel"):
        stackless.channel().__setstate__((1, 0, [stackless.tasklet()]))
    with pytest.raises(TypeError):
        stackless.channel().__setstate__((0, 0))
    with pytest.raises(TypeError, match="channel state must be a tuple"):
        stackless.channel().__setstate__([0, 0, []])


def test_an_unpickled_channel_works():
    ch = pickle.loads(pickle.dumps(stackless.channel()))
    stackless.tasklet(ch.send)("over the copy")
    assert ch.receive() == "over the copy"
