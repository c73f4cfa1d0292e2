"""What bench/echo.py and bench/sleep_wakeup.py share: runs interleaved
across implementations, medians and spreads, ratios, package versions."""
import importlib.metadata
import statistics
import sys


class Unavailable(Exception):
    """The implementation never got going (an import failed, say)."""


def package_versions(packages):
    versions = []
    for package in packages:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(versions)


def run_interleaved(names, runs, measure, describe):
    """measure(name) for every name, round after round, so drift in machine
    load spreads over all of them. An Unavailable name is dropped; a run
    that fails (RuntimeError) is reported and left out. Progress goes to
    stderr as describe(sample). Returns {name: [sample, ...]}."""
    names = list(names)
    samples = {name: [] for name in names}
    width = max(map(len, names), default=0)
    for run in range(1, runs + 1):
        for name in list(names):
            try:
                sample = measure(name)
            except Unavailable as exc:
                print(f"{name}: not available: {exc}", file=sys.stderr)
                names.remove(name)
                del samples[name]
                continue
            except RuntimeError as exc:
                print(f"[run {run}/{runs}] {name:<{width}} failed: {exc}", file=sys.stderr)
                continue
            samples[name].append(sample)
            print(f"[run {run}/{runs}] {name:<{width}} {describe(sample)}", file=sys.stderr)
    return samples


def medians_and_spreads(samples, rate_key):
    """Per name: the median of every measured key (plus "runs"), and the
    spread: half the min-max range of rate_key over its median."""
    medians, spreads = {}, {}
    for name, runs in samples.items():
        if not runs:
            continue
        medians[name] = {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        medians[name]["runs"] = len(runs)
        rates = [s[rate_key] for s in runs]
        spreads[name] = (max(rates) - min(rates)) / 2 / medians[name][rate_key]
    if not medians:
        sys.exit("no implementation produced a result")
    return medians, spreads


def ratio(value, reference):
    return f"{value / reference:.2f}" if reference else "n/a"
