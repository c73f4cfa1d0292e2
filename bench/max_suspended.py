"""Max suspended greenlets: how many fit before something gives out.

Stops at the first of: an exception while creating one (MemoryError, or
whatever the implementation raises when it runs out of stacks or
mappings), the cap, or RSS above the limit. A hard crash (OOM kill,
segfault) can't be reported from here; the driver reports the exit
status and the last progress line instead.
"""

import _harness
from _suspended import suspender

# How often to check RSS and report progress. Checking costs microseconds,
# so this bounds overshoot past the RSS limit without slowing creation.
CHECK_EVERY = 1000


def measure(greenlet, depth, cap, rss_limit_gib):
    spawn = suspender(greenlet, depth)
    limit = rss_limit_gib * 2**30
    alive = []
    reason = "reached cap"
    try:
        while len(alive) < cap:
            alive.append(spawn())
            if len(alive) % CHECK_EVERY == 0:
                _harness.emit({"value": len(alive), "note": "progress"})
                if _harness.rss_bytes() > limit:
                    reason = f"RSS above {rss_limit_gib:g} GiB"
                    break
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return {
        "value": len(alive),
        "note": reason,
        "rss_bytes": _harness.rss_bytes(),
    }


if __name__ == "__main__":
    _harness.main(measure, depth=5, cap=2_000_000, rss_limit_gib=8.0)
