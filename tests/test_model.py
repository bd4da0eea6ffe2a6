"""NeuralNetwork: whole-network gradients against central differences and PyTorch, the post's API,
seeding, persistence, and bad input."""

import io
import os
import re
import zipfile

import numpy as np
import pytest

from conftest import (
    file_config,
    file_members,
    npy_bytes,
    numerical_gradient,
    object_state,
    write_members,
)
from initlab import Dense, Initializer, NeuralNetwork, checks
from initlab.blocks.datasets import moons


def post_model(initializer="he", seed=0, **kwargs):
    model = NeuralNetwork(seed=seed, **kwargs)
    model.add(Dense(units=12, activation="relu", initializer=initializer))
    model.add(Dense(units=6, activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    return model


def _params(model):
    return [value.copy() for layer in model.layers for value in layer.params.values()]


def _restore(model, values):
    arrays = [value for layer in model.layers for value in layer.params.values()]
    for array, value in zip(arrays, values):
        array[...] = value


# (hidden activations, output activation, loss, n_outputs)
NETWORKS = [
    (("relu", "relu"), "sigmoid", "crossentropy", 1),
    (("tanh", "leaky_relu"), "softmax", "categorical_crossentropy", 3),
    (("sigmoid",), "linear", "mse", 2),
    (("tanh",), "sigmoid", "mse", 1),  # sigmoid without its fused loss: the generic path
    (("relu",), "tanh", "mse", 1),
]


@pytest.mark.parametrize("hidden, output, loss, n_outputs", NETWORKS)
def test_one_training_step_follows_the_exact_gradient(hidden, output, loss, n_outputs):
    """The update of every layer is -lr * dL/dW, all gradients taken at the same weights.

    The post's code sent gradients down through already-updated weights; this would catch it.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 10))
    if loss == "categorical_crossentropy":
        Y = np.eye(n_outputs)[:, rng.integers(0, n_outputs, 10)]
    elif loss == "crossentropy" or output == "sigmoid":
        Y = (rng.random((n_outputs, 10)) > 0.5).astype(float)
    else:
        Y = rng.normal(size=(n_outputs, 10))
    model = NeuralNetwork(seed=1)
    for units, activation in zip((5, 4), hidden):
        model.add(Dense(units, activation=activation, initializer=Initializer(scale=0.8)))
    model.add(Dense(n_outputs, activation=output, initializer=Initializer(scale=0.8)))
    model.compile(loss=loss)
    model.build(3)
    for layer in model.layers:
        layer.bias[...] = rng.normal(scale=0.3, size=layer.bias.shape)

    before = _params(model)
    model.fit(X, Y, epochs=1, learning_rate=1.0)
    analytic = [b - a for b, a in zip(before, _params(model))]
    _restore(model, before)
    arrays = [value for layer in model.layers for value in layer.params.values()]
    for array, expected in zip(arrays, analytic):
        numeric = numerical_gradient(lambda: model.evaluate(X, Y)["loss"], array)
        np.testing.assert_allclose(expected, numeric, rtol=1e-6, atol=1e-9)


def test_training_matches_pytorch_epoch_by_epoch():
    torch = pytest.importorskip("torch")
    X, Y = moons(80, noise=0.2, seed=1)
    model = post_model(seed=4)
    model.build(2)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 12),
        torch.nn.ReLU(),
        torch.nn.Linear(12, 6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 1),
    ).double()
    with torch.no_grad():
        for layer, linear in zip(model.layers, net[::2]):
            linear.weight.copy_(torch.tensor(layer.weights))
            linear.bias.copy_(torch.tensor(layer.bias[:, 0]))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    xt, yt = torch.tensor(X.T.copy()), torch.tensor(Y.T.copy())
    torch_costs = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt), yt)
        loss.backward()
        optimizer.step()
        torch_costs.append(loss.item())
    history = model.fit(X, Y, epochs=200, learning_rate=0.5)
    np.testing.assert_allclose(history["loss"], torch_costs, rtol=1e-9)
    for layer, linear in zip(model.layers, net[::2]):
        np.testing.assert_allclose(
            layer.weights, linear.weight.detach().numpy(), rtol=1e-8, atol=1e-12
        )


def test_cost_and_gradients_stay_finite_at_scale_1000():
    X, Y = moons(100, noise=0.2, seed=0)
    model = post_model(initializer=Initializer(scale=1000), seed=0)
    before = _params(model) if model.built else None
    history = model.fit(X, Y, epochs=5, learning_rate=0.01)
    assert before is None
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][0] > 100  # uncapped: the post's 1e-5 trick stopped near 11.5
    for layer in model.layers:
        for grad in layer.grads.values():
            assert np.all(np.isfinite(grad))
        assert np.all(np.isfinite(layer.weights))


def test_zeros_keep_the_cost_at_ln2_with_50_percent_accuracy():
    X, Y = moons(200, noise=0.2, seed=0)  # balanced: 100 of each class
    model = post_model(initializer=Initializer(scale=0), seed=0)
    history = model.fit(X, Y, epochs=300, learning_rate=0.01)
    np.testing.assert_allclose(history["loss"], np.log(2), rtol=1e-15)
    assert model.evaluate(X, Y)["accuracy"] == 50.0


def test_post_api_costs_log_and_learning_rate(capsys):
    X, Y = moons(40, noise=0.2, seed=0)
    model = post_model()
    history = model.fit(X, Y, epochs=25, learning_rate=0.05, print_log=True, log_every=10)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in printed] == [
        "Epochs: 0",
        "Epochs: 10",
        "Epochs: 20",
        "Epochs: 24",
    ]
    assert len(model.costs) == 4
    np.testing.assert_array_equal(model.costs, history["loss"][[0, 10, 20, 24]])
    assert printed[1] == f"Epochs: 10 - Cost: {history['loss'][10]}"
    assert model.learning_rate == 0.05
    assert history["loss"].shape == (25,)


def test_default_log_records_16_costs_for_15000_epochs():
    X, Y = moons(20, noise=0.2, seed=0)
    model = post_model()
    model.fit(X, Y, epochs=15000, learning_rate=0.01)
    assert len(model.costs) == 16


def test_evaluate_counts_correct_thresholded_predictions():
    X, Y = moons(60, noise=0.3, seed=2)
    model = post_model(seed=2)
    model.fit(X, Y, epochs=50, learning_rate=0.1)
    p = model.predict(X)
    assert p.shape == (1, 60) and np.all((p > 0) & (p < 1))
    result = model.evaluate(X, Y)
    assert result["accuracy"] == pytest.approx(100 * np.mean((p > 0.5) == (Y == 1)))
    eps = 1e-300
    expected_loss = -np.mean(Y * np.log(p + eps) + (1 - Y) * np.log(1 - p + eps))
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-9)


def test_softmax_accuracy_uses_argmax_and_accepts_class_indices():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 90))
    labels = (X[0] > 0).astype(int) + (X[1] > 0).astype(int)  # three classes
    model = NeuralNetwork(seed=0)
    model.add(Dense(16, activation="relu", initializer="he"))
    model.add(Dense(3, activation="softmax", initializer="he"))
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    model.fit(X, labels.reshape(1, -1), epochs=300, learning_rate=0.02)
    p = model.predict(X)
    np.testing.assert_allclose(p.sum(axis=0), 1.0)
    expected = 100 * np.mean(p.argmax(axis=0) == labels)
    assert model.evaluate(X, np.eye(3)[:, labels])["accuracy"] == pytest.approx(expected)
    assert expected > 90


def test_same_seed_gives_bit_identical_weights_and_costs():
    X, Y = moons(50, noise=0.2, seed=0)
    runs = []
    for _ in range(2):
        model = post_model(seed=123)
        history = model.fit(X, Y, epochs=30, learning_rate=0.1, batch_size=16)
        runs.append((history["loss"], _params(model)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_first_weights(123), _first_weights(124))


def _first_weights(seed):
    model = post_model(seed=seed)
    model.build(2)
    return model.layers[0].weights


def test_unseeded_model_keeps_its_entropy_so_the_run_can_be_repeated():
    first = post_model(seed=None)
    first.build(2)
    again = post_model(seed=first.seed_entropy)
    again.build(2)
    np.testing.assert_array_equal(first.layers[0].weights, again.layers[0].weights)


def test_layers_of_one_model_get_different_draws():
    model = NeuralNetwork(seed=0)
    model.add(Dense(4, initializer="he", input_dim=4))
    model.add(Dense(4, initializer="he"))
    model.build(4)
    assert not np.allclose(model.layers[0].weights, model.layers[1].weights)


def test_second_fit_continues_from_the_current_weights():
    X, Y = moons(50, noise=0.2, seed=0)
    once = post_model(seed=5)
    once.fit(X, Y, epochs=40, learning_rate=0.1)
    twice = post_model(seed=5)
    twice.fit(X, Y, epochs=20, learning_rate=0.1)
    second = twice.fit(X, Y, epochs=20, learning_rate=0.1)
    np.testing.assert_array_equal(once.history["loss"][20:], second["loss"])
    for a, b in zip(_params(once), _params(twice)):
        np.testing.assert_array_equal(a, b)


def test_a_second_fit_continues_the_minibatch_order_instead_of_replaying_it(tmp_path):
    X, Y = moons(50, noise=0.2, seed=0)
    once = post_model(seed=6)
    once.fit(X, Y, epochs=20, learning_rate=0.1, batch_size=8)
    twice = post_model(seed=6)
    twice.fit(X, Y, epochs=10, learning_rate=0.1, batch_size=8)
    twice.save(tmp_path / "half.npz")
    second = twice.fit(X, Y, epochs=10, learning_rate=0.1, batch_size=8)
    np.testing.assert_array_equal(once.history["loss"][10:], second["loss"])
    # A saved model carries its place in the shuffle stream too.
    resumed = NeuralNetwork.load(tmp_path / "half.npz")
    np.testing.assert_array_equal(
        resumed.fit(X, Y, epochs=10, learning_rate=0.1, batch_size=8)["loss"], second["loss"]
    )


def test_minibatches_cover_every_sample_and_full_batch_size_equals_full_batch():
    X, Y = moons(50, noise=0.2, seed=0)
    full = post_model(seed=1).fit(X, Y, epochs=5, learning_rate=0.1)
    same = post_model(seed=1).fit(X, Y, epochs=5, learning_rate=0.1, batch_size=50)
    np.testing.assert_array_equal(full["loss"], same["loss"])
    model = post_model(seed=1)
    history = model.fit(X, Y, epochs=60, learning_rate=0.1, batch_size=8)
    assert history["loss"].shape == (60,) and history["loss"][-1] < history["loss"][0]


def test_float32_trains_in_float32():
    X, Y = moons(60, noise=0.2, seed=0)
    model = post_model(seed=0, dtype="float32")
    history = model.fit(X, Y, epochs=500, learning_rate=0.1)
    assert model.layers[0].weights.dtype == np.float32
    reference = post_model(seed=0).fit(X, Y, epochs=500, learning_rate=0.1)
    np.testing.assert_allclose(history["loss"], reference["loss"], rtol=1e-3)


def test_callbacks_see_every_epoch_and_can_stop_training():
    X, Y = moons(30, noise=0.2, seed=0)

    class Recorder:
        def __init__(self):
            self.calls = []

        def on_train_begin(self, model):
            self.calls.append("begin")

        def on_epoch_end(self, model, epoch, cost):
            self.calls.append(epoch)
            model.stop_training = epoch == 6

        def on_train_end(self, model):
            self.calls.append("end")

    recorder = Recorder()
    history = post_model().fit(X, Y, epochs=50, callbacks=[recorder])
    assert recorder.calls == ["begin", 0, 1, 2, 3, 4, 5, 6, "end"]
    assert history["loss"].shape == (7,)


def test_predict_builds_the_model_as_the_post_does():
    model = post_model(seed=0)
    assert not model.built
    out = model.predict(np.zeros((2, 3)))
    assert model.built and out.shape == (1, 3)
    assert model.layers[0].weights.shape == (12, 2)


def test_a_large_predict_runs_in_parts_and_keeps_none_of_their_buffers(monkeypatch):
    from initlab.engine import model as model_module

    model = post_model(seed=0)
    model.fit(*moons(100, noise=0.2, seed=0), epochs=20)
    grid = np.random.default_rng(0).uniform(-2, 3, (2, 2500))
    # The whole grid in one pass: the reference the parts must equal.
    a = grid
    for layer in model.layers:
        a = layer.forward(a)
    whole = a.copy()
    # Parts of 1000, 1000 and 500 samples.
    monkeypatch.setattr(model_module, "INFERENCE_SAMPLES", 1000)
    np.testing.assert_allclose(model.output(grid), whole, rtol=1e-14, atol=0)
    np.testing.assert_array_equal(model.predict(grid), model.predict_from_output(whole))
    # Nothing of the parts is kept: a model kept after drawing its boundary holds no grid.
    assert all(layer._buffers == {} and layer.cache is None for layer in model.layers)
    # An input of at most one part keeps its buffers, for the next pass of its size.
    model.predict(grid[:, :1000])
    buffers = [b for layer in model.layers for b in layer._buffers.values()]
    assert buffers and all(buffer.shape[-1] == 1000 for buffer in buffers)


def test_summary_counts_parameters():
    model = post_model()
    model.build(2)
    text = model.summary()
    assert "Total params: 121" in text  # 2*12+12 + 12*6+6 + 6*1+1
    assert "relu" in text and "sigmoid" in text
    # Numbered from 1, as the diagnostics and model.initialize's report number layers.
    assert ["Dense 1", "Dense 2", "Dense 3"] == [
        line.split("  ")[0] for line in text.splitlines() if line.startswith("Dense")
    ]
    # Every line ends with its last character, not padding; the rules span the widest line.
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert len(lines[0]) == max(len(line) for line in lines[1:-1])


# --- persistence -------------------------------------------------------------------------------


def test_save_then_load_gives_bit_identical_predictions(tmp_path):
    X, Y = moons(50, noise=0.2, seed=0)
    model = post_model(seed=3)
    model.fit(X, Y, epochs=100, learning_rate=0.1)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, Y) == model.evaluate(X, Y)
    assert [type(layer.initializer).__name__ for layer in loaded.layers] == ["Initializer"] * 3
    # A loaded model trains on exactly as the original does.
    np.testing.assert_array_equal(
        loaded.fit(X, Y, epochs=10, learning_rate=0.1)["loss"],
        model.fit(X, Y, epochs=10, learning_rate=0.1)["loss"],
    )


def _saved_model(tmp_path):
    """A briefly trained post model saved as tmp_path/model.npz; returns (model, path, X, Y)."""
    X, Y = moons(20, noise=0.2, seed=0)
    model = post_model()
    model.fit(X, Y, epochs=2)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path, X, Y


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    _, path, X, Y = _saved_model(tmp_path)
    saved = path.read_bytes()
    other = post_model(seed=9)
    other.fit(X, Y, epochs=1)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert path.read_bytes() == saved
    assert os.listdir(tmp_path) == ["model.npz"]


def test_save_before_training_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no weights yet"):
        post_model().save(tmp_path / "m.npz")


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a model",
        b"",
    ],
)
def test_load_rejects_files_that_are_not_models(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not an initlab model"):
        NeuralNetwork.load(path)


def test_load_rejects_a_truncated_model(tmp_path):
    _, path, _, _ = _saved_model(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not an initlab model file, or it is truncated"):
        NeuralNetwork.load(path)


def test_load_rejects_other_npz_and_never_unpickles(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.ones(3))
    with pytest.raises(ValueError, match="not an initlab model"):
        NeuralNetwork.load(plain)
    # An object array can only be read by unpickling it: load must refuse, not execute.
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, config=np.array([{"format": "initlab.NeuralNetwork"}], dtype=object))
    with pytest.raises(ValueError, match="not an initlab model"):
        NeuralNetwork.load(pickled)


def test_load_rejects_a_config_of_another_version(tmp_path):
    _, path, _, _ = _saved_model(tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = np.load(io.BytesIO(members["config.npy"]))
    newer = str(config).replace('"version": 1', '"version": 99')
    members["config.npy"] = npy_bytes(np.array(newer))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match="version 99"):
        NeuralNetwork.load(path)


@pytest.mark.parametrize("version", [99, 0, True, "1", 1.0, None])
def test_load_rejects_a_version_it_does_not_know(tmp_path, version):
    _, path, _, _ = _saved_model(tmp_path)
    members = file_members(path)
    config = file_config(members)
    config["version"] = version
    write_members(path, members, config)
    with pytest.raises(
        ValueError, match=f"file format version {version!r}; this initlab reads version 1"
    ):
        NeuralNetwork.load(path)


# --- persistence of the optimizer's state ------------------------------------------------------

OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.1},
    "momentum": {"name": "momentum", "learning_rate": 0.05, "momentum": 0.9},
    "adam": {"name": "adam", "learning_rate": 0.01},
}


def _compiled(optimizer, seed=4, dtype="float64"):
    model = post_model(seed=seed, dtype=dtype)
    model.compile(loss="crossentropy", optimizer=dict(OPTIMIZERS[optimizer]))
    return model


@pytest.mark.parametrize("batch_size", [None, 8], ids=["full batch", "minibatch"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_save_load_resumes_training_bit_for_bit(tmp_path, optimizer, batch_size):
    # fit 30, save, load, fit 30 == fit 60 in one go: the weights, the optimizer's moments and
    # step count, and the place in the shuffle stream all come back.
    X, Y = moons(50, noise=0.2, seed=0)
    once = _compiled(optimizer)
    once.fit(X, Y, epochs=60, batch_size=batch_size)
    half = _compiled(optimizer)
    half.fit(X, Y, epochs=30, batch_size=batch_size)
    half.save(tmp_path / "half.npz")
    resumed = NeuralNetwork.load(tmp_path / "half.npz")
    second = resumed.fit(X, Y, epochs=30, batch_size=batch_size)
    np.testing.assert_array_equal(second["loss"], once.history["loss"][30:])
    for a, b in zip(_params(resumed), _params(once)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        resumed.optimizer.moments(resumed.parameters), once.optimizer.moments(once.parameters)
    ):
        np.testing.assert_array_equal(a, b)
    assert getattr(resumed.optimizer, "iterations", None) == getattr(
        once.optimizer, "iterations", None
    )


def test_float32_optimizer_state_round_trips_in_float32(tmp_path):
    X, Y = moons(50, noise=0.2, seed=0)
    once = _compiled("adam", dtype="float32")
    once.fit(X, Y, epochs=20, batch_size=16)
    half = _compiled("adam", dtype="float32")
    half.fit(X, Y, epochs=10, batch_size=16)
    half.save(tmp_path / "half.npz")
    resumed = NeuralNetwork.load(tmp_path / "half.npz")
    assert all(m.dtype == np.float32 for m in resumed.optimizer.moments(resumed.parameters))
    np.testing.assert_array_equal(
        resumed.fit(X, Y, epochs=10, batch_size=16)["loss"], once.history["loss"][10:]
    )


def test_the_file_holds_the_state_a_never_trained_model_has_none(tmp_path):
    X, Y = moons(20, noise=0.2, seed=0)
    model = _compiled("adam")
    model.predict(X)  # built, never trained
    model.save(tmp_path / "untrained.npz")
    members = file_members(tmp_path / "untrained.npz")
    assert file_config(members)["optimizer_state"] is None
    assert not [name for name in members if name.startswith("optimizer.")]
    model.fit(X, Y, epochs=3)
    model.save(tmp_path / "trained.npz")
    members = file_members(tmp_path / "trained.npz")
    assert file_config(members)["optimizer_state"] == {"moments": 2, "iterations": 3}
    m, v = model.optimizer.moments(model.parameters)
    with np.load(tmp_path / "trained.npz") as archive:
        np.testing.assert_array_equal(archive["optimizer.0"], m)
        np.testing.assert_array_equal(archive["optimizer.1"], v)
    # Plain gradient descent carries nothing from one step to the next.
    sgd = _compiled("sgd")
    sgd.fit(X, Y, epochs=3)
    sgd.save(tmp_path / "sgd.npz")
    assert file_config(file_members(tmp_path / "sgd.npz"))["optimizer_state"] is None


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_file_of_the_previous_format_loads_with_fresh_state(tmp_path, optimizer):
    # Version 1 files written before the optimizer state was saved: the same weights and config
    # without `optimizer_state` and without the state arrays. They load as before, the state
    # starting fresh, as after optimizer.reset().
    X, Y = moons(40, noise=0.2, seed=0)
    model = _compiled(optimizer)
    model.fit(X, Y, epochs=10, batch_size=8)
    model.save(tmp_path / "new.npz")
    members = file_members(tmp_path / "new.npz")
    config = file_config(members)
    del config["optimizer_state"]
    old = {name: data for name, data in members.items() if not name.startswith("optimizer.")}
    write_members(tmp_path / "old.npz", old, config)
    from_old = NeuralNetwork.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(from_old.predict(X), model.predict(X))
    assert getattr(from_old.optimizer, "iterations", 0) == 0
    fresh = NeuralNetwork.load(tmp_path / "new.npz")
    fresh.optimizer.reset()
    np.testing.assert_array_equal(
        from_old.fit(X, Y, epochs=5, batch_size=8)["loss"],
        fresh.fit(X, Y, epochs=5, batch_size=8)["loss"],
    )


def _corrupt(members, config, name):
    """The members of a saved Adam model with one part of its state spoiled."""
    members = dict(members)
    n = np.load(io.BytesIO(members["optimizer.1.npy"])).size
    if name == "wrong shape":
        members["optimizer.1.npy"] = npy_bytes(np.zeros(n - 1))
    elif name == "wrong dtype":
        members["optimizer.1.npy"] = npy_bytes(np.zeros(n, np.float32))
    elif name == "2-D":
        members["optimizer.1.npy"] = npy_bytes(np.zeros((1, n)))
    elif name == "missing array":
        del members["optimizer.1.npy"]
    elif name == "extra array":
        members["optimizer.2.npy"] = members["optimizer.1.npy"]
    elif name == "moments count":
        config["optimizer_state"]["moments"] = 1
    elif name == "step count":
        config["optimizer_state"]["iterations"] = -1
    elif name == "boolean step count":
        config["optimizer_state"]["iterations"] = True
    elif name == "no step count":
        del config["optimizer_state"]["iterations"]
    elif name == "state without config":
        config["optimizer_state"] = None
    elif name == "not a dict":
        config["optimizer_state"] = [2, 3]
    return members, config


@pytest.mark.parametrize(
    "corruption, message",
    [
        (
            "wrong shape",
            r"'optimizer\.1' has shape \(120,\) and dtype float64; expected shape "
            r"\(121,\) and dtype float64",
        ),
        ("wrong dtype", r"'optimizer\.1' has shape \(121,\) and dtype float32"),
        ("2-D", r"'optimizer\.1' has shape \(1, 121\)"),
        (
            "missing array",
            r"state arrays \['optimizer\.0'\]; expected \['optimizer\.0', "
            r"'optimizer\.1'\]",
        ),
        ("extra array", r"state arrays \['optimizer\.0', 'optimizer\.1', 'optimizer\.2'\]"),
        ("moments count", "adam carries 2"),
        ("step count", "step count must be an integer >= 0, got -1"),
        ("boolean step count", "step count must be an integer >= 0, got True"),
        ("no step count", "step count must be an integer >= 0, got None"),
        ("state without config", r"state arrays \['optimizer\.0', 'optimizer\.1'\]; expected \[\]"),
        ("not a dict", r"optimizer_state must be null or"),
    ],
)
def test_corrupt_optimizer_state_is_rejected_and_the_file_left_as_is(tmp_path, corruption, message):
    X, Y = moons(20, noise=0.2, seed=0)
    model = _compiled("adam")
    model.fit(X, Y, epochs=3)
    model.save(tmp_path / "model.npz")
    members = file_members(tmp_path / "model.npz")
    path = tmp_path / "corrupt.npz"
    write_members(path, *_corrupt(members, file_config(members), corruption))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=message) as error:
        NeuralNetwork.load(path)
    assert repr(str(path)) in str(error.value)
    assert path.read_bytes() == before


def test_momentum_state_carries_no_step_count(tmp_path):
    X, Y = moons(20, noise=0.2, seed=0)
    model = _compiled("momentum")
    model.fit(X, Y, epochs=3)
    model.save(tmp_path / "model.npz")
    members = file_members(tmp_path / "model.npz")
    config = file_config(members)
    assert config["optimizer_state"] == {"moments": 1, "iterations": None}
    config["optimizer_state"]["iterations"] = 3
    write_members(tmp_path / "bad.npz", members, config)
    with pytest.raises(ValueError, match="momentum keeps no step count, got 3"):
        NeuralNetwork.load(tmp_path / "bad.npz")


# --- bad input ---------------------------------------------------------------------------------


@pytest.fixture
def trained():
    X, Y = moons(40, noise=0.2, seed=0)
    model = post_model(seed=0)
    model.fit(X, Y, epochs=3)
    return model, X, Y


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda X, Y: (X[0], Y), r"X must be a 2-D array .*shape \(40,\)"),
        (lambda X, Y: (X, Y[0]), r"Y must be a 2-D array .*shape \(40,\)"),
        (lambda X, Y: (X, Y[:, :30]), r"X has 40, Y has shape \(1, 30\)"),
        (lambda X, Y: (np.where(X > 1, np.nan, X), Y), "X contains nan or inf"),
        (lambda X, Y: (np.where(X > 1, np.inf, X), Y), "X contains nan or inf"),
        (lambda X, Y: (X, Y * 2), r"labels 0 or 1 .*\[2\.0\]"),
        (lambda X, Y: (X.T, Y), r"X must have 2 features .*shape \(40, 2\).*X\.T"),
        (lambda X, Y: (np.vstack([X, X[:1]]), Y), r"X must have 2 features .*\(3, 40\)\.$"),
        (lambda X, Y: (X, np.vstack([Y, Y])), r"Y must have 1 rows"),
        (lambda X, Y: (X, np.vstack([Y, Y, Y * 7])), r"Y must have 1 rows.*\(3, 40\)"),
        (lambda X, Y: ([["a", "b"]], Y), r"X must hold real numbers .*dtype <U1 \(strings\)"),
    ],
)
def test_bad_data_is_reported_and_the_model_is_unchanged(trained, change, message):
    model, X, Y = trained
    before = _params(model)
    costs = list(model.costs)
    with pytest.raises(ValueError, match=message):
        model.fit(*change(X, Y), epochs=5)
    for a, b in zip(before, _params(model)):
        np.testing.assert_array_equal(a, b)
    assert model.costs == costs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs must be an integer >= 1, got 0"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1, got 2.5"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0, got 0"),
        ({"learning_rate": -1.0}, r"learning_rate must be a finite number > 0, got -1\.0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"log_every": 0}, "log_every must be an integer >= 1, got 0"),
    ],
)
def test_bad_training_arguments_are_reported_and_the_model_is_unchanged(trained, kwargs, message):
    model, X, Y = trained
    before = _params(model)
    rate = model.optimizer.learning_rate
    with pytest.raises(ValueError, match=message):
        model.fit(X, Y, **kwargs)
    for a, b in zip(before, _params(model)):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.learning_rate == rate


def test_a_failed_first_fit_leaves_the_model_unbuilt():
    model = post_model()
    with pytest.raises(ValueError):
        model.fit(np.ones((2, 5)), np.full((1, 5), 3.0))
    assert not model.built


def test_unknown_names_list_the_valid_ones():
    model = post_model()
    with pytest.raises(ValueError, match="loss 'hinge' is not known.*crossentropy"):
        model.compile(loss="hinge")
    with pytest.raises(ValueError, match="optimizer 'rmsprop' is not known.*adam"):
        model.compile(loss="crossentropy", optimizer="rmsprop")


def test_using_a_model_before_compile_or_without_layers_is_explained():
    X, Y = moons(10, noise=0.2, seed=0)
    model = NeuralNetwork()
    model.add(Dense(1, activation="sigmoid"))
    with pytest.raises(ValueError, match="not compiled"):
        model.fit(X, Y)
    empty = NeuralNetwork()
    empty.compile(loss="crossentropy")
    with pytest.raises(ValueError, match="no layers"):
        empty.fit(X, Y)
    with pytest.raises(ValueError, match="layer must be a Layer"):
        model.add("Dense")


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed must be None or an integer >= 0"):
        NeuralNetwork(seed=seed)


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize(
    "loss, output, n_outputs",
    [
        ("crossentropy", "sigmoid", 1),
        ("categorical_crossentropy", "softmax", 2),
        ("mse", "sigmoid", 1),
    ],
)
def test_a_healthy_large_scale_fit_never_raises_on_harmless_underflow(
    loss, output, n_outputs, batch_size
):
    # Weights of scale 1e3 saturate every sigmoid: exp underflows to 0, the right answer.
    X, Y = moons(64, noise=0.2, seed=0)
    model = NeuralNetwork(seed=0)
    model.add(Dense(12, "relu", initializer=Initializer(scale=1e3)))
    model.add(Dense(6, "sigmoid", initializer=Initializer(scale=1e3)))
    model.add(Dense(n_outputs, output, initializer=Initializer(scale=1e3)))
    model.compile(loss=loss)
    with np.errstate(all="raise"):
        history = model.fit(X, Y, epochs=5, batch_size=batch_size)["loss"]
        p = model.predict(X)
        result = model.evaluate(X, Y)
    assert np.all(np.isfinite(history)) and np.all(np.isfinite(p))
    assert result["loss"] == pytest.approx(history[-1], rel=1.0)  # finite and of that size


# --- all or nothing: a call that fails leaves the model bit for bit as it was -------------------


def _trained_adam_model():
    X, Y = moons(40, noise=0.2, seed=0)
    model = post_model(seed=0)
    model.compile(loss="crossentropy", optimizer="adam")
    model.fit(X, Y, epochs=3, batch_size=16)
    return model, X, Y


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m, X, Y: m.fit(X, Y, epochs=10**12, learning_rate=0.5),
            r"fit with epochs=1000000000000 would need about 8 TB of memory, more than the .* "
            r"available; use fewer epochs",
        ),
        (
            lambda m, X, Y: m.fit(X, Y, epochs=10**20),
            r"fit with epochs=100000000000000000000 would need about 800 EB",
        ),
        (lambda m, X, Y: m.fit(X, Y, shuffle="no"), "shuffle must be True or False, got 'no'"),
        (lambda m, X, Y: m.fit(X, Y, print_log=1), r"print_log must be True or False, got 1"),
        (
            lambda m, X, Y: m.fit(X, Y, jit_compile="no"),
            "jit_compile must be True, False or 'auto'",
        ),
        (
            lambda m, X, Y: m.fit(X, Y, callbacks=5),
            r"callbacks must be an object with a method "
            r"on_train_begin.*got 5 of type int",
        ),
        (lambda m, X, Y: m.fit(X, Y, callbacks=[print]), r"callbacks\[0\] must be an object"),
        (lambda m, X, Y: m.fit(X + 0j, Y), r"X must hold real numbers .*complex128 \(complex\)"),
        (lambda m, X, Y: m.fit(X > 0, Y), r"X must hold real numbers .*dtype bool \(boolean\)"),
        (lambda m, X, Y: m.fit(X.astype(object), Y), r"X must hold .*dtype object \(objects\)"),
        (lambda m, X, Y: m.fit(X.astype(str), Y), r"X must hold .*\(strings\)"),
        (lambda m, X, Y: m.fit(X, Y.astype(bool)), r"Y must hold .*\(boolean\)"),
        (lambda m, X, Y: m.compile(loss="mse", optimizer="rmsprop"), "optimizer 'rmsprop' is not"),
        (lambda m, X, Y: m.compile(loss="banana", optimizer="sgd"), "loss 'banana' is not known"),
        (lambda m, X, Y: m.initialize(X, method="banana"), "method 'banana' is not known"),
        (
            lambda m, X, Y: m.initialize(X, method=5),
            "method must be 'lsuv' or a scheme name, got 5",
        ),
        (lambda m, X, Y: m.initialize(X, method="lsuv", tol=-1), "tol must be a finite number > 0"),
        (lambda m, X, Y: m.initialize(X + 1j), "X must hold real numbers"),
    ],
)
def test_a_failed_call_leaves_a_trained_model_bit_for_bit_as_it_was(call, message):
    model, X, Y = _trained_adam_model()
    before = object_state(model)
    with pytest.raises(ValueError, match=message):
        call(model, X, Y)
    assert object_state(model) == before


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, X, Y: m.fit(X, Y, epochs=10**12), "use fewer epochs"),
        (lambda m, X, Y: m.initialize(X, method="banana"), "method 'banana' is not known"),
        (lambda m, X, Y: m.initialize(X, method="lsuv", tol=0), "tol must be"),
    ],
)
def test_a_failed_call_leaves_an_unbuilt_model_unbuilt(call, message):
    X, Y = moons(40, noise=0.2, seed=0)
    model = post_model(seed=0)
    before = object_state(model)
    with pytest.raises(ValueError, match=message):
        call(model, X, Y)
    assert object_state(model) == before and not model.built


def _fail_allocating_buffers(monkeypatch):
    """Make the training loop's buffers fail to allocate, after the optimizer's state is made:
    as a batch too large for the memory left would, on either training path."""
    from initlab.engine import training

    def out_of_memory(self, *args, **kwargs):
        raise MemoryError("Unable to allocate the batch buffers")

    monkeypatch.setattr(training._StepBinder, "__call__", out_of_memory)


@pytest.mark.parametrize("built", [True, False])
@pytest.mark.parametrize("failure", ["history", "buffers"])
def test_a_fit_whose_allocation_fails_leaves_the_model_bit_for_bit_as_it_was(
    monkeypatch, built, failure
):
    # The memory estimate passes (as on a machine that says it has plenty), and then an
    # allocation really fails: the learning rate, costs, history, optimizer state, shuffling
    # stream and weights stay as they were, and a model that was not built stays unbuilt.
    if built:
        model, X, Y = _trained_adam_model()
    else:
        X, Y = moons(40, noise=0.2, seed=0)
        model = post_model(seed=0)
        model.compile(loss="crossentropy", optimizer="adam")
    monkeypatch.setattr(checks, "available_memory", lambda: 10**30)
    if failure == "buffers":
        _fail_allocating_buffers(monkeypatch)
        epochs = 5
    else:
        epochs = 10**15  # 8 PB of history: NumPy cannot allocate it
    before = object_state(model)
    with pytest.raises(MemoryError):
        model.fit(X, Y, epochs=epochs, learning_rate=0.5, batch_size=16)
    assert object_state(model) == before
    assert model.built == built


@pytest.mark.parametrize("built", [True, False])
@pytest.mark.parametrize("method", ["he_normal", "lsuv"])
def test_an_initialize_that_runs_out_of_memory_midway_leaves_the_model_as_it_was(
    monkeypatch, built, method
):
    # The failure comes after every layer was re-drawn (a scheme) or after LSUV has rescaled
    # layers: everything is put back, and a model built for the call is unbuilt again.
    if built:
        model, X, _ = _trained_adam_model()
    else:
        X, _ = moons(40, noise=0.2, seed=0)
        model = post_model(seed=0)
    if method == "lsuv":
        import initlab.tools.lsuv as lsuv_module

        calls, original = [], lsuv_module._variance

        def variance_fails_late(number, z):
            calls.append(number)
            if number == 3:  # LSUV has rescaled the first two layers by now
                raise MemoryError("Unable to allocate")
            return original(number, z)

        monkeypatch.setattr(lsuv_module, "_variance", variance_fails_late)
    else:

        def fails_after_the_redraw(self, batch):
            raise MemoryError("Unable to allocate the pre-activations")

        monkeypatch.setattr(NeuralNetwork, "preactivation_variances", fails_after_the_redraw)
    before = object_state(model)
    with pytest.raises(MemoryError):
        model.initialize(X, method=method)
    monkeypatch.undo()
    assert object_state(model) == before
    assert model.built == built


def test_a_scale_the_dtype_cannot_hold_is_refused_when_the_model_is_built():
    X, Y = moons(40, noise=0.2, seed=0)
    model = NeuralNetwork(seed=0, dtype="float32")
    model.add(Dense(12, "relu"))
    model.add(Dense(1, "sigmoid", initializer=Initializer(scale=1e39)))
    model.compile(loss="crossentropy")
    before = object_state(model)
    with (
        np.errstate(all="raise"),
        pytest.raises(
            ValueError,
            match=r"layer 2's initializer .*scale=1e\+39.* drew weights beyond the largest "
            r"number of float32, 3.4e\+38; expected finite numbers: use a smaller scale or "
            r"dtype='float64'$",
        ),
    ):
        model.fit(X, Y, epochs=2)
    assert object_state(model) == before and not model.built
    # The same scale is representable in float64: it builds, and every weight is finite.
    model = NeuralNetwork([Dense(1, initializer=Initializer(scale=1e39))], seed=0)
    assert np.all(np.isfinite(model.predict(np.ones((2, 3)))))


def test_weights_beyond_float64_or_nan_are_refused_with_advice_that_fits():
    model = NeuralNetwork([Dense(1, initializer=Initializer(scale=1e308))], seed=0)
    with pytest.raises(
        ValueError,
        match=r"float64, 1.8e\+308; expected finite numbers: use a "
        r"smaller scale$",
    ):
        model.build(3)
    nan = NeuralNetwork([Dense(1, initializer=lambda shape, rng: np.full(shape, np.nan))])
    with pytest.raises(ValueError, match=r"drew weights that hold nan; expected finite numbers$"):
        nan.build(3)


@pytest.mark.parametrize("dtype", ["banana", None, "int32", complex, 5])
def test_a_dtype_that_is_no_float_is_named(dtype):
    with pytest.raises(
        ValueError, match=f"dtype must be 'float32' or 'float64', got {re.escape(repr(dtype))}"
    ):
        NeuralNetwork(dtype=dtype)


def test_flags_accept_numpy_booleans_and_callbacks_one_object():
    model, X, Y = _trained_adam_model()

    class Counter:
        epochs = 0

        def on_epoch_end(self, model, epoch, cost):
            self.epochs += 1

    counter = Counter()
    model.fit(X, Y, epochs=3, shuffle=np.False_, print_log=np.bool_(False), callbacks=counter)
    assert counter.epochs == 3
