"""What run(timeout) preemption costs: slice length achieved and the work a
CPU-bound tasklet loses to being interrupted, per requested slice.

No peer has preemption (greenlet, gevent and asyncio are cooperative only;
Stackless cannot be installed on CPython 3.11), so the yardstick is the same
work run without a timeout. Each measurement runs in a fresh process.

    .venv/3.11/bin/python -P bench/preempt.py --runs 3
"""
import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time, syncless
stackless = syncless.install_stackless()
ticks, duration = int(sys.argv[1]), float(sys.argv[2])
done = [0]
def work():
    while True:
        done[0] += 1
t = stackless.tasklet(work)()
start = time.thread_time()
interrupts = 0
if ticks:
    while time.thread_time() - start < duration:
        stackless.run(ticks).insert()
        interrupts += 1
else:
    # The same loop, stopped from outside by one interrupt at the end.
    stackless.run(int(duration * 1e8)).insert()
used = time.thread_time() - start
t.remove(); t.kill()
print(json.dumps({"rate": done[0] / used, "interrupts": interrupts, "used": used}))
"""


def measure(ticks, duration):
    out = subprocess.run([sys.executable, "-P", "-c", CHILD, str(ticks), str(duration)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.0, help="CPU seconds per run")
    args = parser.parse_args()
    slices = [("none", 0), ("10 ms", 1_000_000), ("1 ms", 100_000), ("0.1 ms", 10_000)]
    results = {}
    for run in range(args.runs):
        for name, ticks in slices:
            r = measure(ticks, args.duration)
            results.setdefault(name, []).append(r)
            print("[run %d/%d] %-6s %.0f iterations/s, %d interrupts" % (
                run + 1, args.runs, name, r["rate"], r["interrupts"]), file=sys.stderr)
    base = statistics.median(r["rate"] for r in results["none"])
    print("Python %s; medians of %d runs, one process each, %.1f s of CPU per run.\n" % (
        sys.version.split()[0], args.runs, args.duration))
    print("| requested slice | achieved slice (CPU) | work lost to preemption |")
    print("| --- | ---: | ---: |")
    for name, ticks in slices[1:]:
        rs = results[name]
        slice_ms = statistics.median(r["used"] / max(r["interrupts"], 1) for r in rs) * 1e3
        lost = 1 - statistics.median(r["rate"] for r in rs) / base
        print("| %s | %.2f ms | %.1f%% |" % (name, slice_ms, lost * 100))


if __name__ == "__main__":
    main()
