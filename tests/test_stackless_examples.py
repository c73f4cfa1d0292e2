"""The Stackless examples (examples/stackless_*.py) run to completion and
print what proves their point. Each runs in a subprocess started in this
directory, so it imports the installed syncless, not the checkout's folder."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), "examples")


def run_example(name):
    """The output lines of ``examples/name``, which must exit 0 quietly."""
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)],
                            cwd=HERE, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def block(lines, first, count):
    """The ``count`` lines starting at the line ``first``."""
    start = lines.index(first)
    return lines[start:start + count]


def test_producer_consumer_shows_preference_and_balance():
    lines = run_example("stackless_producer_consumer.py")
    # Receiver preferred: the waiting receiver runs inside send().
    assert block(lines, "preference -1:", 4) == [
        "preference -1:",
        "  balance with the receiver waiting: -1",
        "  receiver got ping",
        "  sender continues after send",
    ]
    # Sender preferred: the sender goes on; the receiver runs later.
    assert block(lines, "preference 1:", 4) == [
        "preference 1:",
        "  balance with the receiver waiting: -1",
        "  sender continues after send",
        "  receiver got ping",
    ]
    assert "balance with two producers waiting: 2" in lines
    assert "balance with two consumers waiting: -2" in lines
    assert lines[-4:] == [
        "balance at the end: 0",
        "c1 consumed p1-0, p1-1, p1-2",
        "c2 consumed p2-0, p2-1",
        "total consumed: 5",
    ]


def test_philosophers_all_eat_without_deadlock():
    lines = run_example("stackless_philosophers.py")
    names = ["Aristotle", "Kant", "Spinoza", "Marx", "Russell"]
    for name in names:
        meals = [line for line in lines if line.startswith(name + " eats")]
        assert meals == ["%s eats meal %d" % (name, meal) for meal in (1, 2, 3)]
        assert "%s is full" % name in lines
    assert "waiter: all 15 meals served, going home" in lines
    assert lines[lines.index("summary:"):] == ["summary:"] + [
        "  %s ate 3 times" % name for name in names] + [
        "  meals eaten: 15 of 15",
        "  most philosophers eating at once: 2",
        "  neighbours eating together: 0",
        "  everybody finished (no deadlock): True",
    ]


def test_watchdog_preempts_workers_that_never_yield():
    lines = run_example("stackless_watchdog.py")
    # Interleaving depends on timing; results and the order of events do not.
    assert sorted(lines[:4]) == [
        "fast: 3245 primes below 30000",
        "runaway: stopped",
        "slow: 6057 primes below 60000",
        "watchdog: runaway used 25 slices, killing it",
    ]
    killed = lines.index("watchdog: runaway used 25 slices, killing it")
    assert lines[killed + 1] == "runaway: stopped"
    assert lines[4:] == [
        "watchdog: fast was preempted at least once",
        "watchdog: slow was preempted at least once",
        "watchdog: runaway was preempted at least once",
        "fast alive: False",
        "slow alive: False",
        "runaway alive: False",
    ]


def test_bombs_interrupt_channel_waiters_and_sleepers():
    lines = run_example("stackless_bombs.py")
    assert lines == [
        "blocked on a channel, bomb sent over the channel:",
        "  blocked: True, balance: -1",
        "  insert() refused: You cannot run a blocked tasklet",
        "  receiver: got Interrupted('bomb over the channel')",
        "  receiver: cleaned up",
        "  alive: False, balance: 0",
        "blocked on a channel, raise_exception:",
        "  blocked: True, balance: -1",
        "  receiver: got Interrupted('raise_exception')",
        "  receiver: cleaned up",
        "  alive: False, balance: 0",
        "blocked on a channel, kill:",
        "  blocked: True, balance: -1",
        "  receiver: got TaskletExit",
        "  receiver: cleaned up",
        "  alive: False, balance: 0",
        "sleeping in coio.sleep, bomb in tempval + insert():",
        "  scheduled: False",
        "  sleeper: got Interrupted('bomb in tempval')",
        "  sleeper: cleaned up",
        "  alive: False",
        "sleeping in coio.sleep, raise_exception:",
        "  scheduled: False",
        "  sleeper: got Interrupted('raise_exception')",
        "  sleeper: cleaned up",
        "  alive: False",
        "sleeping in coio.sleep, kill:",
        "  scheduled: False",
        "  sleeper: got TaskletExit",
        "  sleeper: cleaned up",
        "  alive: False",
        "done without waiting for the sleeps: True",
    ]
