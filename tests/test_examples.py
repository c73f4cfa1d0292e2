"""The examples (examples/*.py) run to completion with --self-test and print
what proves their point. Each runs in a subprocess started in this directory,
so it imports the installed syncless, not the checkout's syncless/ folder."""
import functools
import hashlib
import importlib.util
import os
import re
import subprocess
import sys

from syncless import coio

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")
NAMES = ["alice", "bob", "carol"]


@functools.lru_cache(maxsize=None)
def run_example(name):
    """The output lines of ``examples/name --self-test`` (run once per session)."""
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), "--self-test"],
                            cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def between(lines, first, last):
    """The lines after the line ``first`` and before the line ``last``."""
    return lines[lines.index(first) + 1:lines.index(last)]


def test_echo_server_serves_its_clients_at_once():
    lines = run_example("echo_server.py")
    for name in NAMES:
        replies = [line for line in lines if line.startswith(name + " got back:")]
        assert replies == ["%s got back: %s says %d" % (name, name, i) for i in range(3)]
    assert "peak concurrent connections: 3" in lines
    assert lines[-1] == "open connections at exit: 0"


def test_chat_server_sends_every_line_to_everyone_else():
    lines = run_example("chat_server.py")
    assert "* hello carol; also here: alice, bob" in lines
    for listener in NAMES:
        heard = sorted(line for line in lines if line.startswith(listener + " heard:"))
        others = [name for name in NAMES if name != listener]
        assert heard == ["%s heard: %s: hello from %s" % (listener, o, o) for o in others]
    assert lines[-1] == "left in the room: 0"


def test_heartbeat_ticks_between_work_steps():
    lines = run_example("heartbeat.py")
    for step in (1, 2, 3):
        during = between(lines, "work step %d: started" % step, "work step %d: done" % step)
        assert during and all(re.fullmatch(r"  tick \d+", line) for line in during)
    assert lines[-1] == "all work done"


def test_parallel_fetch_downloads_concurrently():
    lines = run_example("parallel_fetch.py")
    tls = hasattr(coio, "SSLSocket") and importlib.util.find_spec("trustme") is not None
    scheme = "https" if tls else "http"
    fetched = [re.fullmatch(r"200 %s://127\.0\.0\.1:\d+/page(\d) \(15 bytes\) after [\d.]+ s"
                            % scheme, line) for line in lines[:-2]]
    assert all(fetched) and sorted(m.group(1) for m in fetched) == list("01234")
    summary = re.fullmatch(r"fetched 5 %s pages in ([\d.]+) s; one at a time would take 2\.5 s"
                           % scheme.upper(), lines[-2])
    assert summary and float(summary.group(1)) < 2.0  # each page takes 0.5 s to serve
    assert lines[-1] == "all bodies correct: True"


def test_timeout_reads_one_deadline_over_several_reads():
    lines = run_example("timeout_reads.py")
    got = lines[:-1]
    assert got and all(re.fullmatch(r"got 'line %d' after [\d.]+ s" % (i + 1), line)
                       for i, line in enumerate(got))
    # Lines come every 0.2 s out of 10; the 0.5 s deadline stops the reading.
    end = re.fullmatch(r"timed out after ([\d.]+) s with (\d+) lines", lines[-1])
    assert end and 0.5 <= float(end.group(1)) < 1.5
    assert int(end.group(2)) == len(got) < 10


def test_subprocess_reader_reads_lines_while_another_tasklet_runs():
    lines = run_example("subprocess_reader.py")
    assert [line for line in lines if line.startswith("child says:")] == [
        "child says: line %d" % i for i in range(1, 6)]
    meanwhile = between(lines, "child says: line 1", "child says: line 5")
    assert any(line.startswith("  (meanwhile, another tasklet: tick") for line in meanwhile)
    assert lines[-1] == "child exited with code 0"


def test_select_demo_serves_clients_from_one_select_loop():
    lines = run_example("select_demo.py")
    assert lines[0] == "server: 0 ready before any client ran"
    assert sum(line.startswith("server: accepted a client") for line in lines) == 3
    for name in NAMES:
        assert [line for line in lines if line.startswith(name + " got:")] == [
            "%s got: HELLO FROM %s" % (name, name.upper()),
            "%s got: BYE FROM %s" % (name, name.upper())]
    assert "server: a client hung up (3 of 3)" in lines
    assert lines[-1] == "server: 0 more clients within 0.2 s; done"


def sleep_report(lines, threads):
    """(seconds, ticks) the example reports for 4 sleeps on ``threads`` threads."""
    pattern = (r"4 x time\.sleep\(0\.5\) on %d threads took ([\d.]+) s; "
               r"the ticker ticked (\d+) times" % threads)
    match = next(filter(None, (re.fullmatch(pattern, line) for line in lines)))
    return float(match.group(1)), int(match.group(2))


def test_thread_pool_runs_blocking_calls_while_tasklets_run():
    lines = run_example("thread_pool.py")
    for threads in (4, 2):
        _, ticks = sleep_report(lines, threads)
        assert ticks > 0
    # Two threads need two rounds of 0.5 s for four sleeps.
    assert sleep_report(lines, 2)[0] >= 0.45 * 2
    data = bytes(range(256)) * (64 << 20 >> 8)
    for name in ("sha256", "sha512", "sha3_256", "blake2b"):
        assert "%s of 64 MiB: %s" % (name, hashlib.new(name, data).hexdigest()) in lines
    hashing = re.fullmatch(r"hashing took [\d.]+ s; the ticker ticked (\d+) times", lines[-2])
    assert hashing and int(hashing.group(1)) > 0
    assert lines[-1] == ("an exception in the thread reached the caller: ValueError: "
                         "invalid literal for int() with base 10: 'forty-two'")


def test_thread_pool_runs_as_many_calls_at_once_as_it_has_threads():
    seconds, _ = sleep_report(run_example("thread_pool.py"), 4)
    assert seconds < 0.9  # one round of 0.5 s, not two or more


def test_the_quick_start_demo():
    # scripts/demo.sh runs this through the launcher: gevent on our greenlet,
    # then urllib in tasklets through syncless.patch, in one process.
    result = subprocess.run([sys.executable, "-m", "syncless", "run",
                             os.path.join(EXAMPLES, "demo.py")],
                            cwd=HERE, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "gevent echo: 50/50 clients got their bytes back" in lines
    fetched = [line for line in lines if line.startswith("urllib in 20 tasklets: 20 pages")]
    assert len(fetched) == 1, lines
