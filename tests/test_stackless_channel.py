"""The stackless face, part 2 and 3: channels (exchange and the exact order
after each operation per preference, balance, queue, close, the deadlock
errors, send_exception/send_throw, bombs) and kill/throw/raise_exception on
blocked tasklets (shared spec stackless.md §1.3, §1.4, §2.2, §2.3, §2.5)."""
import sys

import pytest

import syncless

stackless = syncless.install_stackless()

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("clean_ring")]

DEADLOCK = r"Deadlock: the last runnable tasklet cannot be blocked\."


def receiver(c, out, name="r"):
    def body():
        out.append(name + "-wait")
        out.append((name + "-got", c.receive()))
    return stackless.tasklet(body)()


def sender(c, out, value, name="s"):
    def body():
        out.append(name + "-wait")
        c.send(value)
        out.append(name + "-sent")
    return stackless.tasklet(body)()


# --- exchange and order ---------------------------------------------------


def test_defaults():
    c = stackless.channel()
    assert c.balance == 0 and c.preference == -1 and c.schedule_all == 0
    assert c.queue is None and not c.closing and not c.closed
    assert stackless.channel(1, x=2).balance == 0  # __new__ ignores its arguments


def test_send_to_waiting_receiver_switches_to_it_by_default():
    c, out = stackless.channel(), []
    r = receiver(c, out)
    r.run()
    assert c.balance == -1 and r.blocked and r.scheduled and not r.paused
    assert c.queue is r and r._channel is c
    out.append("m-send")
    assert c.send(1) is None
    out.append("m-after")
    assert out == ["r-wait", "m-send", ("r-got", 1), "m-after"]
    assert c.balance == 0 and not r.alive


def test_receiver_preferred_runs_right_after_the_sender():
    c, out = stackless.channel(), []
    r = receiver(c, out)
    r.run()
    stackless.tasklet(out.append)("x")
    c.send(1)  # ring: main, r, x -> r runs now; main ends up at the tail
    out.append("m")
    assert out == ["r-wait", ("r-got", 1), "x", "m"]


def test_receive_from_waiting_sender_continues_by_default():
    c, out = stackless.channel(), []
    s = sender(c, out, 2)
    s.run()
    assert c.balance == 1 and s.blocked and s.tempval == 2
    assert c.receive() == 2
    out.append("m-got")
    assert c.balance == 0 and s.scheduled and not s.blocked
    stackless.run()
    assert out == ["s-wait", "m-got", "s-sent"]


def test_preference_1_sender_preferred():
    c, out = stackless.channel(), []
    c.preference = 1
    r = receiver(c, out)
    r.run()
    c.send(1)
    out.append("m-sent")
    stackless.run()
    assert out == ["r-wait", "m-sent", ("r-got", 1)]
    out.clear()
    s = sender(c, out, 2)
    s.run()
    assert c.receive() == 2  # switches to the sender first
    out.append("m-got")
    assert out == ["s-wait", "s-sent", "m-got"]


def test_preference_0_the_acting_tasklet_continues():
    c, out = stackless.channel(), []
    c.preference = 0
    receiver(c, out).run()
    c.send(1)
    out.append("m-sent")
    stackless.run()
    assert out == ["r-wait", "m-sent", ("r-got", 1)]
    out.clear()
    sender(c, out, 2).run()
    assert c.receive() == 2
    out.append("m-got")
    stackless.run()
    assert out == ["s-wait", "m-got", "s-sent"]


def test_schedule_all_switches_to_the_next_runnable():
    c, out = stackless.channel(), []
    c.schedule_all = 1
    receiver(c, out).run()
    stackless.tasklet(out.append)("x")
    c.send(1)  # ring: main, x, r -> x runs, then r, then main
    out.append("m")
    assert out == ["r-wait", "x", ("r-got", 1), "m"]


def test_preference_and_schedule_all_setters():
    c = stackless.channel()
    for value, expected in [(2, 1), (-5, -1), (True, 1), (0, 0), (10**30, 1)]:
        c.preference = value
        assert c.preference == expected
    with pytest.raises(TypeError, match="preference must be set to an integer"):
        c.preference = "x"
    c.schedule_all = 7
    assert c.schedule_all == 1
    c.schedule_all = False
    assert c.schedule_all == 0
    with pytest.raises(TypeError, match="preference must be set to a bool or integer"):
        c.schedule_all = None


def test_fifo_queue_and_balance():
    c, out = stackless.channel(), []
    a = sender(c, out, "a", "a")
    b = sender(c, out, "b", "b")
    stackless.run()
    assert c.balance == 2 and c.queue is a and a.next is b and b.prev is a
    assert b.next is c and a.prev is c  # the channel heads the queue's ring
    assert c.receive() == "a" and c.receive() == "b"
    assert c.balance == 0 and c.queue is None
    stackless.run()


def test_send_sequence_and_iteration():
    c, got = stackless.channel(), []

    def consume():
        for x in c:
            got.append(x)

    stackless.tasklet(consume)()
    stackless.schedule()
    assert c.send_sequence([1, 2, 3]) == 3
    c.send_exception(StopIteration)
    stackless.run()
    assert got == [1, 2, 3]


def test_iteration_stops_on_closing_channel():
    c = stackless.channel()
    sender(c, [], 1).run()
    c.close()
    assert list(c) == [1]
    stackless.run()


def test_block_trap():
    c = stackless.channel()
    stackless.current.block_trap = True
    try:
        with pytest.raises(RuntimeError, match="this tasklet does not like to be blocked."):
            c.receive()
    finally:
        stackless.current.block_trap = False
    assert c.balance == 0
    with pytest.raises(TypeError, match="block_trap must be set to a bool or integer"):
        stackless.current.block_trap = "yes"


# --- close ----------------------------------------------------------------


def test_close_and_open():
    c = stackless.channel()
    c.close()
    assert c.closing and c.closed
    with pytest.raises(ValueError, match="Send/receive operation on a closed channel"):
        c.receive()
    with pytest.raises(ValueError, match="Send/receive operation on a closed channel"):
        c.send(1)
    c.open()
    assert not c.closing and not c.closed


def test_closing_channel_still_exchanges_with_a_waiting_partner():
    c, out = stackless.channel(), []
    sender(c, out, 5).run()
    c.close()
    assert c.closing and not c.closed
    assert c.receive() == 5
    assert c.closed
    stackless.run()


# --- nothing else runnable -------------------------------------------------


def test_main_receive_alone_is_a_deadlock():
    c = stackless.channel()
    with pytest.raises(RuntimeError, match=DEADLOCK):
        c.receive()
    with pytest.raises(RuntimeError, match=DEADLOCK):
        c.send(1)
    assert c.balance == 0 and c.queue is None
    assert stackless.main.scheduled and not stackless.main.blocked


def test_main_blocked_when_the_last_tasklet_ends():
    c = stackless.channel()
    stackless.tasklet(lambda: None)()
    with pytest.raises(RuntimeError,
                       match=r"the main tasklet is receiving without a sender available\."):
        c.receive()
    assert c.balance == 0 and not stackless.main.blocked
    stackless.tasklet(lambda: None)()
    with pytest.raises(RuntimeError,
                       match=r"the main tasklet is sending without a receiver available\."):
        c.send(1)
    assert c.balance == 0


def test_last_tasklet_blocking_while_main_blocked_gets_the_deadlock():
    c1, c2, seen = stackless.channel(), stackless.channel(), []

    def body():
        try:
            c2.receive()
        except RuntimeError as e:
            seen.append((str(e), c2.balance))

    stackless.tasklet(body)()
    with pytest.raises(RuntimeError, match="the main tasklet is receiving"):
        c1.receive()
    assert seen == [("Deadlock: the last runnable tasklet cannot be blocked.", 0)]


def test_tasklet_blocking_under_run_returns_to_main():
    c = stackless.channel()
    r = receiver(c, [])
    assert stackless.run() is None
    assert r.blocked and c.balance == -1 and stackless.getruncount() == 1
    c.send(3)
    assert not r.alive


def test_exception_wakes_blocked_main():
    c = stackless.channel()

    def bad():
        raise ValueError("to main")

    stackless.tasklet(bad)()
    with pytest.raises(ValueError, match="to main"):
        c.receive()
    assert c.balance == 0 and not stackless.main.blocked


# --- bombs over channels --------------------------------------------------


def test_send_exception():
    c, got = stackless.channel(), []

    def body():
        try:
            c.receive()
        except KeyError as e:
            got.append(e.args)

    stackless.tasklet(body)().run()
    c.send_exception(KeyError, 1, 2)
    assert got == [(1, 2)]
    with pytest.raises(TypeError, match="needs Exception or string subclass"):
        c.send_exception(3)


def test_send_throw_keeps_the_traceback():
    c, got = stackless.channel(), []

    def body():
        try:
            c.receive()
        except IndexError as e:
            got.append((e.args, e.__traceback__ is not None))

    stackless.tasklet(body)().run()
    try:
        raise IndexError("tb")
    except IndexError:
        _, value, tb = sys.exc_info()
    c.send_throw(IndexError, value, tb)
    assert got == [(("tb",), True)]
    with pytest.raises(TypeError, match="exceptions must be classes, or instances, not int"):
        c.send_throw(1)


def test_sending_a_bomb_explodes_in_the_receiver():
    c = stackless.channel()
    sender(c, [], stackless.bomb(ZeroDivisionError, ZeroDivisionError("b"))).run()
    with pytest.raises(ZeroDivisionError):
        c.receive()
    stackless.run()


# --- kill / throw / raise_exception on blocked tasklets -----------------------


def test_kill_blocked_receiver():
    c, out = stackless.channel(), []

    def body():
        try:
            c.receive()
        finally:
            out.append("finally")

    t = stackless.tasklet(body)()
    t.run()
    assert c.balance == -1
    t.kill()
    assert out == ["finally"] and c.balance == 0 and c.queue is None
    assert not t.alive and not t.blocked and not t.scheduled


def test_throw_to_blocked_sender():
    c, got = stackless.channel(), []

    def body():
        try:
            c.send(1)
        except ValueError as e:
            got.append((e.args, c.balance))

    t = stackless.tasklet(body)()
    t.run()
    assert c.balance == 1
    t.throw(ValueError, "x")
    assert got == [(("x",), 0)] and c.balance == 0


def test_raise_exception_on_blocked():
    c, got = stackless.channel(), []

    def body():
        try:
            c.receive()
        except OSError as e:
            got.append(e.errno)

    stackless.tasklet(body)().run()
    stackless.tasklet(body)().run()
    assert c.balance == -2
    c.queue.raise_exception(OSError, 5, "five")
    assert got == [5] and c.balance == -1
    c.send_exception(OSError, 6, "six")
    assert got == [5, 6] and c.balance == 0


def test_kill_pending_on_blocked():
    c, out = stackless.channel(), []

    def body():
        try:
            c.receive()
        except TaskletExit:  # noqa: F821
            out.append("exit")
            raise

    t = stackless.tasklet(body)()
    t.run()
    t.kill(pending=True)
    assert c.balance == 0 and not t.blocked and t.scheduled and out == []
    stackless.run()
    assert out == ["exit"] and not t.alive


def test_blocked_tasklet_cannot_be_run_or_removed():
    c = stackless.channel()
    t = receiver(c, [])
    t.run()
    with pytest.raises(RuntimeError, match="You cannot run a blocked tasklet"):
        t.run()
    with pytest.raises(RuntimeError, match="You cannot run a blocked tasklet"):
        t.insert()
    with pytest.raises(RuntimeError, match=r"You cannot remove a blocked tasklet\."):
        t.remove()
    t.kill()
    assert c.balance == 0


def test_switch_trap_allows_exchanges_that_do_not_switch():
    c, out = stackless.channel(), []
    sender(c, out, 1).run()
    receiver(c, out).run()  # blocks on... nothing: takes the sender's value
    assert out == ["s-wait", "r-wait", ("r-got", 1)] and c.balance == 0
    sender(c, out, 2).run()
    assert stackless.switch_trap(1) == 0
    try:
        assert c.receive() == 2  # default preference: the receiver continues
        with pytest.raises(RuntimeError, match="^switch_trap$"):
            c.receive()  # would block
        assert c.balance == 0 and stackless.main.scheduled
    finally:
        stackless.switch_trap(-1)
    stackless.run()


def test_keyword_arguments():
    c, got = stackless.channel(), []

    def body():
        while True:
            got.append(c.receive())

    t = stackless.tasklet(body)()
    t.run()
    assert c.send(value=1) is None
    assert c.send_sequence(seq=[2, 3]) == 2
    assert got == [1, 2, 3]
    with pytest.raises(TypeError):
        c.send()
    t.kill()
