"""``python -m syncless run SCRIPT [ARGS...]``: run a script on Syncless.

Installs Syncless's greenlet first, then runs SCRIPT as ``python SCRIPT ARGS``
would: same ``sys.argv``, ``__main__`` module, ``sys.path[0]`` and exit code.
"""
import builtins
import io
import os
import sys
import types

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
    path = os.path.abspath(script)
    # Child processes started with sys.executable get Syncless's greenlet too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (syncless.greenlet_path(), os.environ.get("PYTHONPATH")) if p
    )
    # `python script.py` puts the script's folder first where `-m` put the
    # working directory (neither, under -P). Done before install_greenlet(),
    # which puts its own folder in front of it.
    if not sys.flags.safe_path:
        sys.path[0] = os.path.dirname(path)
    syncless.install_greenlet()
    if not sys.flags.safe_path:
        # Keep the script's folder first, as plain Python does; ours follows
        # it, still ahead of site-packages (and greenlet is imported already).
        sys.path.remove(syncless.greenlet_path())
        sys.path.insert(1, syncless.greenlet_path())
    sys.argv = argv[1:]
    run_as_main(path)
    return 0


def run_as_main(path):
    """Run the file at path the way ``python path`` does: in a fresh
    ``__main__`` module, with ``__file__`` absolute and ``sys.argv[0]`` as
    given (``runpy.run_path`` would set both to the same value)."""
    with io.open_code(path) as source_file:
        source = source_file.read()
    code = compile(source, path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
