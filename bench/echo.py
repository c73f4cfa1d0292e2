#!/usr/bin/env python3
"""TCP echo benchmark: syncless against gevent, asyncio, uvloop and eventlet,
all in one run; see README.md.

Each run starts one server process, drives it with the C client
(echo_client.c) and samples the server's CPU time when the client opens and
closes its measured window. Runs are interleaved across servers, so drift in
machine load spreads over all of them, and the table shows medians.
"""

import argparse
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import tempfile

# Run with -P (the checkout's syncless/ must not shadow the installed one),
# which leaves this folder off sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peers import (Unavailable, medians_and_spreads, package_versions, ratio,  # noqa: E402
                    run_interleaved)

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINE, SUBJECT = "gevent", "syncless"
SERVERS = {
    "gevent": ["echo_gevent.py"],
    "asyncio-streams": ["echo_asyncio_streams.py"],
    "asyncio-protocol": ["echo_asyncio_protocol.py"],
    "uvloop-streams": ["echo_asyncio_streams.py", "--uvloop"],
    "uvloop-protocol": ["echo_asyncio_protocol.py", "--uvloop"],
    "eventlet": ["echo_eventlet.py"],
    "syncless": ["echo_syncless.py"],
}
PACKAGES = ("gevent", "greenlet", "uvloop", "eventlet", "syncless")
CLK_TCK = os.sysconf("SC_CLK_TCK")



def compile_client(outdir):
    binary = os.path.join(outdir, "echo_client")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "echo_client.c")], check=True)
    return binary


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may contain spaces; fields after ")" don't.
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exit_status(returncode):
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def last_line(path):
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else "no output"


def start_server(name, port, stderr_path, timeout=30):
    script, *flags = SERVERS[name]
    # -P: the checkout's own syncless/ folder must not shadow the installed one.
    cmd = [sys.executable, "-P", os.path.join(HERE, script), str(port), *flags]
    # stderr goes to a file: a chatty server must never block on a full pipe.
    with open(stderr_path, "w") as err:
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
    if select.select([server.stdout], [], [], timeout)[0] and server.stdout.readline() == b"ready\n":
        return server
    stop(server)
    raise Unavailable(last_line(stderr_path))


def stop(server):
    if server.poll() is None:
        server.kill()
    server.wait()
    server.stdout.close()


def measure(client, name, args, stderr_path):
    """One server process, one client run: returns the sample dict."""
    port = free_port()
    server = start_server(name, port, stderr_path)
    try:
        cmd = [client, "--port", str(port), "--connections", str(args.connections),
               "--size", str(args.size), "--warmup", str(args.warmup), "--duration", str(args.duration)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cpu, result = {}, None
        for line in proc.stdout:
            if line.strip() in ("start", "end"):
                cpu[line.strip()] = cpu_seconds(server.pid)
            elif line.startswith("{"):
                result = json.loads(line)
        client_error = proc.stderr.read().strip()
        proc.wait()
        if server.poll() is not None:
            raise RuntimeError(f"server {exit_status(server.returncode)}: {last_line(stderr_path)}")
    finally:
        stop(server)
    if result and result["mismatches"]:
        raise RuntimeError(f"{result['mismatches']} echoed messages differed from what was sent")
    if proc.returncode or result is None:
        raise RuntimeError(f"client {exit_status(proc.returncode)}: {client_error or 'no output'}")
    messages = result["messages"]
    if not messages:
        raise RuntimeError("no message was echoed in the window")
    server_cpu = cpu["end"] - cpu["start"]
    return {
        "msgs_per_s": messages / result["seconds"],
        "cpu_us_per_msg": server_cpu / messages * 1e6,
        "cpu_frac": server_cpu / result["seconds"],
    }



def table(medians, spreads):
    """Markdown table; each ratio is this row's value / the reference row's."""
    base, subj = medians.get(BASELINE, {}), medians.get(SUBJECT, {})
    lines = [
        "| server | runs | msgs/s | spread | vs gevent | vs syncless | server CPU µs/msg | vs gevent | vs syncless | server CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, m in medians.items():
        rate, cost = m["msgs_per_s"], m["cpu_us_per_msg"]
        lines.append(
            f"| {name} | {m['runs']} | {rate:,.0f} | ±{spreads[name]:.1%} "
            f"| {ratio(rate, base.get('msgs_per_s'))} | {ratio(rate, subj.get('msgs_per_s'))} "
            f"| {cost:.2f} | {ratio(cost, base.get('cpu_us_per_msg'))} | {ratio(cost, subj.get('cpu_us_per_msg'))} "
            f"| {m['cpu_frac']:.0%} |"
        )
    return "\n".join(lines)


def describe_setup(args, load_at_start):
    cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return (
        f"Python {platform.python_version()}, {package_versions(PACKAGES)}; client `cc -O2` ({cc}); "
        f"{os.cpu_count()} CPUs, 1-min load average {load_at_start:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end.\n"
        f"{args.connections} connections × {args.size}-byte messages, {args.warmup} s warm-up, "
        f"{args.duration} s measured, {args.runs} runs each; cells are medians over the runs that succeeded. "
        "Ratios are row / reference: higher is better for msgs/s, lower for CPU µs/msg. "
        "Spread is half the min–max range of msgs/s over the median. "
        "Server CPU is the server's utime+stime over the window (100% = one core)."
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--duration", type=float, default=5, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1, help="seconds before the window opens")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (median is reported)")
    parser.add_argument("--only", action="append", choices=SERVERS, metavar="NAME",
                        help=f"only this server (repeatable): {', '.join(SERVERS)}")
    return parser.parse_args()


def main():
    args = parse_args()
    load_at_start = os.getloadavg()[0]
    names = [name for name in SERVERS if not args.only or name in args.only]
    with tempfile.TemporaryDirectory(prefix="syncless-echo-") as tmp:
        client = compile_client(tmp)
        stderr_path = os.path.join(tmp, "server.stderr")
        samples = run_interleaved(
            names, args.runs, lambda name: measure(client, name, args, stderr_path),
            lambda s: f"{s['msgs_per_s']:>10,.0f} msgs/s {s['cpu_us_per_msg']:6.2f} µs/msg  "
                      f"server CPU {s['cpu_frac']:.0%}")
    medians, spreads = medians_and_spreads(samples, "msgs_per_s")
    print(describe_setup(args, load_at_start) + "\n")
    print(table(medians, spreads))


if __name__ == "__main__":
    main()
