"""Switch ping-pong: ns per single switch between two greenlets."""

import gc
import time

import _harness


def measure(greenlet, n):
    def timed(round_trips):
        def ping():
            for _ in range(round_trips):
                b.switch()

        def pong():
            while True:
                a.switch()

        a, b = greenlet.greenlet(ping), greenlet.greenlet(pong)
        start = time.perf_counter_ns()
        a.switch()
        elapsed = time.perf_counter_ns() - start
        # main -> a, the round trips a -> b -> a, then a returns to main.
        return elapsed / (2 * round_trips + 2)

    timed(n // 20)  # warm-up: first touch of stacks and caches
    # A collection landing inside the loop would be charged to whichever
    # implementation happened to trigger it.
    gc.disable()
    return {"value": timed(n // 2)}


if __name__ == "__main__":
    _harness.main(measure, n=1_000_000)
