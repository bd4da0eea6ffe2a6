"""`initlab deep`'s default grid with --backend local (a process per core) against one process.

Workload: `initlab deep` as a user runs it, defaults only (relu and tanh; depths 5, 10, 20, 50;
the default schemes; seed 0; 20 epochs of minibatch SGD on digits): 64 networks. Each contender
is the whole command in a fresh subprocess, start-up included, into a fresh --out:
    one process      --backend serial
    local            --backend local: joblib's process pool, one worker per core
They run alternately, `--rounds` times each; the best time of each is compared. The two runs'
tables must agree: runs.csv without its time column, and summary.csv, equal byte for byte.

Target (issue 11): local at least 1.8x faster than one process on this 2-core machine.

    python benchmarks/bench_sweep.py             # the default grid (minutes)
    python benchmarks/bench_sweep.py --quick     # a tiny grid: a smoke run
"""

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import environment, verdict

TARGET = 1.8
QUICK = [
    "--depths",
    "2,3",
    "--activations",
    "relu",
    "--schemes",
    "he,random_normal:0.01",
    "--width",
    "8",
    "--epochs",
    "1",
]


def run_deep(backend, out, extra):
    """(wall seconds, CPU seconds) of the command; the CPU seconds are those of every process
    it ran, its workers included (each is waited for, so the kernel adds its time to ours)."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "initlab.cli", "deep", "--out", out, "--backend", backend, *extra],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"initlab deep --backend {backend} failed:\n{done.stderr}")
    return seconds, _children_cpu() - cpu


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def network_seconds(out):
    """The networks' own time, summed (runs.csv's seconds: building, measuring, training and
    testing each one), against which the rest is the command's start, data and coordination."""
    with open(os.path.join(out, "runs.csv"), newline="") as handle:
        return sum(float(row["seconds"]) for row in csv.DictReader(handle))


def tables(out):
    with open(os.path.join(out, "runs.csv"), newline="") as handle:
        runs = [
            {key: value for key, value in row.items() if key != "seconds"}
            for row in csv.DictReader(handle)
        ]
    with open(os.path.join(out, "summary.csv")) as handle:
        return runs, handle.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny grid: a smoke run")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each (default 1)")
    options = parser.parse_args(argv)
    extra = QUICK if options.quick else []
    best = {"serial": float("inf"), "local": float("inf")}
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for round_ in range(options.rounds):
            times = {}
            for backend in best:
                out = os.path.join(root, f"{backend}-{round_}")
                before = os.getloadavg()[0]
                wall, cpu = run_deep(backend, out, extra)
                times[backend] = wall
                best[backend] = min(best[backend], wall)
                results[backend] = tables(out)
                # Each run's own figures: the load of a shared machine moves between them. The
                # load average counts this command's own processes (1 or 2) too.
                print(
                    f"  round {round_ + 1}, {backend:6}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
                    f"networks {network_seconds(out):6.1f} s; load average "
                    f"{before:.2f} -> {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
            print(f"  round {round_ + 1}: {times['serial'] / times['local']:.2f}x", flush=True)
    agree = results["serial"] == results["local"]
    ratio = best["serial"] / best["local"]
    print(
        f"initlab deep {'(quick grid)' if options.quick else '(default grid)'}: "
        f"{environment()}, {os.cpu_count()} cores"
    )
    print(f"  one process (--backend serial)   {best['serial']:8.1f} s")
    print(f"  local (--backend local)          {best['local']:8.1f} s   {ratio:.2f}x faster")
    print(f"  tables equal: {agree}")
    print(
        f"target: local >= {TARGET}x faster than one process: {verdict(ratio >= TARGET)}"
        + (" (a quick run says nothing about the target)" if options.quick else "")
    )
    if not agree:
        raise SystemExit("the two backends' tables differ")


if __name__ == "__main__":
    main()
