"""The environment a store records: versions that match this interpreter, a BLAS and a CPU."""

import platform

import numpy as np

import initlab
from initlab.sweeps import environment


def test_describe_reports_this_process():
    found = environment.describe()
    assert found["initlab"] == initlab.__version__
    assert found["python"] == platform.python_version()
    assert found["numpy"] == np.__version__
    assert found["blas"] not in ("", "unknown")
    assert found["cpu"]


def test_blas_names_the_library_numpy_was_built_with():
    built = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    # threadpoolctl names it by its internal name (openblas), NumPy's config by the package.
    assert built["version"] in environment.blas()


def test_blas_is_numpys_even_once_scipy_brought_its_own():
    before = environment.blas()
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS)

    assert environment.blas() == before
