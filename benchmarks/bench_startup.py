"""What a fresh process pays before it trains: the first compiled fit, and `initlab reproduce`.

1. The first compiled fit of a fresh process. Each run is a new `python -c` that imports initlab,
   builds the post's model (2-12-6-1, relu, relu, sigmoid, He, cross-entropy) and fits it for one
   epoch on make_moons 400 with jit_compile=True; it times the fit call (compiling included,
   or loading whatever cache the compiled path keeps) and its imports, and this script times
   the whole process from its start to its exit. Target (issue 16): the fit at most 1.5 s.
2. The main job: `initlab reproduce`'s default run (the post's three schemes x 10 seeds x 15000
   epochs, figures and tables written to a temporary directory), a fresh process timed from the
   command to the first line of its table, and to its exit; its peak resident memory beside.
   Target (issue 16): the table within 6 s. With Numba installed, `reproduce --no-jit` (the
   NumPy path) is timed too, for comparison (no target; not in a quick run).

Each is run several times in a row (--runs, --reproduce-runs); the best and the range are
printed, and every run, since a first run may also fill a cache that the later ones read.

    python benchmarks/bench_startup.py            # full run, a minute or two
    python benchmarks/bench_startup.py --quick    # smoke run: one of each, a short reproduce
"""

import argparse
import json
import os
import sys
import tempfile

from _common import environment, initlab_command, jit_available, run_process, verdict

FIT_TARGET_SECONDS = 1.5
REPRODUCE_TARGET_SECONDS = 6.0
TABLE_MARKER = "| Initialization"  # the first line of reproduce's table (report.table)

# The child's code: what a user types, timed from inside.
FIRST_FIT = f"""
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from _common import post_model  # the post's model, from the initlab beside the benchmarks
from initlab.blocks import datasets
X, Y = datasets.moons(400, noise=0.2, seed=0)
model = post_model("float64")
imported = time.perf_counter()
model.fit(X, Y, epochs=1, learning_rate=0.01, jit_compile=True)
fitted = time.perf_counter()
print(json.dumps({{"imports": imported - start, "fit": fitted - imported}}))
"""


def spread(values):
    """'best 1.23 s (1.23-1.57 s)': the least disturbed run, and the range."""
    return f"best {min(values):.2f} s ({min(values):.2f}-{max(values):.2f} s)"


def first_fits(runs):
    """[(fit s, imports s, process s)] of `runs` fresh processes, one after the other."""
    measured = []
    for _ in range(runs):
        done = run_process([sys.executable, "-c", FIRST_FIT])
        if done["returncode"] != 0:
            raise SystemExit(f"the first-fit process failed:\n{done['output']}")
        inside = json.loads(done["output"].strip().splitlines()[-1])
        measured.append((inside["fit"], inside["imports"], done["seconds"]))
    return measured


def reproduce(runs, extra):
    """[run_process reports] of `runs` fresh `initlab reproduce` runs, each into a new directory."""
    reports = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            args = ("reproduce", "--out", out, "--force", "--no-progress", *extra)
            reports.append(run_process(initlab_command(*args), marker=TABLE_MARKER))
    return reports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: one of each, short")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes for the first fit")
    parser.add_argument("--reproduce-runs", type=int, default=3)
    args = parser.parse_args(argv)
    runs, reproduce_runs = (1, 1) if args.quick else (args.runs, args.reproduce_runs)
    # The quick run's reproduce is a short one: its time and memory mean nothing.
    size = ("--seeds", 2, "--epochs", 200) if args.quick else ()
    print("bench_startup: fresh processes, timed from outside and inside")
    if args.quick:
        print("quick run: a smoke test; its MET / NOT MET verdicts mean nothing")
    print(environment())
    have_jit = jit_available()
    ok = True

    print(f"\nfirst compiled fit of a fresh process (the post's model, 1 epoch), {runs} run(s):")
    if have_jit:
        measured = first_fits(runs)
        for index, (fit, imports, process) in enumerate(measured, 1):
            print(
                f"  run {index}: fit {fit:6.2f} s, imports and model {imports:5.2f} s, "
                f"whole process {process:6.2f} s"
            )
        fits = [fit for fit, _, _ in measured]
        met = min(fits) <= FIT_TARGET_SECONDS
        ok &= met
        print(f"  fit call: {spread(fits)}; target <= {FIT_TARGET_SECONDS} s: {verdict(met)}")
        print(f"  whole process: {spread([process for *_, process in measured])}")
    else:
        print("  no numba: jit_compile=True cannot run here; target not measured")

    label = " ".join(map(str, ("initlab reproduce", *size)))
    print(f"\n`{label}` (the main job), a fresh process, {reproduce_runs} run(s):")
    # The NumPy path takes three times as long: not worth a smoke run's time.
    variants = [((), "")] + ([(("--no-jit",), " --no-jit")] if have_jit and not args.quick else [])
    for extra, suffix in variants:
        reports = reproduce(reproduce_runs, size + extra)
        failed = [r for r in reports if r["returncode"] != 0 or r["marker_seconds"] is None]
        if failed:
            last = failed[0]["output"].strip().splitlines()[-1:]
            print(f"  {label}{suffix}: failed (exit {failed[0]['returncode']}): {last}")
            ok &= bool(suffix)  # only the default run is the target's
            continue
        for index, report in enumerate(reports, 1):
            print(
                f"  {label}{suffix}, run {index}: table at {report['marker_seconds']:6.2f} s, "
                f"exit at {report['seconds']:6.2f} s, peak memory {report['peak_mb']:6.1f} MB"
            )
        tables = [report["marker_seconds"] for report in reports]
        if suffix:
            print(f"  {label}{suffix}: table {spread(tables)} (no target)")
            continue
        met = min(tables) <= REPRODUCE_TARGET_SECONDS
        ok &= met
        # A smoke run's study is smaller than the target's: measured, not judged.
        judged = "not judged on a smoke run" if args.quick else verdict(met)
        print(
            f"  {label}: table {spread(tables)}; target <= {REPRODUCE_TARGET_SECONDS:g} s: "
            f"{judged} (peak memory: bench_memory.py)"
        )
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
