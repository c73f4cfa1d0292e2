"""Greenlets and tasklets in one thread: interleaving them is not supported
yet (issue 3, item 5), so a switch of one face while a non-main coroutine of
the other runs raises a clear RuntimeError and leaves both faces usable."""
import greenlet
import pytest

import syncless

stackless = syncless.install_stackless()

pytestmark = pytest.mark.timeout(60)

TASKLET_MSG = "cannot switch tasklets while a greenlet other than the main one is running"
GREENLET_MSG = "cannot switch greenlets while a tasklet other than the main one is running"


def test_tasklet_switch_inside_a_greenlet_raises():
    errors = []

    def in_greenlet():
        t = stackless.tasklet(lambda: None)()
        for op in (stackless.schedule, stackless.run, t.run, t.switch, t.kill,
                   stackless.schedule_remove, stackless.channel().receive,
                   lambda: stackless.channel().send(1)):
            with pytest.raises(RuntimeError, match=TASKLET_MSG):
                op()
            errors.append(op)
        return t

    t = greenlet.greenlet(in_greenlet).switch()
    assert len(errors) == 8
    assert t.scheduled and stackless.getruncount() == 2
    assert stackless.current is stackless.main
    stackless.run()
    assert not t.alive and stackless.getruncount() == 1


def test_greenlet_switch_inside_a_tasklet_raises():
    out = []

    def body():
        g = greenlet.greenlet(lambda: out.append("ran"))
        with pytest.raises(RuntimeError, match=GREENLET_MSG):
            g.switch()
        with pytest.raises(RuntimeError, match=GREENLET_MSG):
            g.throw(ValueError)
        out.append("after")

    stackless.tasklet(body)()
    stackless.run()
    assert out == ["after"]
    # Both faces work as usual afterwards.
    assert greenlet.greenlet(lambda: 5).switch() == 5
    stackless.tasklet(out.append)(1)
    stackless.run()
    assert out == ["after", 1]


def test_main_tasklet_and_main_greenlet_share_the_thread():
    def in_greenlet():
        return greenlet.getcurrent()

    g = greenlet.greenlet(in_greenlet)
    assert g.switch() is g
    t = stackless.tasklet(lambda: None)()
    t.run()
    assert not t.alive
