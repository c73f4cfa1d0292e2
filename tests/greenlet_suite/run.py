#!/usr/bin/env python3
"""Run greenlet's own test suite (pinned sdist) against syncless' greenlet.

Usage::

    python3 tests/greenlet_suite/run.py            # against OUR greenlet
    python3 tests/greenlet_suite/run.py --real     # against the real, installed greenlet
    python3 tests/greenlet_suite/run.py test_throw test_greenlet.TestRepr   # a subset
    python3 tests/greenlet_suite/run.py --isolate  # one process per test module:
                                                   # a crash fails only that module
    python3 tests/greenlet_suite/run.py --list     # what would run

Steps:

1. Fetch the greenlet sdist (``pip download --no-deps --no-binary :all:``,
   pinned version and sha256) into a cache directory (``$SYNCLESS_CACHE`` or
   ``<repo>/build/cache``), reusing it when present.
2. Extract ``src/greenlet/tests`` into a fresh work directory as
   ``<work>/greenlet/tests``, and put next to it (``<work>/greenlet/``) the
   headers the test extensions include relatively: ``greenlet.h`` from the
   greenlet under test (ours: ``syncless.get_include()``) and
   ``greenlet_compiler_compat.hpp`` from the sdist (compiler macros only).
3. Compile ``_test_extension.c`` and ``_test_extension_cpp.cpp`` into that
   tests directory with the compiler/flags from ``sysconfig``.
4. ``syncless.install_greenlet()`` (not with ``--real``), ``import greenlet``,
   then prepend ``<work>/greenlet`` to ``greenlet.__path__`` so that
   ``greenlet.tests`` is the extracted suite.  Child processes started by the
   tests get ``PYTHONPATH`` = ``syncless.greenlet_path()`` first (so ours is
   imported without install_greenlet), plus a hook directory whose
   ``sitecustomize`` maps ``greenlet.tests`` to the extracted suite (needed by
   ``fail_cpp_exception.py``) without importing greenlet early.
5. Load every ``greenlet.tests.test_*`` module, drop the ids listed in
   ``excluded.txt`` (by id; a stale entry that matches no test is an error),
   run the rest with unittest.

Exit status: 0 when everything ran passed, 1 otherwise (including set-up
errors and stale exclusion entries).

``excluded.txt`` format, one entry per line::

    ID [if CONDITION] # reason

ID is relative to ``greenlet.tests`` and may name a module, a class or a
single test.  CONDITION (optional) is a Python expression over ``py``
(``sys.version_info[:2]``), ``freethreaded``, ``real`` (``--real`` run),
``ours``, ``platform`` (``sys.platform``) and ``sanitized`` (AddressSanitizer
preloaded, as by scripts/test_sanitizers.sh); the entry only excludes when
it is true (its existence is checked regardless).  Blank lines and lines
starting with ``#`` are ignored.
"""
from __future__ import annotations

import argparse
import faulthandler
import hashlib
import importlib
import importlib.util
import os
import platform
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import time
import traceback
import unittest
from pathlib import Path

GREENLET_VERSION = "3.5.6"
SDIST_NAME = f"greenlet-{GREENLET_VERSION}.tar.gz"
# sha256 of greenlet-3.5.6.tar.gz as published on PyPI.
SDIST_SHA256 = "8e67c43bdfc88d5fee6db0d3e40175b362fc95fb85f0412d233b9b203c53a575"
SDIST_PREFIX = f"greenlet-{GREENLET_VERSION}/src/greenlet/"

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
EXCLUDED_FILE = HERE / "excluded.txt"
TESTS_PKG = "greenlet.tests"
FREETHREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


class SetupError(Exception):
    """Anything that prevents running the suite at all."""


def log(*args):
    print("[greenlet-suite]", *args, flush=True)


# --------------------------------------------------------------------------
# sdist

def cache_dir() -> Path:
    base = os.environ.get("SYNCLESS_CACHE")
    root = Path(base) if base else REPO_ROOT / "build" / "cache"
    return root / "greenlet-sdist"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist() -> Path:
    cdir = cache_dir()
    sdist = cdir / SDIST_NAME
    if sdist.is_file():
        if sha256_of(sdist) == SDIST_SHA256:
            log("using cached sdist", sdist)
            return sdist
        log("cached sdist has a wrong sha256; downloading it again:", sdist)
        sdist.unlink()
    cdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
           "--no-binary", ":all:", f"greenlet=={GREENLET_VERSION}",
           "-d", str(cdir)]
    log("fetching sdist:", shlex.join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if proc.returncode != 0 or not sdist.is_file():
        raise SetupError(
            f"could not download {SDIST_NAME} (pip exit {proc.returncode}); "
            f"put it in {cdir} by hand to run offline.\n{proc.stdout}")
    digest = sha256_of(sdist)
    if digest != SDIST_SHA256:
        raise SetupError(f"{sdist}: sha256 {digest} != pinned {SDIST_SHA256}")
    return sdist


def extract(sdist: Path, work: Path) -> Path:
    """Extract src/greenlet/tests (+ the two public headers) to <work>/greenlet/.

    Returns the directory holding the sdist's headers (<work>/sdist-headers).
    """
    pkg = work / "greenlet"
    tests = pkg / "tests"
    sdist_headers = work / "sdist-headers"
    tests.mkdir(parents=True)
    sdist_headers.mkdir()
    wanted_headers = {"greenlet.h", "greenlet_compiler_compat.hpp"}
    n = 0
    with tarfile.open(sdist) as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(SDIST_PREFIX):
                continue
            rel = member.name[len(SDIST_PREFIX):]
            parts = rel.split("/")
            if ".." in parts:
                continue
            if parts[0] == "tests":
                dest = tests.joinpath(*parts[1:])
            elif len(parts) == 1 and rel in wanted_headers:
                dest = sdist_headers / rel
            else:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            n += 1
    if not (tests / "__init__.py").is_file():
        raise SetupError(f"{sdist} has no {SDIST_PREFIX}tests/__init__.py")
    log(f"extracted {n} files to {pkg}")
    return sdist_headers


# --------------------------------------------------------------------------
# compiling the test extensions

def _split(var: str) -> list[str]:
    return shlex.split(sysconfig.get_config_var(var) or "")


def compile_extension(src: Path, out_dir: Path, include_dirs: list[Path], cpp: bool) -> Path:
    ext_suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = out_dir / (src.name.split(".")[0] + ext_suffix)
    if cpp:
        compiler = shlex.split(os.environ.get("CXX") or "") or _split("CXX") or ["c++"]
    else:
        compiler = shlex.split(os.environ.get("CC") or "") or _split("CC") or ["cc"]
    # LDSHARED is "<cc> <link flags>", e.g. "gcc -shared ..." on Linux or
    # "clang -bundle -undefined dynamic_lookup ..." on macOS: keep its flags.
    ldflags = _split("LDSHARED")[1:] or ["-shared"]
    cflags = ["-O1", "-g0", "-Wall"] + (_split("CCSHARED") or ["-fPIC"])
    if cpp and sys.platform == "darwin":
        cflags.append("-std=c++11")
    paths = sysconfig.get_paths()
    incs = [str(p) for p in include_dirs] + [paths["include"]]
    if paths.get("platinclude") and paths["platinclude"] != paths["include"]:
        incs.append(paths["platinclude"])
    cmd = (compiler + ldflags + cflags + [f"-I{i}" for i in incs]
           + [str(src), "-o", str(out)])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"compiling {src.name} failed:\n{shlex.join(cmd)}\n{proc.stdout}")
    log("built", out.name)
    return out


# --------------------------------------------------------------------------
# environment for child processes

SITECUSTOMIZE = '''\
# Generated by tests/greenlet_suite/run.py: makes ``greenlet.tests`` resolve to
# the extracted greenlet test suite in child processes, without importing
# greenlet at start-up.  Chains to any other sitecustomize on sys.path.
import importlib.abc as _abc
import importlib.machinery as _machinery
import importlib.util as _util
import os as _os
import sys as _sys

_TESTS_DIR = {tests_dir!r}


class _GreenletTestsFinder(_abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "greenlet.tests":
            return None
        return _util.spec_from_file_location(
            fullname, _os.path.join(_TESTS_DIR, "__init__.py"),
            submodule_search_locations=[_TESTS_DIR])


_sys.meta_path.insert(0, _GreenletTestsFinder())


def _chain():
    here = _os.path.dirname(_os.path.abspath(__file__))
    rest = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != here]
    spec = _machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    mod = _util.module_from_spec(spec)
    spec.loader.exec_module(mod)


_chain()
'''


def make_hook_dir(work: Path, tests_dir: Path) -> Path:
    hook = work / "pyhook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE.format(tests_dir=str(tests_dir)))
    return hook


def set_child_pythonpath(first: list[str]) -> str:
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    new = []
    for p in first + old:
        if p not in new:
            new.append(p)
    os.environ["PYTHONPATH"] = os.pathsep.join(new)
    return os.environ["PYTHONPATH"]


def check_child_imports(expected_greenlet: str, tests_dir: Path) -> None:
    code = ("import greenlet, importlib.util;"
            "print(greenlet.__file__);"
            "print(importlib.util.find_spec('greenlet.tests').origin)")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    want_tests = str(tests_dir / "__init__.py")
    if (proc.returncode != 0 or len(lines) < 2
            or os.path.realpath(lines[-2]) != os.path.realpath(expected_greenlet)
            or os.path.realpath(lines[-1]) != os.path.realpath(want_tests)):
        raise SetupError(
            "a child process does not import the expected greenlet / greenlet.tests\n"
            f"  expected: {expected_greenlet}\n            {want_tests}\n"
            f"  PYTHONPATH={os.environ.get('PYTHONPATH')}\n  child output:\n{proc.stdout}")


# --------------------------------------------------------------------------
# exclusion list

class Exclusion:
    def __init__(self, lineno: int, test_id: str, condition: str | None, reason: str):
        self.lineno = lineno
        self.test_id = test_id
        self.condition = condition
        self.reason = reason
        self.active = True
        self.matched = 0

    def matches(self, rel_id: str) -> bool:
        return rel_id == self.test_id or rel_id.startswith(self.test_id + ".")


def parse_exclusions(path: Path, real: bool) -> list[Exclusion]:
    env = {
        "__builtins__": {},
        "py": tuple(sys.version_info[:2]),
        "freethreaded": FREETHREADED,
        "real": real,
        "ours": not real,
        "platform": sys.platform,
        "sanitized": "libasan" in os.environ.get("LD_PRELOAD", ""),
        "True": True, "False": False,
    }
    result = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        spec, sep, reason = line.partition(" # ")
        if not sep or not reason.strip():
            raise SetupError(f"{path.name}:{lineno}: missing ' # reason': {raw!r}")
        spec = spec.strip()
        test_id, _, condition = spec.partition(" if ")
        test_id = test_id.strip()
        if not test_id or " " in test_id:
            raise SetupError(f"{path.name}:{lineno}: bad test id: {raw!r}")
        excl = Exclusion(lineno, test_id, condition.strip() or None, reason.strip())
        if excl.condition:
            try:
                excl.active = bool(eval(excl.condition, env))  # pylint:disable=eval-used
            except Exception as ex:  # pylint:disable=broad-except
                raise SetupError(f"{path.name}:{lineno}: bad condition "
                                 f"{excl.condition!r}: {ex}") from ex
        result.append(excl)
    return result


# --------------------------------------------------------------------------
# loading and running

def iter_tests(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iter_tests(item)
        else:
            yield item


class _ImportFailure(unittest.TestCase):
    """Stands for a test module that could not be imported."""

    def __init__(self, module_name, tb):
        super().__init__("runTest")
        self._module_name = module_name
        self._tb = tb

    def id(self):
        return self._module_name

    def __str__(self):
        return f"import {self._module_name}"

    def runTest(self):
        raise ImportError(f"Failed to import {self._module_name}:\n{self._tb}")


def load_all(tests_dir: Path):
    loader = unittest.TestLoader()
    tests, failed_modules = [], set()
    for path in sorted(tests_dir.glob("test_*.py")):
        name = f"{TESTS_PKG}.{path.stem}"
        try:
            module = importlib.import_module(name)
        except Exception:  # pylint:disable=broad-except
            tests.append(_ImportFailure(name, traceback.format_exc()))
            failed_modules.add(path.stem)
            continue
        tests.extend(iter_tests(loader.loadTestsFromModule(module)))
    return tests, failed_modules


def rel_id(test) -> str:
    tid = test.id()
    prefix = TESTS_PKG + "."
    return tid[len(prefix):] if tid.startswith(prefix) else tid


def select(tests, exclusions, failed_modules, patterns):
    """Returns (kept, excluded [(test, exclusion)], stale [exclusion], unmatched patterns)."""
    kept, excluded = [], []
    for test in tests:
        rid = rel_id(test)
        hit = None
        for excl in exclusions:
            if excl.matches(rid):
                excl.matched += 1
                if excl.active and hit is None:
                    hit = excl
        if isinstance(test, _ImportFailure):
            hit = None  # an import failure is always reported
        if hit is not None:
            excluded.append((test, hit))
        else:
            kept.append(test)
    stale = [e for e in exclusions
             if not e.matched and e.test_id.split(".")[0] not in failed_modules]
    unmatched = []
    if patterns:
        selected = []
        for pat in patterns:
            got = [t for t in kept
                   if rel_id(t) == pat or rel_id(t).startswith(pat + ".")
                   or (isinstance(t, _ImportFailure) and pat.startswith(rel_id(t)))]
            if not got:
                unmatched.append(pat)
            selected.extend(t for t in got if t not in selected)
        kept = selected
    return kept, excluded, stale, unmatched


class _CountingResult(unittest.TextTestResult):
    """Records passing test ids (``testsRun`` misses decorator-skipped tests on 3.12.0/3.12.1)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed_ids = set()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed_ids.add(test.id())


def summarize(result) -> tuple[int, int, int]:
    def case_id(t):
        return getattr(t, "test_case", t).id()
    bad = {case_id(t) for t, _ in result.failures + result.errors}
    bad |= {case_id(t) for t in result.unexpectedSuccesses}
    return len(result.passed_ids - bad), len(bad), len(result.skipped)


# --------------------------------------------------------------------------

def prepare(args) -> tuple[Path, str]:
    """Sets up greenlet + greenlet.tests; returns (tests_dir, greenlet_file)."""
    for mod in ("psutil", "objgraph"):
        if importlib.util.find_spec(mod) is None:
            raise SetupError(f"greenlet's tests need {mod}: "
                             f"{sys.executable} -m pip install psutil objgraph")

    mode = "real" if args.real else "ours"
    tag = sys.implementation.cache_tag + ("t" if FREETHREADED else "")
    work = Path(args.workdir) if args.workdir else REPO_ROOT / "build" / "greenlet_suite" / f"{mode}-{tag}"
    work = work.resolve()
    args.workdir = str(work)
    if args.isolated_child:
        # --isolate: the parent has extracted and compiled everything already.
        sdist_headers = work / "sdist-headers"
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        sdist_headers = extract(fetch_sdist(), work)
    pkg_dir = work / "greenlet"
    tests_dir = pkg_dir / "tests"

    child_path = []
    if args.real:
        if "greenlet" in sys.modules:
            raise SetupError("greenlet was imported before --real set-up")
        import greenlet  # pylint:disable=import-outside-toplevel
        installed_h = Path(greenlet.__file__).parent / "greenlet.h"
        header = installed_h if installed_h.is_file() else sdist_headers / "greenlet.h"
        include_dir = header.parent
    else:
        try:
            import syncless  # pylint:disable=import-outside-toplevel
        except ImportError as ex:
            if not (REPO_ROOT / "syncless" / "__init__.py").is_file():
                raise SetupError(f"cannot import syncless (build/install it first): {ex}") from ex
            # Not installed: fall back to the checkout (in-place build).
            sys.path.insert(0, str(REPO_ROOT))
            try:
                import syncless  # pylint:disable=import-outside-toplevel
            except ImportError as ex2:
                raise SetupError(f"cannot import syncless, installed or from {REPO_ROOT} "
                                 f"(build it first): {ex2}") from ex2
            if not args.isolated_child:
                log("syncless is not installed; using the checkout:", syncless.__file__)
        gpath = os.path.abspath(syncless.greenlet_path())
        include_dir = Path(syncless.get_include())
        header = include_dir / "greenlet.h"
        syncless.install_greenlet()
        import greenlet  # pylint:disable=import-outside-toplevel
        gfile = os.path.realpath(greenlet.__file__)
        if not gfile.startswith(os.path.realpath(gpath) + os.sep):
            raise SetupError(f"after install_greenlet(), greenlet comes from {gfile}, "
                             f"not from syncless.greenlet_path()={gpath}")
        child_path.append(gpath)
        # The children also need syncless itself when it isn't installed in
        # a site directory (e.g. it is only importable via PYTHONPATH here).
        sdir = os.path.dirname(os.path.dirname(os.path.abspath(syncless.__file__)))
        site_dirs = {os.path.realpath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
        if os.path.realpath(sdir) not in site_dirs:
            child_path.append(sdir)
    if not header.is_file():
        raise SetupError(f"no greenlet.h at {header}")

    if not args.isolated_child:
        # The test sources include "../greenlet.h" and "../greenlet_compiler_compat.hpp".
        shutil.copyfile(header, pkg_dir / "greenlet.h")
        shutil.copyfile(sdist_headers / "greenlet_compiler_compat.hpp",
                        pkg_dir / "greenlet_compiler_compat.hpp")
        log(f"greenlet under test: {greenlet.__file__} "
            f"(version {getattr(greenlet, '__version__', '?')})")
        log(f"greenlet.h: {header}")
        compile_extension(tests_dir / "_test_extension.c", tests_dir, [include_dir], cpp=False)
        compile_extension(tests_dir / "_test_extension_cpp.cpp", tests_dir, [include_dir], cpp=True)

    # ``greenlet.tests`` := the extracted suite.  Prepended, not appended: the
    # real greenlet wheel ships its own greenlet/tests, which must not win.
    greenlet.__path__.insert(0, str(pkg_dir))
    sys.modules.pop(TESTS_PKG, None)
    if args.no_leakcheck:
        os.environ["GREENLET_SKIP_LEAKCHECKS"] = "1"
    hook = work / "pyhook" if args.isolated_child else make_hook_dir(work, tests_dir)
    pythonpath = set_child_pythonpath(child_path + [str(hook)])
    importlib.invalidate_caches()
    import greenlet.tests  # pylint:disable=import-outside-toplevel,redefined-outer-name
    if os.path.realpath(greenlet.tests.__file__) != os.path.realpath(tests_dir / "__init__.py"):
        raise SetupError(f"greenlet.tests imported from {greenlet.tests.__file__}, "
                         f"expected {tests_dir}")
    if not args.isolated_child:
        log("child PYTHONPATH:", pythonpath)
        check_child_imports(greenlet.__file__, tests_dir)
    return tests_dir, greenlet.__file__


SUMMARY_PREFIX = "greenlet_suite: "


def run_isolated(args, kept, excluded_file: Path, deadline: float):
    """Runs each module's selected tests in its own process (prepared work dir).

    Returns (passed, failed, skipped, crashed module names)."""
    by_module: dict[str, list[str]] = {}
    for test in kept:
        rid = rel_id(test)
        by_module.setdefault(rid.split(".")[0], []).append(rid)
    passed = failed = skipped = 0
    crashed = []
    for module, ids in by_module.items():
        remaining = deadline - time.monotonic() if deadline else 0
        cmd = [sys.executable, str(Path(__file__).resolve()), "--isolated-child",
               "--workdir", args.workdir, "--excluded", str(excluded_file),
               "--timeout", str(max(30, int(remaining)) if deadline else 0)]
        cmd += ["--real"] * args.real + ["-q"] * args.quiet
        cmd += ["--no-leakcheck"] * args.no_leakcheck + ["-f"] * args.failfast
        cmd += ids
        log(f"--- {module}: {len(ids)} test(s) in a separate process")
        counts = None
        with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              bufsize=1) as proc:
            for line in proc.stdout:
                sys.stdout.write(line)
                if line.startswith(SUMMARY_PREFIX) and " passed, " in line:
                    nums = [int(w) for w in line[len(SUMMARY_PREFIX):].replace(",", " ").split()
                            if w.isdigit()]
                    counts = nums[:3] if len(nums) >= 3 else None
            rc = proc.wait()
        sys.stdout.flush()
        if counts is None:
            crashed.append(module)
            log(f"--- {module}: CRASHED (exit status {rc}) before reporting; "
                f"its {len(ids)} test(s) count as failed")
            failed += len(ids)
            continue
        passed, failed, skipped = passed + counts[0], failed + counts[1], skipped + counts[2]
        if rc != 0 and counts[1] == 0:
            failed += 1
            log(f"--- {module}: exit status {rc} with no failed test; counted as one failure")
        if args.failfast and (rc != 0):
            break
    return passed, failed, skipped, crashed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true",
                        help="test the real installed greenlet (validates this runner)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="dots instead of one line per test")
    parser.add_argument("-f", "--failfast", action="store_true")
    parser.add_argument("--no-leakcheck", action="store_true",
                        help="set GREENLET_SKIP_LEAKCHECKS (skips the refcount-growth reruns)")
    parser.add_argument("--timeout", type=float, default=850.0,
                        help="dump all stacks and exit 1 after this many seconds (0: never)")
    parser.add_argument("--list", action="store_true",
                        help="print the ids that would run (and the excluded ones), run nothing")
    parser.add_argument("--isolate", action="store_true",
                        help="run each test module in its own process, so a crash (abort, "
                             "segfault) fails that module only and the others still report")
    parser.add_argument("--isolated-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--excluded", default=str(EXCLUDED_FILE),
                        help="exclusion list (default: excluded.txt next to this script)")
    parser.add_argument("--workdir", help="work directory (default build/greenlet_suite/<mode>-<tag>)")
    parser.add_argument("tests", nargs="*",
                        help="run only these ids/prefixes, relative to greenlet.tests")
    args = parser.parse_args(argv)

    faulthandler.enable()
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else 0.0
    if args.timeout > 0:
        faulthandler.dump_traceback_later(args.timeout, exit=True)
    if args.isolated_child:
        return run_child(args)
    log(f"python {platform.python_version()} ({sys.executable}); "
        f"mode={'real greenlet' if args.real else 'syncless greenlet'}; "
        f"greenlet suite {GREENLET_VERSION}")
    try:
        excluded_file = Path(args.excluded)
        exclusions = parse_exclusions(excluded_file, args.real)
        tests_dir, _ = prepare(args)
    except SetupError as ex:
        log("SETUP ERROR:", ex)
        return 1

    tests, failed_modules = load_all(tests_dir)
    kept, excluded, stale, unmatched = select(tests, exclusions, failed_modules, args.tests)

    log(f"excluded {len(excluded)} test(s) listed in {excluded_file}:")
    for test, excl in excluded:
        log(f"  - {rel_id(test)}  ({excl.reason})")
    inactive = [e for e in exclusions if not e.active]
    if inactive:
        log(f"{len(inactive)} entr{'y' if len(inactive) == 1 else 'ies'} not applying here:")
        for excl in inactive:
            log(f"  - {excl.test_id} if {excl.condition}")
    for excl in stale:
        log(f"STALE EXCLUSION ({excluded_file.name}:{excl.lineno}): "
            f"{excl.test_id!r} matches no test")
    for pat in unmatched:
        log(f"NO TEST MATCHES {pat!r}")
    if failed_modules:
        log("modules that failed to import:", ", ".join(sorted(failed_modules)))

    if args.list:
        for test in kept:
            print(rel_id(test))
        return 0 if not (stale or unmatched or failed_modules) else 1

    if args.isolate:
        passed, failed, skipped, crashed = run_isolated(args, kept, excluded_file, deadline)
        faulthandler.cancel_dump_traceback_later()
        if crashed:
            log("CRASHED modules:", ", ".join(crashed))
        ok = failed == 0 and not crashed and not stale and not unmatched
    else:
        result = run_tests(args, kept)
        faulthandler.cancel_dump_traceback_later()
        passed, failed, skipped = summarize(result)
        ok = result.wasSuccessful() and not stale and not unmatched
    if stale:
        log(f"FAILED: {len(stale)} stale entr{'y' if len(stale) == 1 else 'ies'} in {excluded_file}")
    print(f"{SUMMARY_PREFIX}{len(excluded)} excluded by {excluded_file.name}", flush=True)
    print(f"{SUMMARY_PREFIX}{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if ok else 1


def run_tests(args, tests):
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1 if args.quiet else 2,
                                     failfast=args.failfast, resultclass=_CountingResult)
    result = runner.run(unittest.TestSuite(tests))
    sys.stdout.flush()
    return result


def run_child(args) -> int:
    """--isolate worker: the given ids only, in a work dir the parent prepared."""
    try:
        exclusions = parse_exclusions(Path(args.excluded), args.real)
        tests_dir, _ = prepare(args)
    except SetupError as ex:
        log("SETUP ERROR:", ex)
        return 1
    tests, failed_modules = load_all(tests_dir)
    kept, _, _, unmatched = select(tests, exclusions, failed_modules, args.tests)
    for pat in unmatched:
        log(f"NO TEST MATCHES {pat!r}")
    result = run_tests(args, kept)
    faulthandler.cancel_dump_traceback_later()
    passed, failed, skipped = summarize(result)
    print(f"{SUMMARY_PREFIX}{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if result.wasSuccessful() and not unmatched else 1


if __name__ == "__main__":
    sys.exit(main())
