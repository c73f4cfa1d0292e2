"""Reading a child process's output line by line with coio.popen, while
another tasklet keeps running.

coio.popen(cmd) is os.popen for bytes: an nbfile on the shell's stdout.
Iterating it reads line by line, and each wait for the child parks only the
reading tasklet; close() waits for the child the same way and returns
os.popen's status (None for a clean exit).

    python subprocess_reader.py ["COMMAND"]  # e.g. "ping -c 3 127.0.0.1"; by default a
                                             # Python child printing 5 lines, 0.2 s apart
    python subprocess_reader.py --self-test  # the default child
"""
import shlex
import sys

import syncless

stackless = syncless.install_stackless()

from syncless import coio  # noqa: E402  (after install_stackless)

CHILD = shlex.join([sys.executable, "-u", "-c",
                    "import time\nfor i in range(1, 6): print('line', i); time.sleep(0.2)"])


def ticker():
    beat = 0
    while True:
        coio.sleep(0.15)
        beat += 1
        print("  (meanwhile, another tasklet: tick %d)" % beat)


def main(argv):
    command = CHILD if argv[1:] in ([], ["--self-test"]) else argv[1]
    heart = stackless.tasklet(ticker)()
    child = coio.popen(command)
    for line in child:
        print("child says: %s" % line.decode(errors="replace").rstrip())
    status = child.close()  # parks until the child has exited
    heart.kill()
    code = 0 if status is None else status >> 8
    print("child exited with code %d" % code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
