"""``python -m syncless run SCRIPT [ARGS...]``: run a script on Syncless.

Installs Syncless's greenlet first, then runs SCRIPT as ``python SCRIPT ARGS``
would: same ``sys.argv``, ``__main__`` module, ``sys.path[0]`` and exit code.
"""
import os
import runpy
import sys

import syncless

USAGE = "usage: python -m syncless run SCRIPT [ARGS...]"


def main(argv):
    if len(argv) < 2 or argv[0] != "run":
        print(USAGE, file=sys.stderr)
        return 2
    script = argv[1]
    if not os.path.exists(script):
        print("syncless: can't open file %r: no such file" % script, file=sys.stderr)
        return 2
    # Child processes started with sys.executable get Syncless's greenlet too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (syncless.greenlet_path(), os.environ.get("PYTHONPATH")) if p
    )
    syncless.install_greenlet()
    sys.argv = argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
