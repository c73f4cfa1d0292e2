"""Producers and consumers over a Stackless channel.

Shows:
  * channel preference: with -1 (the default) a send to a waiting receiver
    runs the receiver at once; with 1 the sender keeps running and the
    receiver only runs at the next schedule();
  * channel.balance: positive while senders wait, negative while receivers
    wait, 0 when nobody waits;
  * two producers and two consumers sharing one channel, stopped with a
    sentinel value.

Everything is cooperative, so the output is the same on every run.
"""
import syncless

stackless = syncless.install_stackless()


def show_preference(preference):
    print("preference %d:" % preference)
    ch = stackless.channel()
    ch.preference = preference

    def receiver():
        print("  receiver got", ch.receive())

    stackless.tasklet(receiver)()
    stackless.schedule()              # let the receiver block in receive()
    print("  balance with the receiver waiting:", ch.balance)
    ch.send("ping")
    print("  sender continues after send")
    stackless.run()                   # with preference 1 the receiver runs only now


def producer(name, ch, count):
    for i in range(count):
        item = "%s-%d" % (name, i)
        print("%s sends %s" % (name, item))
        ch.send(item)
    print("%s done" % name)


def consumer(name, ch, got):
    while True:
        item = ch.receive()
        if item is None:              # the sentinel: no more work
            print("%s stops" % name)
            return
        got.append(item)
        print("%s got %s" % (name, item))
        stackless.schedule()          # give the others a turn, as real work would


def producers_and_consumers():
    print("two producers, two consumers:")
    ch = stackless.channel()
    stackless.tasklet(producer)("p1", ch, 3)
    stackless.tasklet(producer)("p2", ch, 2)
    stackless.schedule()              # both producers block in send()
    print("balance with two producers waiting:", ch.balance)

    got = {"c1": [], "c2": []}
    for name in got:
        stackless.tasklet(consumer)(name, ch, got[name])
    stackless.run()                   # returns once everybody waits on ch
    print("balance with two consumers waiting:", ch.balance)

    for _ in got:
        ch.send(None)
    stackless.run()
    print("balance at the end:", ch.balance)
    for name, items in got.items():
        print("%s consumed %s" % (name, ", ".join(items)))
    print("total consumed:", sum(len(items) for items in got.values()))


show_preference(-1)
show_preference(1)
producers_and_consumers()
