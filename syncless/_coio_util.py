"""Timeouts and queues built from tasklets (the original's syncless.util and
receive_with_timeout), for code that waits on channels as well as I/O."""
import collections

from ._syncless import coio_module as _coio
from ._syncless import stackless_module as _stackless


class TimeoutException(Exception):
    """Raised into the tasklet a Timeout watches (by default)."""


class Timeout:
    """``with Timeout(seconds):`` raises ``exception`` into the tasklet that
    entered the block if it is still inside after ``seconds`` (wherever it
    waits: I/O, sleep or a channel); leaving the block suppresses that
    exception and sets ``expired``. ``seconds=None`` never expires.
    """

    def __init__(self, seconds, exception=TimeoutException):
        self.seconds = seconds
        self.exception = exception
        self.expired = False
        self._timer = None
        self._target = None
        self._error = None

    def __enter__(self):
        self._target = _stackless.getcurrent()
        self.expired = False
        self._start()
        return self

    def __exit__(self, type_, value, tb):
        self.cancel()
        return value is not None and value is self._error

    def _start(self):
        if self.seconds is not None:
            exception = self.exception
            self._error = exception if isinstance(exception, BaseException) else exception()
            self._timer = _stackless.tasklet(self._fire)(self.seconds)

    def _fire(self, seconds):
        _coio.sleep(seconds)
        self._timer = None
        self.expired = True
        self._target.throw(self._error)

    def cancel(self):
        """Stop the clock; the block runs on without a deadline."""
        timer, self._timer = self._timer, None
        if timer is not None and timer.alive and timer is not _stackless.getcurrent():
            timer.kill()

    def change(self, seconds):
        """Restart the clock with a new duration, from now."""
        self.cancel()
        self.seconds = seconds
        self._start()


def receive_with_timeout(timeout, channel, default_value=None):
    """channel.receive(), or ``default_value`` once ``timeout`` seconds pass."""
    if timeout is None:
        return channel.receive()
    with Timeout(timeout) as clock:
        return channel.receive()
    if clock.expired:
        return default_value


def run_with_timeout(function, timeout, default_value=None, args=(), kwargs=None):
    """Runs function in a new tasklet; returns its result, re-raises its
    exception, or kills it and returns ``default_value`` after ``timeout``."""
    waker = _coio.Waker()
    outcome = []

    def work():
        try:
            outcome.append((True, function(*args, **(kwargs or {}))))
        except TaskletExit:
            raise
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            waker.fire()

    worker = _stackless.tasklet(work)()
    with Timeout(timeout):
        waker.wait()
    if not outcome:
        worker.kill()
        return default_value
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


TaskletExit = _stackless.TaskletExit


class Queue:
    """An unbounded queue: append/appendleft never block, pop (LIFO) and
    popleft (FIFO) park the caller while it is empty; waiting receivers are
    served in the order they came."""

    def __init__(self, items=(), preference=1):
        self._items = collections.deque(items)
        self._channel = _stackless.channel()
        self._channel.preference = preference

    def append(self, item):
        if self._channel.balance < 0:
            self._channel.send(item)
        else:
            self._items.append(item)

    def appendleft(self, item):
        if self._channel.balance < 0:
            self._channel.send(item)
        else:
            self._items.appendleft(item)

    def popleft(self):
        return self._items.popleft() if self._items else self._channel.receive()

    def pop(self):
        return self._items.pop() if self._items else self._channel.receive()

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    @property
    def pending_receiver_count(self):
        return max(-self._channel.balance, 0)
