#!/usr/bin/env python3
"""Stackless face micro-benchmarks against the greenlet yardstick.

Syncless's tasklets (schedule() ping-pong, channel exchange, create + run +
finish, RSS per tasklet blocked on a channel, also 100,000 of them 5 and 50
frames deep) beside what the real greenlet 3.5.6 does for the nearest
operation (switch ping-pong, create + start + finish, RSS per suspended
greenlet). Each measurement runs in a fresh
process; runs interleave; cells are medians.

    .venv/3.11/bin/python -P bench/stackless.py [--runs 5]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import Unavailable, medians_and_spreads, package_versions, ratio  # noqa: E402
from _peers import run_interleaved  # noqa: E402

SWITCHES = 1_000_000
CREATES = 300_000
BLOCKED = 20_000
BLOCKED_DEEP = 100_000     # issue 3: 100,000 tasklets at 5 and at 50 frames

# (row, tasklet metric, greenlet metric, unit)
ROWS = [
    ("switch: schedule() vs greenlet.switch() ping-pong", "schedule", "switch", "ns/switch"),
    ("channel send/receive exchange (greenlet: 2 switches)", "channel", "switch2", "ns/exchange"),
    ("create + run + finish", "create", "create", "ns"),
    ("RSS per blocked tasklet / suspended greenlet", "rss", "rss", "bytes"),
    ("RSS per tasklet blocked 5 frames deep / greenlet suspended 5 deep", "rss5", "rss5",
     "bytes"),
    ("RSS per tasklet blocked 50 frames deep / greenlet suspended 50 deep", "rss50", "rss50",
     "bytes"),
]


def nested(depth, block):
    """A function that calls itself until `depth` frames deep, then blocks."""
    def nest(n):
        if n <= 1:
            block()
        else:
            nest(n - 1)
    return lambda: nest(depth)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def tasklet_metric(name):
    import syncless

    stackless = syncless.install_stackless()
    if name == "schedule":
        def spin(n):
            schedule = stackless.schedule
            for _ in range(n):
                schedule()
        stackless.tasklet(spin)(SWITCHES // 2)
        stackless.tasklet(spin)(SWITCHES // 2)
        start = time.perf_counter()
        stackless.run()
        return (time.perf_counter() - start) / SWITCHES * 1e9
    if name == "channel":
        channel = stackless.channel()

        def send(n):
            for i in range(n):
                channel.send(i)

        def receive(n):
            for _ in range(n):
                channel.receive()
        stackless.tasklet(send)(SWITCHES // 2)
        stackless.tasklet(receive)(SWITCHES // 2)
        start = time.perf_counter()
        stackless.run()
        return (time.perf_counter() - start) / (SWITCHES // 2) * 1e9
    if name == "create":
        tasklet, run = stackless.tasklet, stackless.run

        def f():
            pass
        start = time.perf_counter()
        for _ in range(CREATES):
            tasklet(f)()
            run()
        return (time.perf_counter() - start) / CREATES * 1e9
    if name == "rss":
        channel = stackless.channel()
        base = rss_bytes()
        for _ in range(BLOCKED):
            stackless.tasklet(channel.receive)()
        stackless.run()  # all of them block on the channel; run() returns
        return (rss_bytes() - base) / BLOCKED
    if name in ("rss5", "rss50"):
        channel = stackless.channel()
        body = nested(int(name[3:]), channel.receive)
        base = rss_bytes()
        for _ in range(BLOCKED_DEEP):
            stackless.tasklet(body)()
        stackless.run()
        return (rss_bytes() - base) / BLOCKED_DEEP
    raise ValueError(name)


def greenlet_metric(name):
    import greenlet

    if "syncless" in greenlet.__file__:
        raise SystemExit("the yardstick must be the real greenlet, not Syncless's")
    if name in ("switch", "switch2"):
        def other():
            parent = main.switch
            while True:
                parent()
        main = greenlet.getcurrent()
        g = greenlet.greenlet(other)
        switch = g.switch
        start = time.perf_counter()
        for _ in range(SWITCHES // 2):
            switch()
        per_switch = (time.perf_counter() - start) / SWITCHES * 1e9
        return per_switch * (2 if name == "switch2" else 1)
    if name == "create":
        def f():
            pass
        make = greenlet.greenlet
        start = time.perf_counter()
        for _ in range(CREATES):
            make(f).switch()
        return (time.perf_counter() - start) / CREATES * 1e9
    if name == "rss":
        main = greenlet.getcurrent()
        base = rss_bytes()
        kept = []
        for _ in range(BLOCKED):
            g = greenlet.greenlet(main.switch)
            g.switch()
            kept.append(g)
        return (rss_bytes() - base) / BLOCKED
    if name in ("rss5", "rss50"):
        main = greenlet.getcurrent()
        body = nested(int(name[3:]), main.switch)
        base = rss_bytes()
        kept = []
        for _ in range(BLOCKED_DEEP):
            g = greenlet.greenlet(body)
            g.switch()
            kept.append(g)
        return (rss_bytes() - base) / BLOCKED_DEEP
    raise ValueError(name)


def measure(name, metric):
    cmd = [sys.executable, "-P", os.path.abspath(__file__), "--worker", name, "--metric", metric]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        if "Error" in lines[-1] and "import" in proc.stderr:
            raise Unavailable(lines[-1])
        raise RuntimeError(lines[-1])
    return {"value": json.loads(proc.stdout)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worker", choices=("tasklet", "greenlet"))
    parser.add_argument("--metric")
    args = parser.parse_args()
    if args.worker:
        metric = tasklet_metric if args.worker == "tasklet" else greenlet_metric
        print(json.dumps(metric(args.metric)))
        return
    jobs = {}
    for _, tasklet_name, greenlet_name, _ in ROWS:
        jobs["tasklet:" + tasklet_name] = ("tasklet", tasklet_name)
        jobs["greenlet:" + greenlet_name] = ("greenlet", greenlet_name)
    samples = run_interleaved(jobs, args.runs, lambda key: measure(*jobs[key]),
                              lambda s: f"{s['value']:,.1f}")
    medians, _ = medians_and_spreads(samples, "value")
    print(f"Python {sys.version.split()[0]}, {package_versions(('greenlet', 'syncless'))}; "
          f"medians of {args.runs} runs, one process each.\n")
    print("| metric | greenlet (real) | syncless tasklets | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for label, tasklet_name, greenlet_name, unit in ROWS:
        g = medians.get("greenlet:" + greenlet_name, {}).get("value")
        t = medians.get("tasklet:" + tasklet_name, {}).get("value")
        cell = lambda v: "n/a" if v is None else f"{v:,.0f}" if v >= 1000 else f"{v:.1f}"
        print(f"| {label} ({unit}) | {cell(g)} | {cell(t)} | {ratio(t, g) if t and g else 'n/a'} |")


if __name__ == "__main__":
    main()
