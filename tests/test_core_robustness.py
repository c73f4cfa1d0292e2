"""The core under stress: deep recursion on a coroutine's own C stack, stack
overflow detection, the stack size setting, memory and mapping use of many
coroutines, and the interpreter state (handled exception, contextvars) each
coroutine keeps across switches.

Anything that could crash the interpreter runs in a child process (via
``sys.executable -c``), so a crash is a failed assertion on its exit status
rather than a dead test run.
"""
import contextvars
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import greenlet
from greenlet import getcurrent

pytestmark = pytest.mark.timeout(120)

PRELUDE = "import syncless; syncless.install_greenlet()\n"

# scripts/test_sanitizers.sh preloads ASan into this run and its children:
# ASan reports faults itself (and aborts), and its allocator quarantine and
# shadow memory make RSS measurements meaningless.
SANITIZED = "libasan" in os.environ.get("LD_PRELOAD", "")
not_sanitized = pytest.mark.skipif(SANITIZED, reason="ASan changes fault handling and memory use")


def run_child(code, cwd, env=None, timeout=90, prelude=PRELUDE):
    """Runs `code` in a fresh interpreter on Syncless's greenlet."""
    child_env = dict(os.environ)
    child_env.pop("SYNCLESS_STACK_SIZE", None)
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=str(cwd),
        env=child_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(proc):
    return "exit status %s\n--- stdout\n%s\n--- stderr\n%s" % (proc.returncode, proc.stdout, proc.stderr[-3000:])


# --- deep recursion raises RecursionError ------------------------------------

RECURSION_SETUP = """
import json, pickle, copy, sys
import greenlet

def python_recursion():
    def rec(n):
        return rec(n + 1)
    rec(0)

class RecursiveGetattr:
    def __getattr__(self, name):
        return getattr(self, name)

class RecursiveEq:
    def __eq__(self, other):
        return self == other

def nested_list(depth=100000):
    value = []
    for _ in range(depth):
        value = [value]
    return value

def nested_dict(depth=100000):
    root = node = {}
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root

CASES = {
    "python": python_recursion,
    "getattr": lambda: RecursiveGetattr().missing,
    "eq": lambda: RecursiveEq() == 1,
    "repr-list": lambda: repr(nested_list()),
    "str-list": lambda: str(nested_list()),
    "json-dumps": lambda: json.dumps(nested_dict()),
    "pickle-dumps": lambda: pickle.dumps(nested_list()),
    "deepcopy": lambda: copy.deepcopy(nested_list()),
}

def catch(case):
    try:
        CASES[case]()
    except RecursionError:
        return "RecursionError"
    return "no error"
"""

RECURSION_CASES = ["python", "getattr", "eq", "repr-list", "str-list", "json-dumps", "pickle-dumps", "deepcopy"]


@pytest.mark.parametrize("case", RECURSION_CASES)
def test_deep_recursion_in_greenlet_raises_recursion_error(case, tmp_path):
    proc = run_child(
        RECURSION_SETUP
        + """
result = greenlet.greenlet(catch).switch(%r)
print("result:", result)
print("after:", catch(%r))
"""
        % (case, case),
        tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    assert "result: RecursionError" in proc.stdout, describe(proc)
    # Main (on its own stack) afterwards still behaves.
    assert "after: RecursionError" in proc.stdout, describe(proc)


@pytest.mark.parametrize("case", ["python", "getattr", "repr-list", "json-dumps"])
def test_deep_recursion_in_nested_greenlets_raises_recursion_error(case, tmp_path):
    # A chain of greenlets, each started from inside the previous one, with the
    # recursion in the innermost.
    proc = run_child(
        RECURSION_SETUP
        + """
def chain(n):
    if n == 0:
        return catch(%r)
    return greenlet.greenlet(chain).switch(n - 1)

print("result:", greenlet.greenlet(chain).switch(40))
"""
        % case,
        tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    assert "result: RecursionError" in proc.stdout, describe(proc)


def test_recursion_error_from_greenlet_started_deep_in_recursion(tmp_path):
    # A greenlet started close to the recursion limit inherits the depth, so
    # it hits the limit quickly but cleanly, and the error reaches the parent.
    proc = run_child(
        RECURSION_SETUP
        + """
def deep(n):
    if n == 0:
        return greenlet.greenlet(catch).switch("getattr")
    return deep(n - 1)

print("result:", deep(sys.getrecursionlimit() - 50))
"""
        ,
        tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    assert "result: RecursionError" in proc.stdout, describe(proc)


# --- stack overflow detection ----------------------------------------------

OVERFLOW_CASES = {
    "repr-list": "repr(nested_list())",
    "getattr": "RecursiveGetattr().missing",
    "eq": "RecursiveEq() == 1",
    "json-dumps": "json.dumps(nested_dict())",
}


@pytest.mark.parametrize("case", sorted(OVERFLOW_CASES))
def test_c_stack_overflow_in_greenlet_aborts_with_clear_message(case, tmp_path):
    proc = run_child(
        RECURSION_SETUP
        + """
sys.setrecursionlimit(1000000)
def body():
    %s
    return "survived"
print("result:", greenlet.greenlet(body).switch())
"""
        % OVERFLOW_CASES[case],
        tmp_path,
        env={"SYNCLESS_STACK_SIZE": "64K"},
    )
    assert proc.returncode == -signal.SIGABRT, describe(proc)
    assert "overflowed its C stack" in proc.stderr, describe(proc)
    assert "SYNCLESS_STACK_SIZE" in proc.stderr, describe(proc)
    assert "65536 bytes" in proc.stderr, describe(proc)
    assert "result:" not in proc.stdout


def test_overflow_in_nested_greenlet_with_set_stack_size(tmp_path):
    proc = run_child(
        RECURSION_SETUP
        + """
import syncless
syncless.set_stack_size(128 * 1024)
sys.setrecursionlimit(1000000)
def inner():
    return repr(nested_list())
def outer():
    return greenlet.greenlet(inner).switch()
print("result:", greenlet.greenlet(outer).switch())
""",
        tmp_path,
    )
    assert proc.returncode == -signal.SIGABRT, describe(proc)
    assert "overflowed its C stack (131072 bytes)" in proc.stderr, describe(proc)


@not_sanitized
def test_other_segfaults_keep_their_default_action(tmp_path):
    # A fault outside any coroutine's guard page is not ours to report: it
    # reaches the previous handler (default: killed by SIGSEGV).
    code = """
import ctypes, greenlet
greenlet.greenlet(lambda: None).switch()
greenlet.greenlet(lambda: ctypes.string_at(0)).switch()
"""
    proc = run_child(code, tmp_path)
    assert proc.returncode == -signal.SIGSEGV, describe(proc)
    assert "overflowed" not in proc.stderr

    proc = run_child("import faulthandler; faulthandler.enable()\n" + code, tmp_path)
    assert proc.returncode == -signal.SIGSEGV, describe(proc)
    assert "Fatal Python error: Segmentation fault" in proc.stderr, describe(proc)
    assert "overflowed" not in proc.stderr


@not_sanitized
def test_overflow_handler_does_not_claim_thread_stack_overflow(tmp_path):
    # A plain thread with a small stack overflowing is not a coroutine
    # overflow: it dies of SIGSEGV as it would without Syncless.
    proc = run_child(
        RECURSION_SETUP
        + """
import threading
greenlet.greenlet(lambda: None).switch()
sys.setrecursionlimit(1000000)
value = nested_list()
threading.stack_size(32 * 1024)  # smallest allowed: overflows before 3.12+'s C recursion limit
t = threading.Thread(target=lambda: repr(value))
t.start()
t.join()
print("thread survived")
""",
        tmp_path,
    )
    assert proc.returncode == -signal.SIGSEGV, describe(proc)
    assert "overflowed its C stack" not in proc.stderr


# --- stack size setting -------------------------------------------------------


def test_set_stack_size_bounds_and_timing(tmp_path):
    proc = run_child(
        """
import greenlet
def error(f, *args):
    try:
        f(*args)
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    return "ok"

print("low:", error(syncless.set_stack_size, 64 * 1024 - 1))
print("zero:", error(syncless.set_stack_size, 0))
print("negative:", error(syncless.set_stack_size, -1))
print("high:", error(syncless.set_stack_size, (1 << 30) + 1))
print("type:", error(syncless.set_stack_size, "1M"))
print("min:", error(syncless.set_stack_size, 64 * 1024))
print("set:", error(syncless.set_stack_size, 256 * 1024))
print("stack_size:", syncless.stack_pool_stats()["stack_size"])
unstarted = greenlet.greenlet(lambda: 1)
print("after create:", error(syncless.set_stack_size, 512 * 1024))
print("started:", unstarted.switch())
print("after start:", error(syncless.set_stack_size, 1024 * 1024))
print("final stack_size:", syncless.stack_pool_stats()["stack_size"])
""",
        tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    for key in ("low", "zero", "negative", "high"):
        assert lines[key].startswith("ValueError: "), lines
    assert "65535" in lines["low"]
    assert lines["type"].startswith("TypeError"), lines
    assert lines["min"] == "ok" and lines["set"] == "ok"
    assert lines["stack_size"] == str(256 * 1024)
    assert lines["after create"] == "ok"  # nothing has started yet
    assert lines["started"] == "1"
    assert lines["after start"].startswith("RuntimeError: "), lines
    assert lines["final stack_size"] == str(512 * 1024)


STACK_SIZE_CHILD = """
import greenlet
greenlet.greenlet(lambda: None).switch()
print(syncless.stack_pool_stats()["stack_size"])
"""


@pytest.fixture(scope="module")
def default_stack_size(tmp_path_factory):
    proc = run_child(STACK_SIZE_CHILD, tmp_path_factory.mktemp("default"))
    assert proc.returncode == 0, describe(proc)
    size = int(proc.stdout)
    assert size >= 1024 * 1024 and size % 4096 == 0
    return size


@pytest.mark.parametrize(
    "value, expected",
    [
        ("256K", 256 * 1024),
        ("256k", 256 * 1024),
        ("2M", 2 * 1024 * 1024),
        ("131072", 131072),
        ("64K", 64 * 1024),
        ("1024M", 1024 * 1024 * 1024),
    ],
)
def test_stack_size_from_environment(value, expected, tmp_path):
    proc = run_child(STACK_SIZE_CHILD, tmp_path, env={"SYNCLESS_STACK_SIZE": value})
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.split() == [str(expected)]
    assert "ignoring" not in proc.stderr, describe(proc)


@pytest.mark.parametrize("value", ["32K", "65535", "lots", "2G", "1025M", "8MB", "-1M"])
def test_bad_stack_size_in_environment_is_ignored_with_a_warning(value, default_stack_size, tmp_path):
    proc = run_child(STACK_SIZE_CHILD, tmp_path, env={"SYNCLESS_STACK_SIZE": value})
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.split() == [str(default_stack_size)]
    assert "ignoring SYNCLESS_STACK_SIZE=%s" % value in proc.stderr, describe(proc)


@pytest.mark.parametrize("size, survives", [("64K", False), ("8M", True)])
def test_stack_size_decides_how_deep_c_recursion_may_go(size, survives, tmp_path):
    # Within every CPython's own limits (1200 levels), yet too deep for 64K.
    proc = run_child(
        RECURSION_SETUP
        + """
sys.setrecursionlimit(20000)
print("len:", greenlet.greenlet(lambda: len(repr(nested_list(1200)))).switch())
""",
        tmp_path,
        env={"SYNCLESS_STACK_SIZE": size},
    )
    if survives:
        assert proc.returncode == 0, describe(proc)
        assert "len: 2402" in proc.stdout, describe(proc)
    else:
        assert proc.returncode == -signal.SIGABRT, describe(proc)
        assert "overflowed its C stack" in proc.stderr, describe(proc)


# --- memory and mappings --------------------------------------------------------


@pytest.mark.timeout(120)
def test_million_create_finish_cycles_keep_memory_and_pool_flat(tmp_path):
    proc = run_child(
        """
import gc, sys, time, psutil, greenlet
proc = psutil.Process()

def work(x):
    return x + 1

def cycles(n):
    G = greenlet.greenlet
    total = 0
    for i in range(n):
        total += G(work).switch(i)
    return total

def suspend_and_kill(n):
    # Started, suspended, then dropped: each one is killed with GreenletExit.
    G = greenlet.greenlet
    for i in range(n):
        g = G(lambda: greenlet.getcurrent().parent.switch())
        g.switch()
        del g

def measure(label, fn, *args):
    fn(*args)  # warm-up: pool, allocator arenas, caches
    gc.collect()
    stats0, rss0, blocks0 = syncless.stack_pool_stats(), proc.memory_info().rss, sys.getallocatedblocks()
    t0 = time.monotonic()
    fn(*[a * 50 for a in args])
    elapsed = time.monotonic() - t0
    gc.collect()
    stats1 = syncless.stack_pool_stats()
    print(label, "growth_mb:", (proc.memory_info().rss - rss0) / 1e6)
    print(label, "blocks:", sys.getallocatedblocks() - blocks0)
    print(label, "elapsed:", elapsed)
    print(label, "in_use:", stats0["in_use"], stats1["in_use"])
    print(label, "regions:", stats0["regions"], stats1["regions"])
    print(label, "hot:", stats1["hot"])

measure("finish", cycles, 20000)      # 1,000,000 timed
measure("kill", suspend_and_kill, 4000)  # 200,000 timed
""",
        tmp_path,
        timeout=110,
    )
    assert proc.returncode == 0, describe(proc)
    values = {}
    for line in proc.stdout.splitlines():
        label, key, rest = line.split(" ", 2)
        values[label, key.rstrip(":")] = rest.split()
    for label in ("finish", "kill"):
        if not SANITIZED:
            assert float(values[label, "growth_mb"][0]) < 20, describe(proc)
        assert int(values[label, "blocks"][0]) < 1000, describe(proc)
        assert float(values[label, "elapsed"][0]) < 20, describe(proc)
        assert values[label, "in_use"] == ["0", "0"], describe(proc)
        start_regions, end_regions = map(int, values[label, "regions"])
        assert end_regions == start_regions and end_regions <= 2, describe(proc)
        assert int(values[label, "hot"][0]) <= 256


@pytest.mark.timeout(180)
def test_hundred_thousand_suspended_greenlets(tmp_path):
    # vm.max_map_count defaults to 65530: one mapping per stack (or guard
    # pages that split mappings) could not get here.
    proc = run_child(
        """
import gc, psutil, greenlet
proc = psutil.Process()
N = 100000
start_rss = proc.memory_info().rss

def body(i):
    got = greenlet.getcurrent().parent.switch(i)
    return got * 2

gs = [greenlet.greenlet(body) for _ in range(N)]
assert [g.switch(i) for i, g in enumerate(gs)] == list(range(N))
stats = syncless.stack_pool_stats()
with open("/proc/self/maps") as maps:
    print("maps:", sum(1 for _ in maps))
print("in_use_suspended:", stats["in_use"])
print("all_suspended:", all(g and not g.dead for g in gs))
assert [g.switch(i) for i, g in enumerate(gs)] == [2 * i for i in range(N)]
print("all_dead:", all(g.dead for g in gs))
del gs
gc.collect()
print("in_use_after:", syncless.stack_pool_stats()["in_use"])
with open("/proc/self/maps") as maps:
    print("maps_after:", sum(1 for _ in maps))
print("rss_growth_mb_after:", (proc.memory_info().rss - start_rss) / 1e6)
""",
        tmp_path,
        timeout=170,
    )
    assert proc.returncode == 0, describe(proc)
    values = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert int(values["maps"]) < 5000, describe(proc)
    assert int(values["maps_after"]) < 5000, describe(proc)
    assert int(values["in_use_suspended"]) == 100000
    assert values["all_suspended"] == "True"
    assert values["all_dead"] == "True"
    assert int(values["in_use_after"]) == 0
    if not SANITIZED:
        # The stacks' pages were given back (while suspended they are ~9 KB each).
        assert float(values["rss_growth_mb_after"]) < 200, describe(proc)


@not_sanitized
def test_deep_stacks_give_their_pages_back(tmp_path):
    proc = run_child(
        """
import gc, psutil, greenlet
proc = psutil.Process()
nested = []
for _ in range(800):
    nested = [nested]

def body():
    repr(nested)  # touches a deep part of this coroutine's C stack
    greenlet.getcurrent().parent.switch()

for _ in range(300):  # warm-up
    g = greenlet.greenlet(body); g.switch(); g.switch()
gc.collect()
start = proc.memory_info().rss
gs = [greenlet.greenlet(body) for _ in range(200)]
for g in gs:
    g.switch()
peak = proc.memory_info().rss
for g in gs:
    g.switch()
del gs, g
gc.collect()
end = proc.memory_info().rss
print("peak_mb:", (peak - start) / 1e6)
print("end_mb:", (end - start) / 1e6)
""",
        tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    values = {k: float(v) for k, v in (line.split(": ") for line in proc.stdout.splitlines())}
    # The check only means something if the deep stacks cost memory at all.
    assert values["peak_mb"] > 10, describe(proc)
    assert values["end_mb"] < values["peak_mb"] / 3, describe(proc)


# --- per-coroutine interpreter state survives switches ---------------------------


def test_handled_exception_is_per_greenlet():
    main = getcurrent()
    log = []

    def handler(name, exc_type):
        try:
            raise exc_type(name)
        except exc_type:
            log.append((name, "in except", sys.exc_info()[1].args))
            main.switch()
            log.append((name, "resumed", sys.exc_info()[1].args))
            main.switch()
            log.append((name, "resumed again", type(sys.exc_info()[1]).__name__))
        log.append((name, "after except", sys.exc_info()))

    a = greenlet.greenlet(handler)
    b = greenlet.greenlet(handler)
    assert sys.exc_info() == (None, None, None)
    a.switch("a", KeyError)
    assert sys.exc_info() == (None, None, None)
    try:
        raise OSError("main's")
    except OSError:
        b.switch("b", ValueError)
        assert sys.exc_info()[1].args == ("main's",)
        a.switch()
        assert sys.exc_info()[1].args == ("main's",)
    assert sys.exc_info() == (None, None, None)
    b.switch()
    a.switch()
    b.switch()
    assert log == [
        ("a", "in except", ("a",)),
        ("b", "in except", ("b",)),
        ("a", "resumed", ("a",)),
        ("b", "resumed", ("b",)),
        ("a", "resumed again", "KeyError"),
        ("a", "after except", (None, None, None)),
        ("b", "resumed again", "ValueError"),
        ("b", "after except", (None, None, None)),
    ]


def test_new_greenlet_starts_without_the_starters_handled_exception():
    def body():
        before = sys.exc_info()
        try:
            raise ValueError("own")
        except ValueError:
            inside = sys.exc_info()[1].args
        return before, inside, sys.exc_info()

    try:
        raise KeyError("starter's")
    except KeyError:
        before, inside, after = greenlet.greenlet(body).switch()
        assert sys.exc_info()[1].args == ("starter's",)
    assert before == (None, None, None)
    assert inside == ("own",)
    assert after == (None, None, None)


def test_bare_raise_and_exception_context_after_switch():
    main = getcurrent()

    contexts = []

    def body():
        try:
            raise KeyError("own")
        except KeyError:
            main.switch()
            try:
                raise ValueError("new")
            except ValueError as exc:
                contexts.append(exc.__context__)
            main.switch()
            raise  # re-raises this greenlet's KeyError

    g = greenlet.greenlet(body)
    g.switch()
    try:
        raise OSError("main's own")
    except OSError:
        g.switch()
    with pytest.raises(KeyError, match="own"):
        g.switch()
    assert g.dead
    assert len(contexts) == 1
    assert type(contexts[0]) is KeyError and contexts[0].args == ("own",)


def test_exception_context_is_not_taken_from_another_greenlet():
    main = getcurrent()
    seen = []

    def body():
        main.switch()
        try:
            raise ValueError("in greenlet")
        except ValueError as exc:
            seen.append(exc.__context__)

    g = greenlet.greenlet(body)
    g.switch()
    try:
        raise OSError("main's")
    except OSError:
        g.switch()
    assert seen == [None]


VAR = contextvars.ContextVar("robustness_var", default="unset")


def test_context_run_survives_switching_out_and_back():
    main = getcurrent()
    ctx = contextvars.Context()
    ctx.run(VAR.set, "in ctx")
    log = []

    def body():
        def inside():
            log.append(VAR.get())
            main.switch()
            log.append(VAR.get())
            VAR.set("changed in ctx")
            main.switch()
            log.append(VAR.get())

        ctx.run(inside)
        log.append(("after run", VAR.get()))

    token = VAR.set("main")
    try:
        g = greenlet.greenlet(body)
        g.switch()
        assert VAR.get() == "main"
        g.switch()
        assert VAR.get() == "main"
        assert ctx[VAR] == "changed in ctx"
        g.switch()
        assert g.dead
        assert log == ["in ctx", "in ctx", "changed in ctx", ("after run", "unset")]
        assert VAR.get() == "main"
    finally:
        VAR.reset(token)


def test_context_vars_across_many_interleaved_greenlets():
    main = getcurrent()

    def body(i):
        VAR.set(i)
        for _ in range(5):
            main.switch()
            if VAR.get() != i:
                return ("wrong value", i, VAR.get())
        return ("ok", i)

    gs = [greenlet.greenlet(body) for _ in range(200)]
    for i, g in enumerate(gs):
        g.switch(i)
    results = []
    for _ in range(5):
        for g in reversed(gs):
            r = g.switch()
            if r is not None and r != ():
                results.append(r)
    assert sorted(results) == [("ok", i) for i in range(200)]
    assert VAR.get() == "unset"


def test_frames_and_tracebacks_survive_switches():
    main = getcurrent()

    def level3():
        main.switch("suspended deep")
        raise ZeroDivisionError("deep")

    def level2():
        return level3()

    def level1():
        return level2()

    g = greenlet.greenlet(level1)
    assert g.switch() == "suspended deep"

    def unrelated_main_work(n):
        return 0 if n == 0 else unrelated_main_work(n - 1)

    unrelated_main_work(200)
    with pytest.raises(ZeroDivisionError) as info:
        g.switch()
    names = [entry.name for entry in info.traceback]
    assert names[-3:] == ["level1", "level2", "level3"]


@pytest.mark.parametrize("face", ["greenlet", "tasklet"])
def test_interpreter_exit_while_a_daemon_thread_runs_a_coroutine(face):
    # CPython ends a daemon thread that takes the GIL during finalization with
    # pthread_exit(); on a coroutine's stack that unwind must not reach a
    # noexcept frame (std::terminate): the thread stops there instead.
    start = {
        "greenlet": "greenlet.greenlet(spin).switch()",
        "tasklet": "stackless.tasklet(spin)(); stackless.run()",
    }[face]
    code = textwrap.dedent("""\
        import threading, time, syncless, greenlet
        stackless = syncless.install_stackless()
        def spin():
            while True:
                pass
        def daemon():
            %s
        for _ in range(2):
            threading.Thread(target=daemon, daemon=True).start()
        time.sleep(0.05)
        print("exiting")
    """ % start)
    for _ in range(5):
        proc = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True,
                              text=True, timeout=60)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "exiting\n", "")
