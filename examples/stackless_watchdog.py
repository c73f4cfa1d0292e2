"""A cooperative round-robin watchdog for Stackless tasklets.

Worker tasklets do a step of work and then yield with stackless.schedule().
A watchdog tasklet sits in the same run ring, so it runs once per round; it
counts rounds and kills any worker still alive after MAX_ROUNDS rounds.
The runaway worker below never finishes on its own, so the watchdog kills
it; kill() raises TaskletExit inside the worker, whose finally clause runs.

Stackless can also preempt tasklets with run(timeout) (a tick-based watchdog
that interrupts a tasklet which never yields). Syncless does not implement
that: run(timeout) raises NotImplementedError. This watchdog is cooperative:
it only works because every worker calls schedule() now and then.

Everything is cooperative, so the output is the same on every run.
"""
import syncless

stackless = syncless.install_stackless()

MAX_ROUNDS = 5


def worker(name, steps):
    for step in range(1, steps + 1):
        print("  %s: step %d of %d" % (name, step, steps))
        stackless.schedule()
    print("  %s: finished" % name)


def runaway(name):
    step = 0
    try:
        while True:                   # never ends by itself
            step += 1
            print("  %s: step %d" % (name, step))
            stackless.schedule()
    finally:
        print("  %s: stopped after %d steps" % (name, step))


def watchdog(workers):
    rounds = 0
    while any(t.alive for t in workers.values()):
        rounds += 1
        print("watchdog: round %d" % rounds)
        if rounds > MAX_ROUNDS:
            for name, t in workers.items():
                if t.alive:
                    print("watchdog: %s is still running after %d rounds, killing it"
                          % (name, MAX_ROUNDS))
                    t.kill()
        stackless.schedule()          # one full round of the ring
    print("watchdog: all workers done after %d rounds" % rounds)


def main():
    workers = {
        "fast": stackless.tasklet(worker)("fast", 2),
        "slow": stackless.tasklet(worker)("slow", 4),
        "runaway": stackless.tasklet(runaway)("runaway"),
    }
    stackless.tasklet(watchdog)(workers)
    stackless.run()
    for name, t in workers.items():
        print("%s alive: %s" % (name, t.alive))


main()
