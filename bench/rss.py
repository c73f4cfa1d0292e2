"""Memory per suspended greenlet, parked ``depth`` Python frames deep:
RSS (``--what rss``) or kernel page tables (``--what pte``)."""

import gc

import _harness
from _suspended import suspender


def measure(greenlet, depth, count, what):
    probe = {"rss": _harness.rss_bytes, "pte": _harness.page_table_bytes}[what]
    spawn = suspender(greenlet, depth)
    # Allocated before the baseline so the list itself isn't counted.
    alive = [None] * count
    gc.collect()
    before = probe()
    for i in range(count):
        alive[i] = spawn()
    after = probe()
    return {"value": (after - before) / count}


if __name__ == "__main__":
    _harness.main(measure, depth=5, count=100_000, what="rss")
