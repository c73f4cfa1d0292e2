"""``python -m syncless run SCRIPT [ARGS...]`` and ``syncless.install_greenlet()``.

The launcher must run SCRIPT as ``python SCRIPT ARGS`` would, with Syncless's
greenlet installed in the process and in the child processes it starts. Every
test runs interpreters in a temporary directory (never the repository root,
whose ``syncless/`` folder would shadow the installed package).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import syncless

pytestmark = pytest.mark.timeout(120)

SYNCLESS_DIR = os.path.realpath(os.path.dirname(syncless.__file__))

# A script that reports what it sees as JSON on its last stdout line.
REPORT = """
import json, os, sys
import greenlet
report = {
    "argv": sys.argv,
    "name": __name__,
    "file": __file__,
    "path0": sys.path[0],
    "path": sys.path,
    "cwd": os.getcwd(),
    "greenlet": os.path.realpath(greenlet.__file__),
    "main_is_globals": sys.modules["__main__"].__dict__ is globals(),
    "spec": repr(__spec__),
}
print(json.dumps(report))
"""


def clean_env(**extra):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("SYNCLESS_STACK_SIZE", None)
    env.update(extra)
    return env


def run(args, cwd, env=None, timeout=90):
    return subprocess.run(
        [sys.executable] + list(args),
        cwd=str(cwd),
        env=env if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def launch(script, args=(), cwd=None, env=None):
    return run(["-m", "syncless", "run", str(script)] + list(args), cwd, env)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def last_json(proc):
    assert proc.returncode == 0, describe(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe(proc):
    return "exit status %s\n--- stdout\n%s\n--- stderr\n%s" % (proc.returncode, proc.stdout, proc.stderr[-3000:])


def is_ours(greenlet_file):
    return os.path.commonpath([SYNCLESS_DIR, os.path.realpath(greenlet_file)]) == SYNCLESS_DIR


# --- running the script like python does ------------------------------------------


def test_script_sees_argv_name_and_syncless_greenlet(tmp_path):
    write(tmp_path / "script.py", REPORT)
    report = last_json(launch("script.py", ["a", "b", "--flag"], cwd=tmp_path))
    assert report["argv"] == ["script.py", "a", "b", "--flag"]
    assert report["name"] == "__main__"
    assert report["main_is_globals"] is True
    assert is_ours(report["greenlet"]), report["greenlet"]


def test_script_environment_matches_plain_python(tmp_path):
    script = write(tmp_path / "sub" / "script.py", REPORT)
    ours = last_json(launch("sub/script.py", ["x"], cwd=tmp_path))
    plain = last_json(run(["sub/script.py", "x"], cwd=tmp_path))
    assert not is_ours(plain["greenlet"])  # the real one, as installed
    for key in ("argv", "name", "path0", "cwd", "main_is_globals", "spec"):
        assert ours[key] == plain[key], key
    assert ours["path0"] == str(script.parent)


def test_dunder_file_matches_plain_python(tmp_path):
    write(tmp_path / "sub" / "script.py", REPORT)
    ours = last_json(launch("sub/script.py", cwd=tmp_path))
    plain = last_json(run(["sub/script.py"], cwd=tmp_path))
    # Since Python 3.9 a script's __file__ is absolute.
    assert ours["file"] == plain["file"] == str(tmp_path / "sub" / "script.py")


def test_working_directory_is_not_added_to_sys_path(tmp_path):
    # `python sub/script.py` does not make modules in the working directory
    # importable; only the script's own directory is searched first.
    write(tmp_path / "sub" / "script.py", REPORT)
    ours = last_json(launch("sub/script.py", cwd=tmp_path))
    plain = last_json(run(["sub/script.py"], cwd=tmp_path))
    assert str(tmp_path) not in plain["path"]
    assert str(tmp_path) not in ours["path"], ours["path"][:4]


def test_script_imports_modules_next_to_it(tmp_path):
    write(tmp_path / "app" / "helper.py", "VALUE = 'helper next to the script'\n")
    write(tmp_path / "app" / "main.py", "import helper\nprint(helper.VALUE)\n")
    proc = launch("app/main.py", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.strip() == "helper next to the script"


def test_classes_defined_in_script_pickle(tmp_path):
    write(
        tmp_path / "script.py",
        """
        import pickle
        class Point:
            def __init__(self, x):
                self.x = x
        copy = pickle.loads(pickle.dumps(Point(3)))
        print(type(copy) is Point, copy.x)
        """,
    )
    proc = launch("script.py", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.split() == ["True", "3"]


# --- exit status ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, stderr_has",
    [
        ("pass", 0, None),
        ("import sys; sys.exit()", 0, None),
        ("import sys; sys.exit(0)", 0, None),
        ("import sys; sys.exit(3)", 3, None),
        ("raise SystemExit(42)", 42, None),
        ("import sys; sys.exit('fatal: bad input')", 1, "fatal: bad input"),
        ("import os, sys; sys.stdout.flush(); os._exit(7)", 7, None),
    ],
)
def test_exit_status_propagates(body, status, stderr_has, tmp_path):
    write(tmp_path / "script.py", body + "\n")
    proc = launch("script.py", cwd=tmp_path)
    plain = run(["script.py"], cwd=tmp_path)
    assert proc.returncode == plain.returncode == status, describe(proc)
    if stderr_has is not None:
        assert stderr_has in proc.stderr


def test_uncaught_exception_exits_1_with_traceback(tmp_path):
    write(
        tmp_path / "script.py",
        """
        def fail():
            raise KeyError("boom from script")
        fail()
        """,
    )
    proc = launch("script.py", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert "Traceback (most recent call last)" in proc.stderr
    assert "KeyError: 'boom from script'" in proc.stderr
    assert "in fail" in proc.stderr
    assert "script.py" in proc.stderr


def test_uncaught_exception_inside_greenlet_exits_1(tmp_path):
    write(
        tmp_path / "script.py",
        """
        import greenlet
        def body():
            raise ValueError("raised in a greenlet")
        greenlet.greenlet(body).switch()
        """,
    )
    proc = launch("script.py", cwd=tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert "ValueError: raised in a greenlet" in proc.stderr


# --- usage errors ---------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["run"], ["walk", "script.py"]])
def test_usage_errors(args, tmp_path):
    proc = run(["-m", "syncless"] + args, cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert "usage: python -m syncless run SCRIPT" in proc.stderr


def test_missing_script(tmp_path):
    proc = launch("no_such_script.py", cwd=tmp_path)
    assert proc.returncode == 2, describe(proc)
    assert "no_such_script.py" in proc.stderr


# --- child processes ----------------------------------------------------------------

CHILD_REPORT = """
import json, subprocess, sys
child = subprocess.run(
    [sys.executable, "-c", "import greenlet, sys; print(greenlet.__file__); print(sys.path)"],
    capture_output=True, text=True, check=True,
)
lines = child.stdout.splitlines()
print(json.dumps({"greenlet": lines[0], "path": lines[1]}))
"""


def test_child_process_gets_syncless_greenlet(tmp_path):
    write(tmp_path / "script.py", CHILD_REPORT)
    report = last_json(launch("script.py", cwd=tmp_path))
    assert is_ours(report["greenlet"]), report["greenlet"]


def test_child_process_keeps_existing_pythonpath(tmp_path):
    extra = tmp_path / "extra_dir"
    extra.mkdir()
    write(tmp_path / "script.py", CHILD_REPORT)
    report = last_json(launch("script.py", cwd=tmp_path, env=clean_env(PYTHONPATH=str(extra))))
    assert is_ours(report["greenlet"]), report["greenlet"]
    assert str(extra) in report["path"]


def test_multiprocessing_spawn_workers_get_syncless_greenlet(tmp_path):
    # spawn (and forkserver) workers start from sys.executable and copy the
    # parent's sys.path before importing anything.
    write(
        tmp_path / "script.py",
        """
        import json, multiprocessing, os

        def greenlet_file(_):
            import greenlet
            return os.path.realpath(greenlet.__file__)

        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print(json.dumps(pool.map(greenlet_file, [0])))
        """,
    )
    files = last_json(launch("script.py", cwd=tmp_path))
    assert is_ours(files[0]), files


def test_gevent_in_launched_script_runs_on_syncless(tmp_path):
    write(
        tmp_path / "script.py",
        """
        import gevent, greenlet, os
        g = gevent.spawn(lambda: 6 * 7)
        g.join()
        print(g.value, isinstance(g, greenlet.greenlet), greenlet.__file__)
        """,
    )
    proc = launch("script.py", cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    value, is_greenlet, greenlet_file = proc.stdout.split()
    assert value == "42" and is_greenlet == "True"
    assert is_ours(greenlet_file)


# --- install_greenlet() ---------------------------------------------------------------


def test_install_greenlet_after_real_greenlet_raises(tmp_path):
    proc = run(
        ["-c", "import greenlet\nimport syncless\nsyncless.install_greenlet()\n"],
        cwd=tmp_path,
    )
    assert proc.returncode == 1, describe(proc)
    assert "RuntimeError" in proc.stderr
    assert "install_greenlet() must run before greenlet is imported" in proc.stderr
    assert "already imported" in proc.stderr


def test_install_greenlet_after_gevent_raises(tmp_path):
    code = """
import gevent, syncless
try:
    syncless.install_greenlet()
except RuntimeError as exc:
    print("RuntimeError:", exc)
import greenlet
print("still real:", "_greenlet_pkg" not in greenlet.__file__)
"""
    proc = run(["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert "RuntimeError: syncless.install_greenlet() must run before greenlet is imported" in proc.stdout
    assert "still real: True" in proc.stdout


def test_install_greenlet_twice_is_harmless(tmp_path):
    code = """
import sys, syncless
first = syncless.install_greenlet()
second = syncless.install_greenlet()
import greenlet
print(first is second is greenlet)
print(sys.path.count(syncless.greenlet_path()))
print("_greenlet_pkg" in greenlet.__file__)
g = greenlet.greenlet(lambda x: x * 2)
print(g.switch(21))
"""
    proc = run(["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.split() == ["True", "1", "True", "42"]


def test_install_greenlet_provides_c_api_capsule(tmp_path):
    code = """
import syncless
syncless.install_greenlet()
import greenlet, greenlet._greenlet
print(type(greenlet._C_API).__name__, greenlet._C_API is greenlet._greenlet._C_API)
print(greenlet._greenlet.greenlet is greenlet.greenlet)
"""
    proc = run(["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.split() == ["PyCapsule", "True", "True"]


def test_greenlet_path_on_pythonpath_selects_ours_without_install(tmp_path):
    proc = run(
        ["-c", "import greenlet; print(greenlet.__file__)"],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=syncless.greenlet_path()),
    )
    assert proc.returncode == 0, describe(proc)
    assert is_ours(proc.stdout.strip())
