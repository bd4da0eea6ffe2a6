"""Every benchmark's --quick smoke run works, so the scripts never rot.

Each runs in a subprocess as a user would run it (`python benchmarks/bench_x.py --quick`); their
timings and targets are not asserted here (the machine is shared and noisy: benchmarks print
ratios, tests check behaviour). A run takes a few seconds, mostly starting PyTorch and JAX
workers, plus the compiling of the jit kernels where Numba is installed.
"""

import pathlib
import subprocess
import sys

import pytest

BENCHMARKS = sorted((pathlib.Path(__file__).parent.parent / "benchmarks").glob("bench_*.py"))


def test_every_benchmark_is_found():
    names = {path.name for path in BENCHMARKS}
    assert {
        "bench_moons.py",
        "bench_ensemble.py",
        "bench_mlp.py",
        "bench_memory.py",
        "bench_jax.py",
        "bench_startup.py",
    } <= names


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_quick_run(script):
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "target" in done.stdout
    assert "nan" not in done.stdout
