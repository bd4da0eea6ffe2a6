"""LSUV and model.initialize: unit pre-activation variance per layer on real batches, orthonormal
starts, scheme re-draws equal to building with the scheme, reproducibility, and bad input."""

import warnings

import numpy as np
import pytest

from initlab import Dense, Initializer, NeuralNetwork
from initlab.blocks.datasets import moons


def preactivation_variances(model, X):
    """Var(z) of every layer, read from the model's own forward pass (each layer caches z)."""
    model.predict(X)
    return [float(np.var(layer.cache[1])) for layer in model.layers]


def deep_model(
    seed=0,
    widths=(32, 32, 32),
    activations=("relu", "tanh", "leaky_relu"),
    output=(1, "sigmoid"),
    **dense,
):
    model = NeuralNetwork(seed=seed)
    for units, activation in zip(widths, activations):
        model.add(Dense(units, activation=activation, **dense))
    model.add(Dense(output[0], activation=output[1]))
    model.compile(loss="crossentropy" if output[1] == "sigmoid" else "categorical_crossentropy")
    return model


def weights_of(model):
    return [layer.weights.copy() for layer in model.layers]


def test_lsuv_gives_every_layer_unit_variance_on_a_batch_of_digits():
    datasets = pytest.importorskip("sklearn.datasets")  # noqa: F841 - digits needs it
    from initlab.blocks.datasets import digits

    X, _, _, _ = digits(seed=0)
    batch = X[:, :256]
    model = deep_model(widths=(128, 64, 32), output=(10, "softmax"))
    report = model.initialize(batch, method="lsuv")
    variances = preactivation_variances(model, batch)
    assert [entry["layer"] for entry in report] == [1, 2, 3, 4]
    assert [entry["units"] for entry in report] == [128, 64, 32, 10]
    np.testing.assert_allclose([entry["variance"] for entry in report], variances, rtol=1e-12)
    assert all(abs(v - 1) < 0.1 for v in variances)
    assert all(1 <= entry["iterations"] <= 10 for entry in report)


def test_lsuv_weights_are_rescaled_orthonormal_matrices():
    X, _ = moons(200, noise=0.2, seed=0)
    model = deep_model(widths=(16, 64, 8))
    model.initialize(X, method="lsuv")
    for layer in model.layers:
        w = layer.weights
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        scale = gram[0, 0]
        np.testing.assert_allclose(gram, scale * np.eye(len(gram)), atol=1e-12 * scale)


def test_the_sigmoid_outputs_logits_are_what_lsuv_normalises():
    X, _ = moons(300, noise=0.2, seed=1)
    model = deep_model()
    model.initialize(X, method="lsuv", tol=0.01)
    model.predict(X)  # fills each layer's cache (input, z, a)
    logits = model.layers[-1].weights @ model.layers[-1].cache[0] + model.layers[-1].bias
    assert abs(np.var(logits) - 1) < 0.01
    # The probabilities, bounded in (0, 1), have a variance far below 1 (at most 1/4).
    assert np.var(model.predict(X)) < 0.25


def test_lsuv_iterates_when_biases_shift_the_pre_activation():
    X, _ = moons(300, noise=0.2, seed=2)
    bias = Initializer("random_uniform", minval=-1.0, maxval=1.0)
    model = deep_model(activations=("tanh", "tanh", "tanh"), bias_initializer=bias)
    report = model.initialize(X, method="lsuv", tol=0.01)
    assert max(entry["iterations"] for entry in report) > 1
    variances = preactivation_variances(model, X)
    assert all(abs(v - 1) < 0.01 for v in variances)
    # The biases were drawn by the layers' bias initializer, not reset to zero.
    assert model.layers[0].bias.any()


def test_lsuv_warns_and_reports_when_unit_variance_is_out_of_reach():
    # Biases spread over ±3 have variance 3 by themselves: no rescaling of W gets Var(z) to 1.
    X, _ = moons(300, noise=0.2, seed=2)
    bias = Initializer("random_uniform", minval=-3.0, maxval=3.0)
    model = deep_model(activations=("tanh", "tanh", "tanh"), bias_initializer=bias)
    with pytest.warns(RuntimeWarning) as caught:
        report = model.initialize(X, method="lsuv", max_iter=5)
    assert any("layer 1" in str(warning.message) for warning in caught)
    assert all(warning.filename == __file__ for warning in caught)  # points at the caller
    assert report[0]["iterations"] == 5 and report[0]["variance"] > 1.1
    np.testing.assert_allclose(
        [e["variance"] for e in report], preactivation_variances(model, X), rtol=1e-12
    )


def test_lsuv_is_reproducible_and_seeded_by_the_model():
    X, _ = moons(200, noise=0.2, seed=0)
    first, second, other = deep_model(seed=3), deep_model(seed=3), deep_model(seed=4)
    for model in (first, second, other):
        model.initialize(X, method="LSUV")
    for a, b in zip(weights_of(first), weights_of(second)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights_of(first)[0], weights_of(other)[0])


def test_lsuv_keeps_the_layers_initializers():
    X, _ = moons(100, noise=0.2, seed=0)
    model = deep_model(initializer="he_normal")
    model.initialize(X)
    assert [layer.initializer.method for layer in model.layers[:-1]] == ["he_normal"] * 3


@pytest.mark.parametrize(
    "method, params",
    [
        ("glorot_uniform", {}),
        ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}),
        ("orthogonal", {"gain": 2.0}),
    ],
)
def test_a_scheme_name_redraws_every_layer_as_building_with_it_would(method, params):
    X, _ = moons(100, noise=0.2, seed=0)
    redrawn = deep_model(seed=5)
    redrawn.build(2)
    report = redrawn.initialize(X, method=method, **params)
    built = deep_model(seed=5, initializer=Initializer(method, **params))
    built.layers[-1].initializer = Initializer(method, **params)
    built.build(2)
    for a, b in zip(weights_of(redrawn), weights_of(built)):
        np.testing.assert_array_equal(a, b)
    assert all(
        layer.initializer.get_config() == Initializer(method, **params).get_config()
        for layer in redrawn.layers
    )
    assert [entry["iterations"] for entry in report] == [0] * 4
    np.testing.assert_allclose(
        [e["variance"] for e in report], preactivation_variances(redrawn, X), rtol=1e-12
    )


def test_initialize_builds_an_unbuilt_model_and_resets_the_optimizer():
    X, Y = moons(100, noise=0.2, seed=0)
    model = deep_model()
    model.compile(loss="crossentropy", optimizer="adam")
    model.initialize(X)
    assert model.built
    model.fit(X, Y, epochs=3)
    assert model.optimizer._state is not None
    model.initialize(X, method="he_normal")
    assert model.optimizer._state is None


def test_a_model_trains_and_saves_after_lsuv(tmp_path):
    X, Y = moons(200, noise=0.2, seed=0)
    model = deep_model(seed=1)
    model.initialize(X[:, :64], method="lsuv")
    history = model.fit(X, Y, epochs=300, learning_rate=0.1)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    model.save(tmp_path / "model.npz")
    loaded = NeuralNetwork.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "X, method, options, message",
    [
        (None, "lsuv", {"tol": 0}, "tol"),
        (None, "lsuv", {"tol": -1.0}, "tol"),
        (None, "lsuv", {"tol": float("nan")}, "tol"),
        (None, "lsuv", {"max_iter": 0}, "max_iter"),
        (None, "lsuv", {"max_iter": 2.5}, "max_iter"),
        (None, "lsuv", {"tolerance": 0.1}, "tolerance"),
        (None, "he_normall", {}, "he_normall"),
        (None, "he_normal", {"mode": "fan_out"}, "mode"),
        (None, 3, {}, "method"),
        (np.zeros((2, 50)), "lsuv", {}, "variance 0.0"),
        (np.ones((3, 50)), "lsuv", {}, "3"),
    ],
)
def test_bad_input_raises_and_leaves_the_model_unchanged(X, method, options, message):
    data, _ = moons(50, noise=0.2, seed=0)
    X = data if X is None else X
    model = deep_model(initializer="he")
    model.build(2)
    before = model.parameters.copy()
    initializers = [layer.initializer for layer in model.layers]
    with pytest.raises(ValueError, match=message):
        model.initialize(X, method=method, **options)
    np.testing.assert_array_equal(model.parameters, before)
    assert [layer.initializer for layer in model.layers] == initializers
    # The layers still see the model's flat vector: a training step moves both.
    model.layers[0].weights[0, 0] += 1.0
    assert model.parameters[0] == before[0] + 1.0


def test_an_unconverged_layer_does_not_warn_when_it_is_within_tol():
    X, _ = moons(100, noise=0.2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deep_model().initialize(X, method="lsuv")
