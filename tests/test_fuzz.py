"""Property-based tests (Hypothesis) of hostile input: mutated model files and the API's arguments.

Whatever is thrown at them, load, fit, compile, initialize, Classifier.fit and Ensemble.fit end in
a clear initlab error (a ValueError: ModelFileError for files) with the object unchanged, or in a
correct result; never another exception, and never more than a bounded amount of memory.
"""

import io
import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import file_config, file_members, npy_bytes, object_state, post_model
from initlab import Dense, ModelFileError, NeuralNetwork
from initlab.blocks.datasets import moons
from initlab.estimator import Classifier
from initlab.tools.ensemble import Ensemble

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The most a load of a ~10 kB file may allocate, whatever its contents claim.
LOAD_MEMORY = 8 * 2**20

X, Y = moons(24, noise=0.2, seed=0)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """(bytes, members, config) of a small saved model with Adam's state."""
    model = NeuralNetwork([Dense(3, "relu", initializer="he"), Dense(1, "sigmoid")], seed=2)
    model.compile(loss="crossentropy", optimizer="adam")
    model.fit(X, Y, epochs=2, batch_size=8)
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    model.save(path)
    members = file_members(path)
    return path.read_bytes(), members, file_config(members)


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _load_bytes(tmp_path, data):
    """Load `data` as a model file: the model, or None after a ModelFileError; checks memory."""
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        model = NeuralNetwork.load(path)
    except ModelFileError as error:
        assert repr(str(path)) in str(error)
        assert "allow_pickle" not in str(error)
        model = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < LOAD_MEMORY
    if model is not None:  # a correct result: a model whose arrays are what its config says
        for layer in model.layers:
            assert layer.weights.shape == (layer.units, layer.fan_in)
            assert layer.bias.shape == (layer.units, 1)
            assert layer.weights.dtype == model.dtype
        assert (
            model.predict(
                X[:, :3] if model.layers[0].fan_in == 2 else np.zeros((model.layers[0].fan_in, 3))
            ).shape[-1]
            == 3
        )
    return model


# --- mutated files -------------------------------------------------------------------------------


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**6))
def test_a_truncated_file(model_file, tmp_path, cut):
    data = model_file[0]
    _load_bytes(tmp_path, data[: cut % len(data)])


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 7)), min_size=1, max_size=8)
)
def test_a_file_with_flipped_bits(model_file, tmp_path, flips):
    data = bytearray(model_file[0])
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    _load_bytes(tmp_path, bytes(data))


ARRAYS = st.one_of(
    st.tuples(
        st.sampled_from(["<f8", "<f4", ">f8", "<c16", "<i8", "|b1", "<U3"]),
        st.lists(st.integers(0, 5), max_size=3),
    ),
)
MEMBER_NAMES = st.sampled_from(
    [
        "0.weights.npy",
        "0.bias.npy",
        "1.weights.npy",
        "1.bias.npy",
        "optimizer.0.npy",
        "optimizer.1.npy",
        "optimizer.2.npy",
        "2.weights.npy",
        "config.npy",
        "junk.npy",
        "0.weights",
    ]
)


def _array(spec):
    dtype, shape = spec
    return np.zeros(shape, dtype)


@FUZZ
@given(
    removed=st.lists(MEMBER_NAMES, max_size=2),
    added=st.lists(st.tuples(MEMBER_NAMES, ARRAYS), max_size=3),
)
def test_members_removed_added_or_resized(model_file, tmp_path, removed, added):
    members = dict(model_file[1])
    for name in removed:
        members.pop(name, None)
    for name, spec in added:
        members[name] = npy_bytes(_array(spec))
    _load_bytes(tmp_path, _zip(members))


@FUZZ
@given(header=st.binary(max_size=200), declared=st.integers(0, 2**64))
def test_a_member_with_a_hostile_header(model_file, tmp_path, header, declared):
    members = dict(model_file[1])
    members["0.weights.npy"] = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    members["1.weights.npy"] = (
        b"\x93NUMPY\x01\x00"
        + b"v\x00{'descr': '<f8', 'fortran_order':"
        + f" False, 'shape': ({declared},), }}".encode().ljust(81)
        + b"\n"
        + bytes(8)
    )
    _load_bytes(tmp_path, _zip(members))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every path (tuple of keys and indices) into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


@FUZZ
@given(data=st.data())
def test_config_keys_changed_or_removed(model_file, tmp_path, data):
    config = json.loads(json.dumps(model_file[2]))
    paths = [path for path in _paths(config) if path]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = config
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    members = {**model_file[1], "config.npy": npy_bytes(np.array(json.dumps(config)))}
    _load_bytes(tmp_path, _zip(members))


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=200),
        JSON.map(json.dumps),
        st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    )
)
def test_a_config_that_is_any_text(model_file, tmp_path, text):
    members = {**model_file[1], "config.npy": npy_bytes(np.array(text))}
    _load_bytes(tmp_path, _zip(members))


# --- the API's arguments --------------------------------------------------------------------------


def _anything():
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.sampled_from([10**13, 10**20, -(10**20)]),
        st.floats(),
        st.text(max_size=4),
        st.sampled_from([np.nan, 1j, [], (), {}, "no", print]),
    )


def _data_variant(array, kind):
    if kind == "as is":
        return array
    if kind == "complex":
        return array + 0j
    if kind == "bool":
        return array > 0
    if kind == "str":
        return array.astype(str)
    if kind == "object":
        return array.astype(object)
    if kind == "int":
        return array.astype(np.int64)
    if kind == "nan":
        return np.where(array == array.max(), np.nan, array)
    if kind == "transposed":
        return array.T
    return array[..., :5]  # "fewer samples"


KINDS = st.sampled_from(
    [
        "as is",
        "as is",
        "complex",
        "bool",
        "str",
        "object",
        "int",
        "nan",
        "transposed",
        "fewer samples",
    ]
)


@pytest.fixture(scope="module")
def trained():
    model = post_model(seed=0)
    model.compile(loss="crossentropy", optimizer="momentum")
    model.fit(X, Y, epochs=2)
    return model


FIT_ARGUMENTS = {
    "epochs": st.integers(1, 4),
    "learning_rate": st.none() | st.floats(1e-4, 1.0),
    "batch_size": st.none() | st.integers(1, 30),
    "log_every": st.integers(1, 3),
    "shuffle": st.booleans(),
    "print_log": st.just(False),
    "jit_compile": st.just(False),
    "callbacks": st.just(()),
}


def _arguments(data, valid):
    """Valid arguments, with none, one or two of them (drawn) replaced by anything at all."""
    spoiled = data.draw(st.sets(st.sampled_from(sorted(valid)), max_size=2))
    arguments = {
        name: data.draw(_anything() if name in spoiled else strategy)
        for name, strategy in valid.items()
    }
    if arguments.get("jit_compile") is True:
        arguments["jit_compile"] = "True"  # a real compile takes seconds; tested elsewhere
    return arguments


@FUZZ
@given(data=st.data(), kinds=st.tuples(KINDS, KINDS))
def test_fit_with_any_arguments(trained, data, kinds):
    arguments = _arguments(data, FIT_ARGUMENTS)
    model = trained
    before = object_state(model)
    try:
        history = model.fit(_data_variant(X, kinds[0]), _data_variant(Y, kinds[1]), **arguments)
    except ValueError:
        assert object_state(model) == before
        return
    assert history["loss"].shape == (arguments["epochs"],)
    assert len(model.costs) >= 1
    assert model.learning_rate == model.optimizer.learning_rate
    if arguments["learning_rate"] is not None:
        assert model.learning_rate == arguments["learning_rate"]


@FUZZ
@given(
    loss=st.one_of(
        st.sampled_from(["mse", "crossentropy", "categorical_crossentropy"]), _anything()
    ),
    optimizer=st.one_of(
        st.sampled_from(
            ["sgd", "adam", "rmsprop", {"name": "adam"}, {"name": "sgd", "learning_rate": -1}]
        ),
        _anything(),
    ),
    method=st.one_of(st.sampled_from(["lsuv", "he_normal", "banana", "orthogonal"]), _anything()),
    tol=st.one_of(st.just(0.1), _anything()),
)
def test_compile_and_initialize_with_any_arguments(loss, optimizer, method, tol):
    model = post_model(seed=1)
    model.fit(X, Y, epochs=1)
    for call in (
        lambda: model.compile(loss=loss, optimizer=optimizer),
        lambda: model.initialize(X, method=method, **({"tol": tol} if method == "lsuv" else {})),
    ):
        before = object_state(model)
        try:
            call()
        except ValueError:
            assert object_state(model) == before


@FUZZ
@given(
    hidden=st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 4), max_size=2), _anything()),
    epochs=st.one_of(st.integers(1, 3), _anything()),
    labels=st.sampled_from(["ints", "strings", "nan", "none", "one class", "floats"]),
    kind=KINDS,
)
def test_classifier_fit_with_any_arguments(hidden, epochs, labels, kind):
    clf = Classifier(hidden_layer_sizes=(3,), epochs=2, random_state=0).fit(X.T, Y[0])
    y = {
        "ints": Y[0].astype(int),
        "strings": np.where(Y[0] > 0, "b", "a"),
        "nan": np.where(np.arange(Y.shape[1]) == 2, np.nan, Y[0]),
        "none": np.where(np.arange(Y.shape[1]) == 2, None, Y[0].astype(object)),
        "one class": np.zeros(Y.shape[1]),
        "floats": Y[0] * 0.5,
    }[labels]
    learned = object_state({k: v for k, v in vars(clf).items() if k.endswith("_")})
    try:
        clf.set_params(hidden_layer_sizes=hidden, epochs=epochs)
        clf.fit(_data_variant(X, kind).T, y)
    except ValueError:
        assert object_state({k: v for k, v in vars(clf).items() if k.endswith("_")}) == learned
        return
    assert len(clf.predict(X.T)) == X.shape[1]
    assert set(clf.predict(X.T)) <= set(clf.classes_)


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_ensemble_fit_with_any_arguments(data, kind):
    arguments = _arguments(
        data,
        {
            "epochs": st.integers(1, 3),
            "learning_rate": st.floats(1e-3, 0.5),
            "batch_size": st.none() | st.integers(1, 30),
            "callbacks": st.just(()),
            "jit_compile": st.just(False),
        },
    )
    ensemble = Ensemble([post_model(seed=k) for k in range(3)])
    ensemble.fit(X, Y, epochs=1, learning_rate=0.1)
    before = object_state(ensemble)
    try:
        history = ensemble.fit(_data_variant(X, kind), Y, **arguments)
    except ValueError:
        assert object_state(ensemble) == before
        return
    assert history["loss"].shape == (arguments["epochs"], 3)


@FUZZ
@given(
    dtype=st.one_of(
        st.sampled_from(["float32", "float64", np.float32, "banana", "int8", complex]), _anything()
    ),
    seed=_anything(),
    scale=st.one_of(st.floats(0, 1e40), _anything()),
)
def test_a_model_built_from_any_arguments(dtype, seed, scale):
    from initlab import Initializer

    try:
        model = NeuralNetwork(
            [Dense(3, "tanh", initializer=Initializer(scale=scale)), Dense(1, "sigmoid")],
            seed=seed,
            dtype=dtype,
        )
        model.compile(loss="crossentropy")
    except ValueError:
        return
    before = object_state(model)
    try:
        p = model.predict(X)
    except ValueError:
        assert object_state(model) == before and not model.built
        return
    assert np.all(np.isfinite(model.layers[0].weights)) and p.shape == (1, X.shape[1])
