"""Diagnostics: signal scale through deep relu networks (He vs N(0, 0.01)), exact dead and
saturated fractions on hand-set weights, gradient stds against PyTorch float64 autograd, the
recording callback, and that a diagnostic pass changes nothing in the model."""

import json

import numpy as np
import pytest

from initlab import Dense, Initializer, NeuralNetwork
from initlab.tools.diagnostics import FIELDS, LayerRecord, SignalRecorder, layer_signals, measure


def _deep_relu(initializer, seed, depth=20, width=64):
    model = NeuralNetwork(seed=seed)
    for _ in range(depth):
        model.add(Dense(width, "relu", initializer=initializer))
    model.add(Dense(10, "softmax", initializer=initializer))
    model.compile(loss="categorical_crossentropy")
    return model


def _batch(seed, n_features=64, m=256, n_classes=10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_features, m))
    Y = np.eye(n_classes)[rng.integers(0, n_classes, m)].T
    return X, Y


def _forward_ratio(records, depth=20):
    return records[depth - 1].activation_std / records[0].activation_std


def test_he_keeps_relu_signal_scale_over_20_layers():
    # One draw of a width-64 network fluctuates: log(ratio) has a spread of about
    # sqrt(5 * depth / width) / 2 ~ 0.6 (Hanin 2018), so a single seed is outside a factor 2 about
    # a quarter of the time. He's claim is about the typical draw: test the geometric mean over
    # seeds, and that no draw drifts far.
    ratios = [_forward_ratio(measure(_deep_relu("he", seed), *_batch(seed))) for seed in range(10)]
    geometric_mean = np.exp(np.mean(np.log(ratios)))
    assert 0.5 < geometric_mean < 2.0
    assert all(1 / 8 < ratio < 8 for ratio in ratios)


def test_small_normal_signal_vanishes_over_20_layers():
    # Each relu layer multiplies the std by 0.01 * sqrt(64 / 2) ~ 0.057: ~1e-24 after 19 layers.
    for seed in range(3):
        records = measure(_deep_relu(Initializer(scale=0.01), seed), *_batch(seed))
        assert _forward_ratio(records) < 1e-6


def test_large_normal_signal_explodes_over_20_layers():
    records = measure(_deep_relu(Initializer(scale=10.0), 0), *_batch(0))
    assert _forward_ratio(records) > 1e6


def _hand_built(activation, weights, bias, X):
    model = NeuralNetwork(seed=0, layers=[Dense(len(weights), activation), Dense(1, "sigmoid")])
    model.compile(loss="crossentropy")
    model.build(X.shape[0])
    model.layers[0].weights = weights
    model.layers[0].bias = np.asarray(bias, dtype=float).reshape(-1, 1)
    Y = (np.arange(X.shape[1]) % 2).reshape(1, -1).astype(float)
    return measure(model, X, Y)[0]


def test_dead_relu_fraction_is_exact():
    X = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 1.0, -2.0]])
    weights = np.array(
        [
            [-1.0, 0.0],  # z = -x1 + 0 - 10 < 0 on every sample: dead
            [0.0, 0.0],  # z = 0 exactly: relu gives 0 on every sample, dead
            [1.0, 0.0],  # z = x1: positive on three samples, zero on one
            [0.0, 0.0],  # z = 1 (bias): always on
            [1.0, 1.0],  # z = x1 + x2 - 3.5: only sample 2 (z = -0.5)... never positive: dead
        ]
    )
    bias = [-10.0, 0.0, 0.0, 1.0, -3.5]
    record = _hand_built("relu", weights, bias, X)
    assert record.dead_fraction == 3 / 5
    # zeros: 4 + 4 + 1 + 0 + 4 of 20 activations
    assert record.zero_fraction == 13 / 20
    assert record.saturated_fraction is None and record.saturated_value_fraction is None


def test_saturated_tanh_fraction_is_exact():
    X = np.array([[1.0, -1.0, 0.5, 2.0]])
    weights = np.array([[0.0], [0.0], [0.0], [3.0]])
    # tanh(3) = 0.9951 and tanh(-3) saturate; tanh(2) = 0.964 does not; unit 4: z = 3 x.
    bias = [3.0, -3.0, 2.0, 0.0]
    record = _hand_built("tanh", weights, bias, X)
    assert record.saturated_fraction == 2 / 4
    # unit 4: |3x| = 3, 3, 1.5, 6 -> 3 of 4 samples saturated
    assert record.saturated_value_fraction == (4 + 4 + 0 + 3) / 16
    assert record.dead_fraction is None


def test_saturated_sigmoid_fraction_is_exact():
    X = np.array([[1.0, -1.0, 0.0]])
    weights = np.array([[0.0], [0.0], [0.0], [5.0]])
    # sigmoid(5) = 0.9933 and sigmoid(-5) = 0.0067 saturate, sigmoid(4) = 0.982 does not.
    bias = [5.0, -5.0, 4.0, 0.0]
    record = _hand_built("sigmoid", weights, bias, X)
    assert record.saturated_fraction == 2 / 4
    assert record.saturated_value_fraction == (3 + 3 + 0 + 2) / 12


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_statistics_match_pytorch_autograd(activation):
    torch = pytest.importorskip("torch")
    model = NeuralNetwork(seed=1)
    for units in (7, 6, 5):
        model.add(Dense(units, activation, initializer="he"))
    model.add(Dense(4, "softmax", initializer="he"))
    model.compile(loss="categorical_crossentropy")
    X, Y = _batch(2, n_features=3, m=11, n_classes=4)
    records = measure(model, X, Y)

    a = torch.tensor(X)
    zs, acts, weights = [], [], []
    f = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation]
    for index, layer in enumerate(model.layers):
        W = torch.tensor(layer.weights, requires_grad=True)
        z = W @ a + torch.tensor(layer.bias)
        a = torch.softmax(z, dim=0) if index == len(model.layers) - 1 else f(z)
        z.retain_grad()
        a.retain_grad()
        zs.append(z), acts.append(a), weights.append(W)
    loss = -(torch.tensor(Y) * torch.log(a)).sum() / X.shape[1]
    loss.backward()

    def std(t):
        return t.detach().std(correction=0).item()

    for index, record in enumerate(records):
        assert record.preactivation_mean == pytest.approx(zs[index].mean().item(), rel=1e-12)
        assert record.preactivation_std == pytest.approx(std(zs[index]), rel=1e-12)
        assert record.activation_mean == pytest.approx(acts[index].mean().item(), rel=1e-12)
        assert record.activation_std == pytest.approx(std(acts[index]), rel=1e-12)
        assert record.preactivation_grad_std == pytest.approx(std(zs[index].grad), rel=1e-9)
        assert record.weight_grad_std == pytest.approx(std(weights[index].grad), rel=1e-9)
        assert record.weight_std == pytest.approx(std(weights[index]), rel=1e-12)
        if index < len(records) - 1:
            assert record.activation_grad_std == pytest.approx(std(acts[index].grad), rel=1e-9)
    # The softmax output's loss takes the logits, so dL/dp is not formed.
    assert records[-1].activation_grad_std is None


def test_signals_are_copies_not_the_layers_buffers():
    model = _deep_relu("he", 0, depth=3, width=8)
    X, Y = _batch(0, m=20)
    first = layer_signals(model, X, Y)
    snapshot = [{k: None if v is None else v.copy() for k, v in s.items()} for s in first]
    layer_signals(model, X[:, ::-1].copy(), Y[:, ::-1].copy())  # a second pass, other data
    for signal, saved in zip(first, snapshot, strict=True):
        for key, value in signal.items():
            if value is not None:
                np.testing.assert_array_equal(value, saved[key])


def test_a_pass_larger_than_predicts_parts_keeps_no_buffers():
    from initlab.engine.model import INFERENCE_SAMPLES

    model = _deep_relu("he", 0, depth=2, width=8)
    X, Y = _batch(0, n_features=4, m=INFERENCE_SAMPLES + 1)
    signals = layer_signals(model, X, Y)
    assert signals[0]["preactivation"].shape == (8, INFERENCE_SAMPLES + 1)
    # The signals are copies; the layers' buffers of X's size went with the pass.
    assert all(layer._buffers == {} and layer.cache is None for layer in model.layers)
    # A batch's size keeps them, for the next measurement of that batch.
    layer_signals(model, X[:, :100], Y[:, :100])
    assert all(layer._buffers["z"].shape == (layer.units, 100) for layer in model.layers)


def _snapshot(model):
    state = model.optimizer._state
    return (
        model.parameters.copy(),
        model.gradients.copy(),
        None if state is None else [s.copy() for s in state],
        getattr(model.optimizer, "iterations", None),
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "momentum"])
def test_a_diagnostic_pass_leaves_the_model_bit_identical(optimizer):
    model = _deep_relu("he", 3, depth=4, width=16)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    X, Y = _batch(3, m=40)
    model.fit(X, Y, epochs=3, batch_size=16)
    before = _snapshot(model)
    measure(model, X[:, :25], Y[:, :25])
    after = _snapshot(model)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    for a, b in zip(after[2], before[2], strict=True):
        np.testing.assert_array_equal(a, b)
    assert after[3] == before[3]


def test_recorder_measures_exactly_the_epochs_asked_and_changes_nothing():
    X, Y = _batch(4, m=60)
    with_recorder = _deep_relu("he", 4, depth=3, width=8)
    with_recorder.compile(loss="categorical_crossentropy", optimizer="adam")
    recorder = SignalRecorder(X[:, :30], Y[:, :30], epochs=[7, 0, 3, 3, 12])
    with_recorder.fit(X, Y, epochs=10, batch_size=20, callbacks=[recorder])
    assert recorder.recorded_epochs == [0, 3, 7]
    n_layers = len(with_recorder.layers)
    assert [r.epoch for r in recorder.records] == [0] * n_layers + [3] * n_layers + [7] * n_layers
    assert [r.layer for r in recorder.records[:n_layers]] == list(range(1, n_layers + 1))

    without = _deep_relu("he", 4, depth=3, width=8)
    without.compile(loss="categorical_crossentropy", optimizer="adam")
    without.fit(X, Y, epochs=10, batch_size=20)
    np.testing.assert_array_equal(with_recorder.parameters, without.parameters)

    # The record of epoch 3 is what measure gives after 4 epochs of the same training.
    again = _deep_relu("he", 4, depth=3, width=8)
    again.compile(loss="categorical_crossentropy", optimizer="adam")
    again.fit(X, Y, epochs=4, batch_size=20)
    expected = measure(again, X[:, :30], Y[:, :30], epoch=3)
    assert recorder.records[n_layers : 2 * n_layers] == expected


@pytest.mark.parametrize("epochs", [[], [-1], [1.5], [True], "3", 5])
def test_recorder_rejects_bad_epochs(epochs):
    with pytest.raises(ValueError, match="epochs"):
        SignalRecorder(np.zeros((2, 3)), np.zeros((1, 3)), epochs=epochs)


def test_recorder_rejects_bad_data_before_training():
    model = NeuralNetwork(seed=0, layers=[Dense(4, "relu"), Dense(1, "sigmoid")])
    model.compile(loss="crossentropy")
    X, Y = np.zeros((2, 10)), np.zeros((1, 10))
    recorder = SignalRecorder(np.zeros((3, 10)), Y, epochs=[0])
    with pytest.raises(ValueError, match="features"):
        model.fit(X, Y, epochs=2, callbacks=[recorder])
    assert recorder.records == []


def test_measure_rejects_an_uncompiled_model():
    model = NeuralNetwork(layers=[Dense(2, "relu")])
    with pytest.raises(ValueError, match="compile"):
        measure(model, np.zeros((2, 3)), np.zeros((2, 3)))


def test_measure_builds_an_unbuilt_model_like_predict_does():
    X, Y = _batch(5, n_features=4, m=9)
    model = _deep_relu("he", 5, depth=2, width=6)
    measured = measure(model, X, Y)
    reference = _deep_relu("he", 5, depth=2, width=6)
    reference.predict(X)
    np.testing.assert_array_equal(model.parameters, reference.parameters)
    assert len(measured) == 3


def test_records_are_plain_serialisable_data():
    records = measure(_deep_relu("he", 0, depth=2, width=5), *_batch(0, m=12))
    rows = [record.as_dict() for record in records]
    assert list(rows[0]) == list(FIELDS)
    assert json.loads(json.dumps(rows)) == rows
    assert LayerRecord(**rows[1]) == records[1]
