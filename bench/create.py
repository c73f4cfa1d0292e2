"""Create + start + finish: ns per ``greenlet(f).switch()`` where f returns at once."""

import gc
import time

import _harness


def measure(greenlet, n):
    new = greenlet.greenlet

    def f():
        pass

    def timed(count):
        start = time.perf_counter_ns()
        for _ in range(count):
            new(f).switch()
        return (time.perf_counter_ns() - start) / count

    timed(n // 10)  # warm-up: let allocators and any stack pool reach steady state
    # A collection landing inside the loop would be charged to whichever
    # implementation happened to trigger it.
    gc.disable()
    return {"value": timed(n)}


if __name__ == "__main__":
    _harness.main(measure, n=1_000_000)
