"""A preemptive round-robin scheduler: Stackless's watchdog, stackless.run(timeout).

The workers never yield: they are plain CPU-bound Python loops. The main
tasklet is the watchdog: stackless.run(SLICE) runs the queue until one
tasklet has used a time slice without switching, takes that tasklet out of
the queue and returns it. The watchdog counts the slices each worker used,
puts it back at the end of the queue, and kills a worker that went over its
budget; kill() raises TaskletExit inside it, so its finally clause runs.

A tick is 10 ns of the thread's CPU time (docs/stackless.md, "Preemption"),
so SLICE is 2 ms. Which worker is interrupted where depends on timing; the
results and the order of events below do not.
"""
import syncless

stackless = syncless.install_stackless()

SLICE = 200_000          # ticks: 2 ms of CPU time
BUDGET = 25              # slices a worker may use before the watchdog kills it


def count_primes(limit):
    found = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            found += 1
    return found


def worker(name, limit, results):
    results[name] = count_primes(limit)
    print("%s: %d primes below %d" % (name, results[name], limit))


def runaway(name):
    n = 0
    try:
        while True:      # never ends by itself, never yields
            n += 1
    finally:
        print("%s: stopped" % name)


def watchdog(tasklets):
    slices = dict.fromkeys(tasklets.values(), 0)
    names = {t: name for name, t in tasklets.items()}
    while True:
        victim = stackless.run(SLICE)
        if victim is None:
            break                       # every worker finished
        slices[victim] += 1
        if slices[victim] > BUDGET:
            print("watchdog: %s used %d slices, killing it" % (names[victim], BUDGET))
            victim.kill()
        else:
            victim.insert()             # back to the end of the queue
    for name, t in tasklets.items():
        print("watchdog: %s was preempted %s" % (
            name, "at least once" if slices[t] else "never"))


def main():
    results = {}
    tasklets = {
        "fast": stackless.tasklet(worker)("fast", 30_000, results),
        "slow": stackless.tasklet(worker)("slow", 60_000, results),
        "runaway": stackless.tasklet(runaway)("runaway"),
    }
    watchdog(tasklets)
    for name, t in tasklets.items():
        print("%s alive: %s" % (name, t.alive))


main()
