"""RSS bytes per suspended greenlet, parked ``depth`` Python frames deep."""

import gc

import _harness
from _suspended import suspender


def measure(greenlet, depth, count):
    spawn = suspender(greenlet, depth)
    # Allocated before the baseline so the list itself isn't counted.
    alive = [None] * count
    gc.collect()
    before = _harness.rss_bytes()
    for i in range(count):
        alive[i] = spawn()
    after = _harness.rss_bytes()
    return {"value": (after - before) / count}


if __name__ == "__main__":
    _harness.main(measure, depth=5, count=100_000)
