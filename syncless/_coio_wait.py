"""Waits that only readiness or their timeout end: an insert()/run() of the
waiting tasklet makes it wait again, for the time left."""
import time


def wait_again_after_early_wakeups(wait, timeout):
    """Calls ``wait(timeout)`` (None means woken early) until it answers."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        result = wait(timeout)
        if result is not None:
            return result
        if deadline is not None:
            timeout = max(deadline - time.monotonic(), 0.0)
