"""The machine and software a study ran on, for its result files: the numbers depend on them.

The same seed gives the same bits with one version of initlab, NumPy and its BLAS on one kind of
CPU (and with one version of Numba on any x86-64 CPU, on the compiled path); across them, chaotic
runs (the post's randn x 10) move within their interval and times change. So every result file
records them, and which path trained:

    >>> info = describe()
    >>> sorted(info)
    ['blas', 'cpu', 'initlab', 'numba', 'numpy', 'platform', 'python']
    >>> info["numpy"] == __import__("numpy").__version__
    True
"""

import os
import platform
import sys

import numpy as np

from initlab.version import __version__


def describe():
    """{"initlab", "python", "numpy", "numba", "blas", "cpu", "platform"}: versions, BLAS and CPU.

    numba: the version of Numba, which compiles the default training path, or None if it is
    not installed (then every fit ran on NumPy). Read from the package's metadata: this does
    not import Numba.

    blas: the library NumPy calls at run time (name, version, threads, the CPU kernels it chose),
    from threadpoolctl where it is installed (scikit-learn brings it), else NumPy's build record.
    cpu: the model name, the machine type and the number of cores this process may use.
    """
    return {
        "initlab": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": installed_version("numba"),
        "blas": blas(),
        "cpu": cpu(),
        "platform": platform.platform(),
    }


def summary():
    """describe() as flat strings, for a table's columns: {"initlab", "python", "numpy",
    "blas" ("openblas 0.3.29 Haswell"), "cpu" (its model name)}."""
    found = describe()
    library = found["blas"]
    words = [library.get(key) for key in ("name", "version", "architecture")]
    return {
        "initlab": found["initlab"],
        "python": found["python"],
        "numpy": found["numpy"],
        "blas": " ".join(str(word) for word in words if word) or "unknown",
        "cpu": found["cpu"]["model"] or found["cpu"]["machine"] or "unknown",
    }


def blas():
    """The BLAS NumPy uses: {"name", "version", ...}; {"name": "unknown"} if nothing says."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        loaded = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
        # SciPy may load a BLAS of its own beside NumPy's: NumPy's is the one initlab calls.
        ours = [lib for lib in loaded if "numpy" in str(lib.get("filepath", ""))] or loaded
        if ours:
            library = ours[0]
            return {
                "name": library.get("internal_api"),
                "version": library.get("version"),
                "threads": library.get("num_threads"),
                "architecture": library.get("architecture"),
            }
    try:
        build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (TypeError, KeyError):  # NumPy < 1.25 only prints its configuration
        return {"name": "unknown"}
    return {"name": build.get("name"), "version": build.get("version")}


def cpu():
    """{"model", "machine", "cores"}: the CPU's model name where the system tells it."""
    model = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as cpuinfo:  # Linux: platform.processor() is often empty
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows
        cores = os.cpu_count()
    return {
        "model": model,
        "machine": platform.machine(),
        "cores": cores,
        "python_implementation": sys.implementation.name,
    }


def installed_version(package):
    """The installed version of `package` from its metadata (nothing is imported), or None."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
