"""Where a run trained: the versions, BLAS and CPU that a sweep's store records beside its numbers.

    >>> sorted(describe())
    ['blas', 'cpu', 'initlab', 'numpy', 'python']
"""

import functools
import platform

import numpy as np


@functools.cache
def describe():
    """{"initlab", "python", "numpy", "blas", "cpu"} of this process, as short strings."""
    from initlab import __version__

    return {"initlab": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas(), "cpu": cpu()}


def blas():
    """The BLAS NumPy calls, with its version and architecture when threadpoolctl
    (optional) can see them; else what numpy.show_config reports it was built with."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        found = [library for library in threadpool_info() if library.get("user_api") == "blas"]
        # NumPy's own first: SciPy, once imported, brings a BLAS of its own, listed before it.
        found.sort(key=lambda library: "numpy" not in (library.get("filepath") or ""))
        if found:
            # Not its thread count, which a pool's workers set differently from the parent:
            # the store describes the machine, and runs on one machine agree.
            return " ".join(str(found[0][key]) for key in ("internal_api", "version",
                                                           "architecture") if found[0].get(key))
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config.get('name')} {config.get('version')}"
    except (TypeError, KeyError):  # NumPy before 1.25 has no mode="dicts"
        return "unknown"


def cpu():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
