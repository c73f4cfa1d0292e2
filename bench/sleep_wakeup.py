#!/usr/bin/env python3
"""Sleep/wake-up benchmark: K coroutines each loop on sleep(0.001); syncless
against gevent, asyncio, uvloop and eventlet in one run; see README.md.

10,000 coroutines asking to wake every millisecond is far more than any of
them can serve, so every implementation runs flat out and wakeups/s measures
the cost of one timer-driven park + wake-up (timer insert, expiry, switch
back, the Python loop around it).

Run without --impl it is the driver: one worker process per implementation
and run, runs interleaved across implementations, medians in a table.
With --impl NAME it is that worker and prints one JSON line.
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time

# Run with -P (the checkout's syncless/ must not shadow the installed one),
# which leaves this folder off sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import (Unavailable, medians_and_spreads, package_versions, ratio,  # noqa: E402
                    run_interleaved)

BASELINE, SUBJECT = "gevent", "syncless"
INTERVAL = 0.001

# ---- worker ---------------------------------------------------------------

wakeups = 0


def sleeper(sleep):
    global wakeups
    while True:
        sleep(INTERVAL)
        wakeups += 1


async def async_sleeper():
    global wakeups
    while True:
        await asyncio.sleep(INTERVAL)
        wakeups += 1


def snapshot():
    return wakeups, time.perf_counter(), time.process_time()


def report(start):
    end = snapshot()
    print(json.dumps({"wakeups": end[0] - start[0], "seconds": end[1] - start[1],
                      "cpu": end[2] - start[2]}), flush=True)
    # The sleepers never finish; skip tearing down thousands of them.
    os._exit(0)


def window(sleep, warmup, duration):
    """Body of the main coroutine: the sleepers run while it sleeps."""
    sleep(warmup)
    start = snapshot()
    sleep(duration)
    report(start)


async def async_window(warmup, duration):
    await asyncio.sleep(warmup)
    start = snapshot()
    await asyncio.sleep(duration)
    report(start)


def require_real_greenlet():
    # The peers run on the real greenlet package; syncless's drop-in (first
    # on PYTHONPATH) would turn them into a different test.
    import greenlet

    if "syncless" in greenlet.__file__:
        sys.exit(f"would run on syncless's greenlet ({greenlet.__file__})")


def run_gevent(count, warmup, duration):
    require_real_greenlet()
    import gevent

    print("ready", flush=True)
    for _ in range(count):
        gevent.spawn(sleeper, gevent.sleep)
    window(gevent.sleep, warmup, duration)


def run_eventlet(count, warmup, duration):
    require_real_greenlet()
    import eventlet

    print("ready", flush=True)
    for _ in range(count):
        eventlet.spawn(sleeper, eventlet.sleep)
    window(eventlet.sleep, warmup, duration)


def run_asyncio(count, warmup, duration):
    async def main():
        # gather keeps the sleeper tasks referenced (the loop holds tasks
        # only weakly).
        await asyncio.gather(*(async_sleeper() for _ in range(count)), async_window(warmup, duration))

    print("ready", flush=True)
    asyncio.run(main())


def run_uvloop(count, warmup, duration):
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    run_asyncio(count, warmup, duration)


def run_syncless(count, warmup, duration):
    import syncless

    stackless = syncless.install_stackless()
    from syncless import coio

    print("ready", flush=True)
    for _ in range(count):
        stackless.tasklet(sleeper)(coio.sleep)
    # coio.sleep parks only the main tasklet; the hub runs the sleepers.
    window(coio.sleep, warmup, duration)


WORKERS = {
    "gevent": run_gevent,
    "asyncio": run_asyncio,
    "uvloop": run_uvloop,
    "eventlet": run_eventlet,
    "syncless": run_syncless,
}
IMPLS = tuple(WORKERS)

# ---- driver ---------------------------------------------------------------



def exit_status(returncode):
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def measure(impl, args):
    # -P: the checkout's own syncless/ folder must not shadow the installed one.
    cmd = [sys.executable, "-P", os.path.abspath(__file__), "--impl", impl,
           "--coroutines", str(args.coroutines), "--warmup", str(args.warmup),
           "--duration", str(args.duration)]
    timeout = args.warmup + args.duration + 60
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from None
    lines = proc.stdout.splitlines()
    if "ready" not in lines:
        raise Unavailable(last_line(proc.stderr))
    results = [json.loads(line) for line in lines if line.startswith("{")]
    if proc.returncode or not results:
        raise RuntimeError(f"worker {exit_status(proc.returncode)}: {last_line(proc.stderr)}")
    r = results[-1]
    if not r["wakeups"]:
        raise RuntimeError("no coroutine woke up in the window")
    return {
        "wakeups_per_s": r["wakeups"] / r["seconds"],
        "cpu_us_per_wakeup": r["cpu"] / r["wakeups"] * 1e6,
        "cpu_frac": r["cpu"] / r["seconds"],
    }



def table(medians, spreads, coroutines):
    """Markdown table; each ratio is this row's value / the reference row's."""
    base, subj = medians.get(BASELINE, {}), medians.get(SUBJECT, {})
    lines = [
        "| impl | runs | wakeups/s | spread | vs gevent | vs syncless | CPU µs/wakeup | vs gevent | vs syncless "
        "| mean period | CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in medians.items():
        rate, cost = m["wakeups_per_s"], m["cpu_us_per_wakeup"]
        lines.append(
            f"| {name} | {m['runs']} | {rate:,.0f} | ±{spreads[name]:.1%} "
            f"| {ratio(rate, base.get('wakeups_per_s'))} | {ratio(rate, subj.get('wakeups_per_s'))} "
            f"| {cost:.2f} | {ratio(cost, base.get('cpu_us_per_wakeup'))} "
            f"| {ratio(cost, subj.get('cpu_us_per_wakeup'))} "
            f"| {coroutines / rate * 1e3:.1f} ms | {m['cpu_frac']:.0%} |"
        )
    return "\n".join(lines)


def describe_setup(args, load_at_start):
    return (
        f"Python {platform.python_version()}, "
        f"{package_versions(('gevent', 'greenlet', 'uvloop', 'eventlet', 'syncless'))}; "
        f"{os.cpu_count()} CPUs, 1-min load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end.\n"
        f"{args.coroutines:,} coroutines each looping on sleep({INTERVAL}), {args.warmup} s warm-up, "
        f"{args.duration} s measured, {args.runs} runs each; cells are medians over the runs that succeeded. "
        "Ratios are row / reference: higher is better for wakeups/s, lower for CPU µs/wakeup. "
        "Spread is half the min–max range of wakeups/s over the median. "
        f"Mean period is how often each coroutine actually woke (asked: {INTERVAL * 1e3:g} ms). "
        "CPU is the worker's CPU time over the window (100% = one core)."
    )


def drive(args):
    load_at_start = os.getloadavg()[0]
    names = [name for name in IMPLS if not args.only or name in args.only]
    samples = run_interleaved(
        names, args.runs, lambda name: measure(name, args),
        lambda s: f"{s['wakeups_per_s']:>10,.0f} wakeups/s {s['cpu_us_per_wakeup']:6.2f} µs/wakeup  "
                  f"CPU {s['cpu_frac']:.0%}")
    medians, spreads = medians_and_spreads(samples, "wakeups_per_s")
    print(describe_setup(args, load_at_start) + "\n")
    print(table(medians, spreads, args.coroutines))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coroutines", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds before the window opens")
    parser.add_argument("--runs", type=int, default=3, help="runs per implementation (median is reported)")
    parser.add_argument("--only", action="append", choices=IMPLS, metavar="NAME",
                        help=f"only this implementation (repeatable): {', '.join(IMPLS)}")
    parser.add_argument("--impl", choices=IMPLS, help="be the worker for this implementation")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.impl:
        WORKERS[args.impl](args.coroutines, args.warmup, args.duration)
    else:
        drive(args)


if __name__ == "__main__":
    main()
