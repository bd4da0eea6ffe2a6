"""Shared helpers of the benchmark scripts: timing side by side, and printing ratios.

The machine is shared and noisy, so every benchmark runs its contenders in turn, several rounds,
and reports each one's median: a burst of load then hits all of them alike, and the ratios (the
figures the targets are about) stay steady even when absolute times move.
"""

import os
import statistics
import sys
import time

# Measure the code beside this script, even where another copy of initlab is installed.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
if os.path.isdir(os.path.join(_SRC, "initlab")):
    sys.path.insert(0, os.path.abspath(_SRC))


def time_rounds(contenders, rounds):
    """Run each contender (name -> function returning a result) once per round, in turn.

    Returns {name: (median seconds, last result)}.
    """
    times = {name: [] for name in contenders}
    results = {}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in contenders}


def environment():
    """One line on what the figures were measured with."""
    import numpy as np

    blas = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return (f"python {sys.version.split()[0]}, numpy {np.__version__}, "
            f"{os.cpu_count()} CPUs, OPENBLAS_CORETYPE={blas}")


def verdict(ok):
    return "MET" if ok else "NOT MET"
