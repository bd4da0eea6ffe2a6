"""The environment a study records: versions, BLAS and CPU, as the running process sees them."""

import os
import platform

import numpy as np
import pytest

import initlab
from initlab import environment


def test_describe_names_the_versions_of_this_process():
    info = environment.describe()
    assert info["initlab"] == initlab.__version__
    assert info["python"] == platform.python_version()
    assert info["numpy"] == np.__version__
    assert info["platform"] == platform.platform()


def test_describe_names_numba_without_importing_it(monkeypatch):
    import sys

    numba = pytest.importorskip("numba")
    monkeypatch.delitem(sys.modules, "numba")
    assert environment.describe()["numba"] == numba.__version__
    assert "numba" not in sys.modules


def test_blas_is_the_library_numpy_calls_even_when_scipy_loads_another():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy.linalg")  # may load SciPy's own OpenBLAS beside NumPy's
    blas = environment.blas()
    numpy_blas = [
        lib
        for lib in threadpoolctl.threadpool_info()
        if lib["user_api"] == "blas" and "numpy" in lib["filepath"]
    ]
    if numpy_blas:
        assert blas["name"] == numpy_blas[0]["internal_api"]
        assert blas["version"] == numpy_blas[0]["version"]
    else:  # a system BLAS shared by both
        assert blas["name"]


def test_cpu_reports_the_cores_this_process_may_use():
    cpu = environment.cpu()
    assert cpu["machine"] == platform.machine()
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cpu["cores"] == expected
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        assert cpu["model"] == names[0]


def test_the_module_docstring_example_runs():
    import doctest

    result = doctest.testmod(environment)
    assert result.attempted >= 2 and result.failed == 0


def test_summary_gives_the_same_facts_as_flat_strings():
    found, flat = environment.describe(), environment.summary()
    assert {key: flat[key] for key in ("initlab", "python", "numpy")} == {
        key: found[key] for key in ("initlab", "python", "numpy")
    }
    assert flat["blas"].startswith(str(found["blas"]["name"]))
    assert flat["cpu"] == (found["cpu"]["model"] or found["cpu"]["machine"])
    assert all(isinstance(value, str) and value for value in flat.values())
