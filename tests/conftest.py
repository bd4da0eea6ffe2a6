"""Shared fixtures: small seeded data in the post's (features, samples) layout."""

import functools
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import types
import zipfile

import numpy as np
import pytest

from initlab import Dense, NeuralNetwork
from initlab.blocks.datasets import moons


@pytest.fixture
def moons_data():
    X, Y = moons(64, noise=0.2, seed=3)
    return X, Y


@pytest.fixture
def new_machine(tmp_path, monkeypatch):
    """As on a machine that never compiled a kernel: an empty private cache, and no kernel loaded
    in this process. Yields initlab.fast.jit (the test is skipped without Numba)."""
    pytest.importorskip("numba")
    from initlab.fast import jit

    cache = tmp_path / "kernel-cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(cache))
    monkeypatch.setattr(jit, "_LOADED", {})
    return jit


# A reference computed in x87 extended precision (64-bit significands) needs a long double wider
# than float64: where it is float64 (Windows, macOS on ARM), such a test would compare float64 with
# itself.
needs_wide_long_double = pytest.mark.skipif(
    np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant,
    reason="the reference needs a long double wider than float64 (x87's, as on x86-64 Linux)",
)


def run_python(code, **environment):
    """`python -c code` in a fresh process that imports this initlab (this process's sys.path),
    with `environment` added to os.environ: its CompletedProcess, the output captured as text."""
    env = {**os.environ, **environment, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of `array`, in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def assert_one_sgd_step_follows_central_differences(model, X, Y):
    """One SGD step at learning rate 1 moves the parameters by minus the gradient of the loss
    that evaluate reports, as central differences measure it (the model is built first)."""
    model.build(X.shape[0])
    before = model.parameters.copy()

    def loss():
        return model.evaluate(X, Y)["loss"]

    expected = numerical_gradient(loss, model.parameters)
    model.parameters[...] = before
    model.fit(X, Y, epochs=1, learning_rate=1.0)
    np.testing.assert_allclose(before - model.parameters, expected, rtol=1e-6, atol=1e-9)


def post_model(seed=0, dtype="float64", initializer="he"):
    """The post's network, 2-12-6-1: relu, relu, sigmoid with cross-entropy."""
    model = NeuralNetwork(seed=seed, dtype=dtype)
    model.add(Dense(units=12, activation="relu", initializer=initializer))
    model.add(Dense(units=6, activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid", initializer=initializer))
    model.compile(loss="crossentropy")
    return model


# --- model files, member by member (test_saving, test_fuzz) ------------------------------------


def npy_bytes(array):
    """The .npy file numpy.save writes for `array`."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def file_members(path):
    """{member name: bytes} of a zip file."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def file_config(members):
    """The JSON config of a model file's members."""
    return json.loads(str(np.load(io.BytesIO(members["config.npy"]))))


def write_members(path, members, config=None):
    """A zip of `members`, with config.npy replaced by `config` (a dict or a str) if given."""
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        members = {**members, "config.npy": npy_bytes(np.array(text))}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


# Compared by identity: what a failed call must not replace, but whose insides are code.
_CODE = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.ModuleType,
    functools.partial,
    type,
)


def object_state(obj, _seen=None):
    """Everything an object holds, recursively, as comparable values: arrays by dtype, shape and
    bytes, Generators by their state, other objects by type and attributes. Two calls compare
    equal only if nothing reachable from `obj` changed in between (bit for bit)."""
    seen = {} if _seen is None else _seen
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, np.random.Generator):
        return ("generator", repr(obj.bit_generator.state))
    if isinstance(obj, (str, bytes, int, float, complex, bool, type(None), np.generic)):
        return obj if not isinstance(obj, float) or obj == obj else "nan"
    if id(obj) in seen:
        return ("seen", seen[id(obj)])
    seen[id(obj)] = len(seen)
    if isinstance(obj, dict):
        return ("dict", [(key, object_state(value, seen)) for key, value in obj.items()])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [object_state(value, seen) for value in obj])
    if hasattr(obj, "__dict__") and not isinstance(obj, _CODE):
        return (type(obj).__name__, object_state(vars(obj), seen))
    return ("object", id(obj))


# --- stores written by another process (the sweeps' resume tests) -------------------------------
def stored_rows(out, table):
    """How many rows `table` of out/sweep.db holds now: 0 before the store or the table exists.
    Read while another process writes it, as a user's second look would."""
    path = os.path.join(out, "sweep.db")
    if not os.path.exists(path):
        return 0
    connection = sqlite3.connect(path, timeout=10)
    try:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        connection.close()


def wait_until(process, condition, timeout):
    """Poll `condition` while `process` runs; fail if it ends or `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the command ended before it could be stopped"
        assert time.monotonic() < deadline, "the command made no progress"
        time.sleep(0.02)


def default_interrupt():
    """A subprocess's preexec_fn: Ctrl-C as a terminal gives it, whoever started the tests.

    A process started in the background of a non-interactive shell (`pytest &`, nohup, some CI
    runners) inherits SIGINT ignored, and Python keeps it ignored: a test's SIGINT would then
    never reach the command it stops."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
