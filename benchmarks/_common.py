"""Shared helpers of the benchmark scripts: timing side by side, and printing ratios.

The machine is shared and noisy, so every benchmark runs its contenders in turn, several rounds,
and reports each one's best round (the least disturbed, as timeit does): a burst of load then
hits all of them alike, and the ratios (the figures the targets are about) stay steadier than
absolute times.
"""

import json
import os
import subprocess
import sys
import time

# Measure the code beside this script, even where another copy of initlab is installed.
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
if os.path.isdir(os.path.join(_SRC, "initlab")):
    sys.path.insert(0, os.path.abspath(_SRC))


def post_model(dtype="float64", seed=0):
    """The post's He model, 2-12-6-1, the workload that bench_moons and bench_ensemble time."""
    from initlab import Dense, NeuralNetwork

    model = NeuralNetwork(seed=seed, dtype=dtype)
    model.add(Dense(units=12, activation="relu", initializer="he"))
    model.add(Dense(units=6, activation="relu", initializer="he"))
    model.add(Dense(units=1, activation="sigmoid", initializer="he"))
    model.compile(loss="crossentropy")
    return model


def time_rounds(contenders, rounds):
    """Run each contender once per round, in turn; each returns ((wall, cpu) seconds, result).

    Returns {name: ((best wall seconds, best CPU seconds), last result)}.
    """
    times = {name: [] for name in contenders}
    results = {}
    for _ in range(rounds):
        for name, run in contenders.items():
            seconds, results[name] = run()
            times[name].append(seconds)
    return {
        name: (tuple(min(values) for values in zip(*times[name], strict=True)), results[name])
        for name in contenders
    }


def timed(function, *args, **kwargs):
    """((wall seconds, CPU seconds), result) of one call.

    CPU seconds are the process's (all its threads): for a single-threaded contender on this
    shared machine they leave out the time spent waiting for a core, which wall time includes.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def in_worker(script, *args, env=None):
    """(seconds, result) from `python script --worker args...`, run in a fresh process.

    PyTorch runs there, never in the benchmark's own process: its OpenMP threads keep spinning
    after each call and would steal this 2-core machine from the NumPy contenders (and NumPy's
    OpenBLAS threads from it). The worker times only its training loop and prints one JSON line
    {"seconds": [wall, cpu], "result": ...}.
    """
    done = subprocess.run(
        [sys.executable, script, "--worker", *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        env=None if env is None else {**os.environ, **env},
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return tuple(report["seconds"]), report["result"]


def run_process(argv, marker=None, env=None):
    """Run a fresh process to its end, as a user's command runs: returns a dict with
    "seconds" (wall time from the start to its exit), "marker_seconds" (to the first line of its
    output that starts with `marker`, None if none did), "peak_mb" (its peak resident memory,
    from the kernel's accounting of the finished child: os.wait4's ru_maxrss), "returncode" and
    "output" (stdout and stderr together, unbuffered so that each line is timed as it comes).
    """
    environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ
    )
    lines, marker_seconds = [], None
    for line in process.stdout:
        if marker_seconds is None and marker is not None and line.startswith(marker):
            marker_seconds = time.perf_counter() - start
        lines.append(line)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.stdout.close()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return {
        "seconds": seconds,
        "marker_seconds": marker_seconds,
        "peak_mb": usage.ru_maxrss * scale / 1e6,
        "returncode": process.returncode,
        "output": "".join(lines),
    }


def initlab_command(*args):
    """argv of `initlab ARGS...` run from the source beside the benchmarks, in a fresh process,
    as the installed `initlab` program runs it (initlab.cli.command)."""
    code = f"import sys; sys.path.insert(0, {os.path.abspath(_SRC)!r}); " + (
        "from initlab.cli import command; command()"
    )
    return [sys.executable, "-c", code, *map(str, args)]


def worker_report(seconds, result):
    print(json.dumps({"seconds": list(seconds), "result": result}))


def installed(module):
    """Whether `module` can be imported here, without importing it (nor its threads)."""
    try:
        import importlib.util

        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def torch_available():
    return installed("torch")


def jax_available():
    return installed("jax")


def jit_available():
    """Whether fit(..., jit_compile=True) can run here (Numba installed)."""
    from initlab.fast import jit

    return jit.available()


def environment():
    """One line on what the figures were measured with."""
    import numpy as np

    blas = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return (
        f"python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, OPENBLAS_CORETYPE={blas}"
    )


def verdict(ok):
    return "MET" if ok else "NOT MET"
