"""select.select, select.poll and a selectors selector that park only the
calling tasklet."""
import errno
import select as _stdselect
import selectors

from ._syncless import coio_module as _coio
from ._coio_wait import wait_again_after_early_wakeups

_EV_READ = _coio.EV_READ
_EV_WRITE = _coio.EV_WRITE
# The originals, taken before syncless.patch can replace them in select.
_std_select = _stdselect.select
_std_poll = _stdselect.poll
_FOREVER = 10.0 ** 9  # seconds: a timer libevent accepts, longer than any run


def _fd(obj):
    if isinstance(obj, int):
        fd = obj
    else:
        try:
            fd = int(obj.fileno())
        except AttributeError:
            raise TypeError("argument must be an int, or have a fileno() method.") from None
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer (%d)" % fd)
    return fd


def _check_timeout(timeout):
    if timeout is None:
        return None
    timeout = float(timeout)
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    return timeout


def select(rlist, wlist, xlist, timeout=None):
    """select.select(): ready objects at once if any, else parks until one
    is ready or the timeout passes. Exceptional conditions (xlist) are
    polled, never waited for."""
    timeout = _check_timeout(timeout)
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)
    rfds = [_fd(o) for o in rlist]
    wfds = [_fd(o) for o in wlist]
    xfds = [_fd(o) for o in xlist]
    ready = _std_select(rfds, wfds, xfds, 0)
    if any(ready) or timeout == 0:
        return _objects(ready, rlist, rfds, wlist, wfds, xlist, xfds)
    if not (rfds or wfds):
        # Nothing to wait for but time (forever, as select.select does).
        _coio.sleep(_FOREVER if timeout is None else timeout)
        return [], [], []
    fds = rfds + wfds
    events = [_EV_READ] * len(rfds) + [_EV_WRITE] * len(wfds)
    fired = _wait_many(fds, events, timeout)
    r = [rfds[i] for i in range(len(rfds)) if fired[i]]
    w = [wfds[i] for i in range(len(wfds)) if fired[len(rfds) + i]]
    return _objects((r, w, []), rlist, rfds, wlist, wfds, xlist, xfds)


def _wait_many(fds, events, timeout):
    return wait_again_after_early_wakeups(lambda t: _coio.wait_many(fds, events, t), timeout)


def _objects(ready, rlist, rfds, wlist, wfds, xlist, xfds):
    """The caller's objects for the ready fds, in the caller's order."""
    result = []
    for fds_ready, objs, fds in zip(ready, (rlist, wlist, xlist), (rfds, wfds, xfds)):
        wanted = set(fds_ready)
        result.append([o for o, fd in zip(objs, fds) if fd in wanted])
    return tuple(result)


class CoioSelector(selectors._BaseSelectorImpl):
    """A ``selectors`` selector on the hub: select() parks the tasklet."""

    def select(self, timeout=None):
        if timeout is not None:
            timeout = max(float(timeout), 0.0)
        keys = list(self._fd_to_key.values())
        if not keys:
            # Nothing to wait for but time (forever, as the stdlib's do).
            if timeout != 0:
                _coio.sleep(_FOREVER if timeout is None else timeout)
            return []
        fds = [key.fd for key in keys]
        events = [(_EV_READ if key.events & selectors.EVENT_READ else 0) |
                  (_EV_WRITE if key.events & selectors.EVENT_WRITE else 0) for key in keys]
        fired = self._poll_now(fds, events)
        if not any(fired) and timeout != 0:
            fired = _wait_many(fds, events, timeout)
        ready = []
        for key, mask in zip(keys, fired):
            got = ((selectors.EVENT_READ if mask & _EV_READ else 0) |
                   (selectors.EVENT_WRITE if mask & _EV_WRITE else 0)) & key.events
            if got:
                ready.append((key, got))
        return ready

    @staticmethod
    def _poll_now(fds, events):
        poller = _std_poll()
        for fd, ev in zip(fds, events):
            poller.register(fd, (_stdselect.POLLIN if ev & _EV_READ else 0) |
                            (_stdselect.POLLOUT if ev & _EV_WRITE else 0))
        masks = dict(poller.poll(0))
        fired = []
        for fd, ev in zip(fds, events):
            m = masks.get(fd, 0)
            bad = m & (_stdselect.POLLERR | _stdselect.POLLHUP | _stdselect.POLLNVAL)
            fired.append(((_EV_READ if m & _stdselect.POLLIN or bad else 0) |
                          (_EV_WRITE if m & _stdselect.POLLOUT or bad else 0)) & ev)
        return fired


DefaultSelector = CoioSelector


_POLL_READ = _stdselect.POLLIN | _stdselect.POLLPRI
_POLL_WRITE = _stdselect.POLLOUT


class poll:
    """select.poll(): poll(timeout) in milliseconds parks the tasklet until
    a registered fd is ready; the events it returns come from the kernel."""

    def __init__(self):
        self._masks = {}

    def register(self, fd, eventmask=_POLL_READ | _POLL_WRITE):
        self._masks[_fd(fd)] = eventmask

    def modify(self, fd, eventmask):
        fd = _fd(fd)
        if fd not in self._masks:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        self._masks[fd] = eventmask

    def unregister(self, fd):
        del self._masks[_fd(fd)]

    def poll(self, timeout=None):
        if timeout is not None:
            timeout = float(timeout)
            timeout = None if timeout < 0 else timeout / 1000.0
        now = _std_poll()
        for fd, mask in self._masks.items():
            now.register(fd, mask)
        ready = now.poll(0)
        if ready or timeout == 0:
            return ready
        fds = [fd for fd, mask in self._masks.items() if mask & (_POLL_READ | _POLL_WRITE)]
        if not fds:
            _coio.sleep(_FOREVER if timeout is None else timeout)
            return []
        events = [(_EV_READ if self._masks[fd] & _POLL_READ else 0) |
                  (_EV_WRITE if self._masks[fd] & _POLL_WRITE else 0) for fd in fds]
        _wait_many(fds, events, timeout)
        return now.poll(0)
