#!/usr/bin/env python3
"""Benchmark syncless's greenlet against the real greenlet; see README.md."""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

import report

HERE = os.path.dirname(os.path.abspath(__file__))
IMPLS = ("greenlet", "syncless")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    script: str
    args: dict
    quick_args: dict
    higher_is_better: bool = False


def metrics(max_cap, max_rss_gib):
    max_args = {"depth": 5, "cap": max_cap, "rss_limit_gib": max_rss_gib}
    return [
        Metric("switch", "switch ping-pong (ns/switch)", "switch.py",
               {"n": 1_000_000}, {"n": 100_000}),
        Metric("create", "create+start+finish (ns/greenlet)", "create.py",
               {"n": 1_000_000}, {"n": 20_000}),
        Metric("rss_d5", "RSS per suspended, depth 5 (bytes)", "rss.py",
               {"depth": 5, "count": 100_000, "what": "rss"},
               {"depth": 5, "count": 10_000, "what": "rss"}),
        Metric("rss_d50", "RSS per suspended, depth 50 (bytes)", "rss.py",
               {"depth": 50, "count": 100_000, "what": "rss"},
               {"depth": 50, "count": 10_000, "what": "rss"}),
        Metric("pte_d5", "page tables per suspended, depth 5 (bytes)", "rss.py",
               {"depth": 5, "count": 100_000, "what": "pte"},
               {"depth": 5, "count": 10_000, "what": "pte"}),
        Metric("max_suspended", "max suspended, depth 5 (count)", "max_suspended.py",
               max_args, {**max_args, "cap": 20_000}, higher_is_better=True),
    ]


@dataclass
class Sample:
    value: float | None
    note: str | None = None
    extra: dict = field(default_factory=dict)


def describe_exit(returncode):
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_worker(script, impl, args, timeout):
    cmd = [sys.executable, "-B", os.path.join(HERE, script), "--impl", impl]
    for name, value in args.items():
        cmd += ["--" + name.replace("_", "-"), str(value)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        stdout, stderr = proc.stdout, proc.stderr
        failure = describe_exit(proc.returncode) if proc.returncode else None
    except subprocess.TimeoutExpired as exc:
        # On timeout the captured output is bytes even in text mode.
        stdout = (exc.stdout or b"").decode(errors="replace")
        stderr = (exc.stderr or b"").decode(errors="replace")
        failure = f"timed out after {timeout}s"

    results = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    last = results[-1] if results else {}
    value, note = last.pop("value", None), last.pop("note", None)
    if failure:
        # For max_suspended the last progress line is the count reached.
        reached = f" at {value:,}" if value is not None else ""
        why = last_line(stderr)
        note = f"worker {failure}{reached}" + (f": {why}" if why else "")
    return Sample(value, note, last)


def probe(impl, timeout):
    """Return what the worker loads for ``impl``, or None (printing why) if it can't."""
    sample = run_worker("_harness.py", impl, {}, timeout)
    if sample.note:
        print(f"skipping {impl}: {sample.note}", file=sys.stderr)
        return None
    return sample.extra


def summarize(samples):
    values = [s.value for s in samples if s.value is not None]
    notes = list(dict.fromkeys(s.note for s in samples if s.note))
    return {
        "median": statistics.median(values) if values else None,
        "samples": [s.value for s in samples],
        "notes": notes,
        "extra": [s.extra for s in samples if s.extra],
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per metric and impl (median is reported)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke test")
    parser.add_argument("--impl", choices=IMPLS, action="append", help="only this impl (repeatable)")
    parser.add_argument("--only", action="append", metavar="METRIC", help="only this metric key (repeatable)")
    parser.add_argument("--max-cap", type=int,
                        default=int(os.environ.get("SYNCLESS_BENCH_MAX_CAP", 2_000_000)),
                        help="cap for max_suspended (env SYNCLESS_BENCH_MAX_CAP)")
    parser.add_argument("--max-rss-gib", type=float,
                        default=float(os.environ.get("SYNCLESS_BENCH_MAX_RSS_GIB", 8)),
                        help="RSS limit for max_suspended (env SYNCLESS_BENCH_MAX_RSS_GIB)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a worker is killed")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args()


def main():
    args = parse_args()
    impls = {}
    for impl in (i for i in IMPLS if not args.impl or i in args.impl):
        info = probe(impl, args.timeout)
        if info is not None:
            impls[impl] = info
    if not impls:
        sys.exit("no implementation could be loaded")

    selected = [m for m in metrics(args.max_cap, args.max_rss_gib) if not args.only or m.key in args.only]
    if not selected:
        sys.exit(f"no metric matches --only {args.only}")
    samples = {(m.key, impl): [] for m in selected for impl in impls}
    # Runs are the outer loop so slow drift (thermal, other load) spreads
    # over both implementations instead of landing on one.
    for run in range(1, args.runs + 1):
        for m in selected:
            for impl in impls:
                sample = run_worker(m.script, impl, m.quick_args if args.quick else m.args, args.timeout)
                samples[m.key, impl].append(sample)
                print(f"[run {run}/{args.runs}] {m.key:<14} {impl:<9} {sample.value}"
                      + (f"  ({sample.note})" if sample.note else ""), file=sys.stderr)

    results = {
        "python": sys.version,
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "runs": args.runs,
        "quick": args.quick,
        "impls": impls,
        "metrics": [],
    }
    for m in selected:
        per_impl = {impl: summarize(samples[m.key, impl]) for impl in impls}
        medians = [per_impl.get(impl, {}).get("median") for impl in IMPLS]
        results["metrics"].append({
            "key": m.key,
            "label": m.label,
            "higher_is_better": m.higher_is_better,
            "args": m.quick_args if args.quick else m.args,
            "results": per_impl,
            "ratio": medians[1] / medians[0] if None not in medians and medians[0] else None,
        })

    print(report.markdown(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
