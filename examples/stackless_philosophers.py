"""Dining philosophers with Stackless tasklets and a waiter tasklet.

Five philosophers sit at a round table with one fork between each pair.
Instead of grabbing forks (which can deadlock when everyone holds a left
fork), a philosopher asks the waiter over a channel; the waiter hands out
both forks at once or keeps the request until a neighbour puts forks back.
Each philosopher eats MEALS times; the summary shows every meal was eaten,
that neighbours never ate together, and that everybody finished.

Everything is cooperative, so the output is the same on every run.
"""
import syncless

stackless = syncless.install_stackless()

NAMES = ["Aristotle", "Kant", "Spinoza", "Marx", "Russell"]
MEALS = 3


def forks_of(seat):
    return seat, (seat + 1) % len(NAMES)


def waiter(requests, stats):
    free = [True] * len(NAMES)
    eating = set()
    pending = []                      # (seat, reply channel) not served yet
    puts = 0

    def serve():
        # Serve the longest-waiting requests first so nobody starves.
        for seat, reply in list(pending):
            if all(free[f] for f in forks_of(seat)):
                for f in forks_of(seat):
                    free[f] = False
                pending.remove((seat, reply))
                eating.add(seat)
                stats["most at once"] = max(stats["most at once"], len(eating))
                for other in eating:
                    if other != seat and set(forks_of(other)) & set(forks_of(seat)):
                        stats["neighbours together"] += 1
                reply.send("forks")

    while puts < len(NAMES) * MEALS:
        kind, seat, reply = requests.receive()
        if kind == "take":
            pending.append((seat, reply))
        else:
            for f in forks_of(seat):
                free[f] = True
            eating.discard(seat)
            puts += 1
        serve()
    print("waiter: all %d meals served, going home" % puts)


def philosopher(seat, requests, meals_eaten):
    reply = stackless.channel()
    # Sender preferred: the waiter's send does not switch here, so it can
    # hand out more forks before this philosopher starts eating.
    reply.preference = 1
    for meal in range(1, MEALS + 1):
        stackless.schedule()          # think
        requests.send(("take", seat, reply))
        reply.receive()
        print("%s eats meal %d" % (NAMES[seat], meal))
        stackless.schedule()          # eat while the others get a turn
        requests.send(("put", seat, None))
        meals_eaten[seat] += 1
    print("%s is full" % NAMES[seat])


def main():
    requests = stackless.channel()
    meals_eaten = [0] * len(NAMES)
    stats = {"most at once": 0, "neighbours together": 0}
    stackless.tasklet(waiter)(requests, stats)
    philosophers = [stackless.tasklet(philosopher)(seat, requests, meals_eaten)
                    for seat in range(len(NAMES))]
    stackless.run()                   # returns once every tasklet has ended

    print("summary:")
    for seat, name in enumerate(NAMES):
        print("  %s ate %d times" % (name, meals_eaten[seat]))
    print("  meals eaten: %d of %d" % (sum(meals_eaten), len(NAMES) * MEALS))
    print("  most philosophers eating at once: %d" % stats["most at once"])
    print("  neighbours eating together: %d" % stats["neighbours together"])
    print("  everybody finished (no deadlock): %s"
          % (not any(t.alive for t in philosophers)))


main()
