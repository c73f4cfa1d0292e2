"""Interrupting waiting Stackless tasklets: bombs, raise_exception and kill.

Two kinds of waiting tasklet are interrupted, each in three ways:

  * one blocked on a channel in receive();
  * one sleeping in coio.sleep(), which parks only that tasklet.

The three ways:

  * a bomb: a stackless.bomb holding an exception explodes in the tasklet
    when it resumes. A sleeping (paused) tasklet gets it in tempval and is
    made runnable with insert(); a channel-blocked tasklet cannot be
    inserted ("You cannot run a blocked tasklet"), so the bomb is sent over
    its channel instead;
  * t.raise_exception(cls, *args): raises in the tasklet at once, taking it
    off its channel or out of its sleep;
  * t.kill(): raises TaskletExit, which ends the tasklet silently.

Each victim prints the exception it gets and its finally clause runs, so it
finishes cleanly: afterwards it is dead and the channel has no waiter left.
The sleeps are long; the program still ends at once, so an interrupted sleep
leaves nothing behind for the scheduler to wait for.
"""
import time

import syncless
from syncless import coio

stackless = syncless.install_stackless()


class Interrupted(Exception):
    pass


def victim(name, wait):
    try:
        wait()
    except Interrupted as e:
        print("  %s: got %r" % (name, e))
    except TaskletExit:
        print("  %s: got TaskletExit" % name)
        raise                         # let the tasklet end as kill() asked
    finally:
        print("  %s: cleaned up" % name)


def start(name, wait):
    t = stackless.tasklet(victim)(name, wait)
    stackless.schedule()              # let it start waiting
    return t


def on_channel(how, interrupt):
    print("blocked on a channel, %s:" % how)
    ch = stackless.channel()
    t = start("receiver", ch.receive)
    print("  blocked: %s, balance: %d" % (t.blocked, ch.balance))
    interrupt(t, ch)
    stackless.run()
    print("  alive: %s, balance: %d" % (t.alive, ch.balance))


def in_sleep(how, interrupt):
    print("sleeping in coio.sleep, %s:" % how)
    t = start("sleeper", lambda: coio.sleep(30))
    print("  scheduled: %s" % t.scheduled)   # parked by coio, not in the run ring
    interrupt(t, None)
    stackless.run()
    print("  alive: %s" % t.alive)


def send_bomb(t, ch):
    try:
        t.insert()
    except RuntimeError as e:
        print("  insert() refused: %s" % e)
    ch.send(stackless.bomb(Interrupted, Interrupted("bomb over the channel")))


def tempval_bomb(t, ch):
    t.tempval = stackless.bomb(Interrupted, Interrupted("bomb in tempval"))
    t.insert()


def raise_exception(t, ch):
    t.raise_exception(Interrupted, "raise_exception")


def kill(t, ch):
    t.kill()


started = time.monotonic()
on_channel("bomb sent over the channel", send_bomb)
on_channel("raise_exception", raise_exception)
on_channel("kill", kill)
in_sleep("bomb in tempval + insert()", tempval_bomb)
in_sleep("raise_exception", raise_exception)
in_sleep("kill", kill)
print("done without waiting for the sleeps: %s" % (time.monotonic() - started < 10))
