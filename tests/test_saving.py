"""The model file (engine/saving.py): its documented layout, hostile and damaged files refused
with a ModelFileError naming the file before anything is read or built, modes, stale temporaries."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest

from conftest import file_config, file_members, npy_bytes, post_model, write_members
from initlab import Dense, ModelFileError, NeuralNetwork
from initlab.blocks.datasets import moons
from initlab.engine import saving

CONFIG_KEYS = {
    "format",
    "version",
    "seed",
    "seed_entropy",
    "dtype",
    "layers",
    "loss",
    "optimizer",
    "learning_rate",
    "shuffle_state",
    "optimizer_state",
}


@pytest.fixture
def saved(tmp_path):
    """(model, path, members, config) of the post's model trained 3 epochs with Adam."""
    X, Y = moons(20, noise=0.2, seed=0)
    model = post_model(seed=1)
    model.compile(loss="crossentropy", optimizer="adam")
    model.fit(X, Y, epochs=3, batch_size=8)
    path = tmp_path / "model.npz"
    model.save(path)
    members = file_members(path)
    return model, path, members, file_config(members)


def test_the_file_is_what_the_readme_documents(saved):
    model, path, members, config = saved
    assert set(members) == {
        "config.npy",
        "0.weights.npy",
        "0.bias.npy",
        "1.weights.npy",
        "1.bias.npy",
        "2.weights.npy",
        "2.bias.npy",
        "optimizer.0.npy",
        "optimizer.1.npy",
    }
    assert set(config) == CONFIG_KEYS
    assert (config["format"], config["version"]) == ("initlab.NeuralNetwork", 1)
    with zipfile.ZipFile(path) as archive:
        weights = np.load(archive.open("1.weights.npy"))
    assert weights.dtype == np.dtype("<f8") and weights.shape == (6, 12)
    np.testing.assert_array_equal(weights, model.layers[1].weights)
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for key in CONFIG_KEYS:
        assert f"`{key}`" in readme


def test_a_fortran_ordered_member_loads_as_the_same_array(saved, tmp_path):
    model, _, members, config = saved
    members["1.weights.npy"] = npy_bytes(np.asfortranarray(model.layers[1].weights))
    write_members(tmp_path / "f.npz", members)
    np.testing.assert_array_equal(
        NeuralNetwork.load(tmp_path / "f.npz").layers[1].weights, model.layers[1].weights
    )


def _header_claiming(shape):
    """A .npy header for float64 `shape`, followed by only 16 bytes of data."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(16)


def _other_model_members(tmp_path, units):
    model = NeuralNetwork(seed=0)
    for n in units:
        model.add(Dense(n, activation="relu"))
    model.compile(loss="crossentropy")
    model.predict(np.zeros((2, 3)))
    model.save(tmp_path / "other.npz")
    return file_members(tmp_path / "other.npz")


def _spoil(kind, members, config, tmp_path):
    """(members, config or config text) of a saved file spoiled in one way."""
    members = dict(members)
    if kind == "config without seed":
        del config["seed"]
    elif kind == "dtype banana":
        config["dtype"] = "banana"
    elif kind == "a list where an integer belongs":
        config["layers"][0]["units"] = [12]
    elif kind == "units 10**12":
        config["layers"][0]["units"] = 10**12
    elif kind == "no layers":
        config["layers"] = []
    elif kind == "json nested 100,000 deep":
        config = "[" * 100_000 + "]" * 100_000
    elif kind == "NaN in the config":
        config = json.dumps(config).replace('"seed": 1,', '"seed": NaN,')
    elif kind == "a duplicate key":
        config = json.dumps(config).replace('"seed": 1,', '"seed": 1, "seed": 2,')
    elif kind == "an unknown key":
        config["pickle"] = "yes"
    elif kind == "a missing layer array":
        del members["1.bias.npy"]
    elif kind == "an extra member":
        members["junk.npy"] = npy_bytes(np.zeros(3))
    elif kind == "a header claiming 10**12 elements":
        members["0.weights.npy"] = _header_claiming((10**12,))
    elif kind == "a 2-8-4-1 file under a 2-12-6-1 config":
        other = _other_model_members(tmp_path, (8, 4, 1))
        members.update({name: data for name, data in other.items() if name[0].isdigit()})
    elif kind == "stacked (ensemble) weights":
        members["0.weights.npy"] = npy_bytes(np.zeros((3, 12, 2)))
    elif kind == "complex weights":
        members["0.weights.npy"] = npy_bytes(np.zeros((12, 2), complex))
    elif kind == "big-endian weights":
        members["0.weights.npy"] = npy_bytes(np.zeros((12, 2), ">f8"))
    elif kind == "a broken fan_in chain":
        config["layers"][1]["input_dim"] = 11
    elif kind == "an unknown activation":
        config["layers"][1]["activation"] = {"name": "banana"}
    elif kind == "an activation with a stray parameter":
        config["layers"][1]["activation"] = {"name": "relu", "alpha": 3}
    elif kind == "an optimizer with a stray parameter":
        config["optimizer"]["rho"] = 0.5
    elif kind == "a shuffle state of another generator":
        config["shuffle_state"] = {"bit_generator": "MT19937", "state": {}}
    elif kind == "a config that is a number array":
        members["config.npy"] = npy_bytes(np.zeros(3))
        return members, None
    return members, config


SPOILS = {
    "config without seed": r"lacks the keys \['seed'\]",
    "dtype banana": r"dtype must be one of \['float32', 'float64'\], got 'banana'",
    "a list where an integer belongs": r"layers\[0\]\.units must be an integer in \[1, ",
    "units 10**12": r"layers\[0\]\.units must be an integer in \[1, 16777216\], got 10{12}",
    "no layers": "layers must be a list of 1 to 1000 layer configs, got",
    "json nested 100,000 deep": "nested too deeply",
    "NaN in the config": "not valid JSON: NaN is not a number JSON allows",
    "a duplicate key": "a key appears twice",
    "an unknown key": r"keys a version-1 file does not: \['pickle'\]",
    "a missing layer array": r"lacks the members \['1\.bias\.npy'\]",
    "an extra member": r"holds members a model file does not: \['junk\.npy'\]",
    "a header claiming 10**12 elements": r"member '0\.weights\.npy' is \d+ bytes, but its header "
    r"describes 8000000000\d+",
    "a 2-8-4-1 file under a 2-12-6-1 config": r"member '0\.weights' has shape \(8, 2\) and dtype "
    r"float64; expected shape \(12, 2\)",
    "stacked (ensemble) weights": r"member '0\.weights' has shape \(3, 12, 2\)",
    "complex weights": "member '0.weights' has shape .* and dtype complex128",
    "big-endian weights": r"dtype >f8; expected shape \(12, 2\) and dtype float64",
    "a broken fan_in chain": r"layers\[1\]\.input_dim is 11, but the layer below has 12 units",
    "an unknown activation": r"layers\[1\]\.activation: activation 'banana' is not known",
    "an activation with a stray parameter": (
        r"layers\[1\]\.activation: .* does not fit ReLU: "
        r".*takes no arguments"
    ),
    "an optimizer with a stray parameter": "optimizer: .*rho",
    "a shuffle state of another generator": "shuffle_state must be null or a PCG64 state",
    "a config that is a number array": "its config.npy is a .* array of float64, not a text",
}


@pytest.mark.parametrize("kind", sorted(SPOILS))
def test_a_spoiled_file_is_refused_naming_the_file_and_the_fault(saved, tmp_path, kind):
    _, _, members, config = saved
    path = tmp_path / "spoiled.npz"
    write_members(path, *_spoil(kind, members, config, tmp_path))
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match=SPOILS[kind]) as error:
        NeuralNetwork.load(path)
    assert str(error.value).startswith(repr(str(path)))
    assert "pickle" not in str(error.value) or kind == "an unknown key"
    assert path.read_bytes() == before  # reading never writes


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "truncated"),
        (b"PK\x05\x06" + bytes(18), "no initlab config inside|no config.npy"),
        (npy_bytes(np.ones(3)), "not an initlab model file"),
    ],
)
def test_files_that_are_no_zip_or_no_model_are_refused(tmp_path, content, message):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        NeuralNetwork.load(path)


def test_a_flipped_bit_in_the_data_is_caught_by_the_checksum(saved):
    _, path, _, _ = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("1.weights.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x10  # inside the array's data
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or damaged.*CRC|Bad CRC"):
        NeuralNetwork.load(path)


def test_a_huge_zip_directory_is_refused_before_it_is_read(saved):
    _, path, _, _ = saved
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 12 : end + 16] = struct.pack("<I", 2**31)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="zip directory of 2147483648 bytes"):
        NeuralNetwork.load(path)


def test_an_unused_large_member_is_refused_without_being_decompressed(saved, tmp_path):
    # 64 MB of zeros deflate to about 64 kB: reading it would cost 64 MB.
    _, _, members, _ = saved
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("unused.npy", npy_bytes(np.zeros(8 * 2**20)))
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"does not: \['unused\.npy'\]"):
        NeuralNetwork.load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20


def test_a_member_claiming_more_than_the_machine_has_is_refused(saved, tmp_path, monkeypatch):
    _, path, _, _ = saved
    monkeypatch.setattr(saving.checks, "available_memory", lambda: 1000)
    with pytest.raises(
        ModelFileError, match="loading it would need about 8.71 kB of memory, more than the 1 kB"
    ):
        NeuralNetwork.load(path)


@pytest.mark.parametrize(
    "path, message",
    [
        ("missing.npz", "cannot be read: No such file"),
        (".", "is not a regular file"),
        ("fifo", "is not a regular file"),
    ],
)
def test_a_path_that_is_no_file_is_a_model_file_error(tmp_path, path, message):
    os.mkfifo(tmp_path / "fifo")  # opening it to read would wait for a writer forever
    with pytest.raises(ModelFileError, match=message):
        NeuralNetwork.load(tmp_path / path)


def test_a_path_that_is_not_a_path_is_a_value_error():
    with pytest.raises(ValueError, match="path must be a str or os.PathLike, got 5"):
        NeuralNetwork.load(5)


# --- writing ------------------------------------------------------------------------------------


@pytest.fixture
def model():
    m = post_model(seed=0)
    m.predict(np.zeros((2, 4)))
    return m


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_a_plain_write_gives(model, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.npz")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == mode
    assert (tmp_path / "plain").stat().st_mode & 0o777 == mode


def test_a_replaced_file_keeps_its_mode(model, tmp_path):
    path = tmp_path / "m.npz"
    model.save(path)
    os.chmod(path, 0o640)
    model.save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(model, tmp_path):
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()
    # A child process saves to the same place and is killed in the middle of writing.
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from initlab import NeuralNetwork
        model = NeuralNetwork.load({str(path)!r})
        def savez(handle, **arrays):
            handle.write(b"half a file")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = savez
        model.save({str(path)!r})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".initlab-")
    assert path.read_bytes() == before  # the old file is whole
    # A save to another place, and a save in progress (a live process), are left alone.
    dead_pid = left[0].split("-")[2]
    other = tmp_path / (saving._temporary_prefix(str(tmp_path / "o.npz")) + f"{dead_pid}-x.tmp")
    live = tmp_path / (saving._temporary_prefix(str(path)) + f"{os.getppid()}-x.tmp")
    other.write_bytes(b"")
    live.write_bytes(b"")
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", other.name, live.name])
    np.testing.assert_array_equal(
        NeuralNetwork.load(path).layers[0].weights, model.layers[0].weights
    )


@pytest.mark.parametrize("code_point", [b"\xff\xff\xff\xff", b"\x00\xd8\x00\x00"])
def test_a_config_with_characters_beyond_unicode_is_refused(saved, tmp_path, code_point):
    _, _, members, config = saved
    text = np.array(json.dumps(config))
    data = bytearray(npy_bytes(text))
    position = len(data) - 4 * (len(str(text)) - str(text).index('"seed"') - 2)
    data[position : position + 4] = code_point  # inside the key "seed"
    write_members(tmp_path / "bad.npz", {**members, "config.npy": bytes(data)})
    with pytest.raises(ModelFileError, match="not valid Unicode text"):
        NeuralNetwork.load(tmp_path / "bad.npz")


def test_a_day_old_temporary_of_an_earlier_version_is_removed(model, tmp_path):
    old, recent = tmp_path / ".initlab-ab3_x9z1.tmp", tmp_path / ".initlab-qq3_x9z1.tmp"
    for path in (old, recent):
        path.write_bytes(b"half a file")
    os.utime(old, (0, 2 * 86400))  # 1970: long dead
    model.save(tmp_path / "m.npz")
    assert not old.exists() and recent.exists()  # recent: an old version may be writing it


def test_saving_where_no_file_can_be_is_named_by_the_path_given(model, tmp_path, monkeypatch):
    with pytest.raises(ValueError) as refused:
        model.save(tmp_path)
    assert str(refused.value) == (
        f"path {str(tmp_path)!r} is a directory; expected a file name, such as "
        f"{str(tmp_path / 'model.npz')!r}"
    )
    with pytest.raises(ValueError, match=r"'.*nowhere' does not exist; expected a file in an"):
        model.save(tmp_path / "nowhere" / "model.npz")
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"'.*afile' is not a directory; expected a file in an"):
        model.save(tmp_path / "afile" / "model.npz")
    with pytest.raises(ValueError, match=r"is a directory; expected a file name"):
        model.save(str(tmp_path / "new") + os.sep)
    (tmp_path / "afile").unlink()

    # The machine's refusal (here: no space) names the user's path, not the temporary beside it.
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving.np, "savez", full)
    with pytest.raises(OSError) as failed:
        model.save(tmp_path / "model.npz")
    assert failed.value.errno == 28 and failed.value.filename == str(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []  # the temporary file is gone too


def test_a_function_initializer_is_named_after_loading_and_never_drawn_from(tmp_path, capsys):
    def my_init(shape, rng):
        return rng.normal(size=shape) * 0.3

    model = NeuralNetwork([Dense(3, "relu", initializer=my_init), Dense(1, "sigmoid")], seed=0)
    model.compile(loss="crossentropy")
    model.build(2)
    model.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.parameters, model.parameters)
    # Its config and summary name the function, as the saved model's do (not the default).
    assert loaded.get_config()["layers"][0]["initializer"] == {"function": my_init.__qualname__}
    loaded.summary()
    assert f"relu        {my_init.__qualname__}" in capsys.readouterr().out
    # New weights need the function itself, which no file holds: said, not drawn from a default.
    assert repr(loaded.layers[0].initializer) == (
        f"Initializer(function {my_init.__qualname__!r}, not saved)"
    )
    with pytest.raises(ValueError) as refused:
        loaded.layers[0].initializer((3, 2))
    assert f"the function {my_init.__qualname__!r}, which a model file does not" in str(
        refused.value
    )


def test_a_loaded_layer_whose_biases_a_function_drew_can_be_initialized_again(tmp_path):
    def ones(shape):
        return np.ones(shape)

    X, Y = moons(40, noise=0.2, seed=0)
    model = NeuralNetwork([Dense(3, "relu", initializer="he", bias_initializer=ones), Dense(1)])
    model.compile(loss="mse")
    model.build(2)
    model.save(tmp_path / "m.npz")
    for method in ("lsuv", "he_normal"):
        loaded = NeuralNetwork.load(tmp_path / "m.npz")
        assert loaded.layers[0].bias_initializer.get_config() == {"function": ones.__qualname__}
        # The function is not in the file: the new scheme draws the biases, as for a new layer.
        loaded.initialize(X, method=method)
        assert loaded.layers[0].bias_initializer is None
        assert np.all(np.isfinite(loaded.parameters))
