"""The one registry: names, configs, did-you-mean, and building blocks a user registers from their
own code, which then work on every path (fit with NumPy and compiled, predict, LSUV, the
diagnostics, the study commands)."""

import json
import math

import numpy as np
import pytest

from conftest import assert_one_sgd_step_follows_central_differences
from initlab import Dense, NeuralNetwork
from initlab.blocks import activations, losses, optimizers
from initlab.blocks.datasets import moons
from initlab.registry import Registry
from initlab.tools.diagnostics import measure


class BentIdentity(activations.Activation):
    """f(z) = (sqrt(z² + 1) - 1) / 2 + z: smooth, unbounded, never dead or saturated."""

    def function(self, z, math):
        return 0.5 * (math.sqrt(z * z + 1.0) - 1.0) + z

    def derivative(self, z, a, math):
        return z / (2.0 * math.sqrt(z * z + 1.0)) + 1.0


class MeanAbsoluteError(losses.Loss):
    """L = mean |y_pred - y|; dL/dy_pred = sign(y_pred - y) / count."""

    def definition(self, y_pred, y, math):
        d = y_pred - y
        return math.abs(d), math.where(d > 0.0, 1.0, -1.0)


@pytest.fixture
def registered():
    """bent_identity and mae registered as a user would, and removed afterwards."""
    activations.register("bent_identity")(BentIdentity)
    losses.register("mae")(MeanAbsoluteError)
    yield
    del activations.ACTIVATIONS["bent_identity"]
    del losses.LOSSES["mae"]


def _model(loss="crossentropy", output="sigmoid", seed=0):
    model = NeuralNetwork(seed=seed)
    model.add(Dense(8, activation="bent_identity", initializer="glorot_uniform"))
    model.add(Dense(1, activation=output, initializer="glorot_uniform"))
    model.compile(loss=loss)
    return model


def test_names_configs_instances_and_defaults_resolve():
    assert isinstance(activations.get("ReLU"), activations.ReLU)
    assert activations.get({"name": "leaky_relu", "alpha": 0.2}).alpha == 0.2
    assert isinstance(losses.get(None), losses.BinaryCrossentropy)  # the design's default
    assert isinstance(optimizers.get(None), optimizers.SGD)
    assert activations.get("swish").name == "silu"  # an alias keeps the class's name
    relu = activations.ReLU()
    assert activations.get(relu) is relu


def test_an_unknown_name_lists_the_valid_ones_and_suggests_the_closest():
    with pytest.raises(ValueError) as error:
        activations.get("rleu")
    message = str(error.value)
    assert "'rleu' is not known" in message and "'relu'" in message
    assert message.endswith("did you mean 'relu'?")
    with pytest.raises(ValueError, match="did you mean 'adam'"):
        optimizers.get("adma")


def test_a_bad_config_names_the_family_and_the_config():
    with pytest.raises(ValueError, match="activation config .* does not fit LeakyReLU"):
        activations.get({"name": "leaky_relu", "slope": 0.2})
    with pytest.raises(ValueError, match="activation must be a name"):
        activations.get(3)


def test_only_subclasses_of_the_family_register():
    registry = Registry("widget", activations.Activation)
    with pytest.raises(ValueError, match="only subclasses of Activation"):
        registry.register("x")(int)


def test_a_registered_activation_trains_with_exact_gradients(registered):
    X, Y = moons(40, noise=0.2, seed=1)
    assert_one_sgd_step_follows_central_differences(_model(), X, Y)


def test_a_registered_activation_and_loss_compile_from_their_definitions(registered):
    pytest.importorskip("numba")
    X, Y = moons(60, noise=0.2, seed=2)
    for loss, output in (("crossentropy", "sigmoid"), ("mae", "bent_identity")):
        numpy_model, jit_model = _model(loss, output), _model(loss, output)
        expected = numpy_model.fit(X, Y, epochs=40, learning_rate=0.05)["loss"]
        history = jit_model.fit(X, Y, epochs=40, learning_rate=0.05, jit_compile=True)["loss"]
        np.testing.assert_allclose(history, expected, rtol=1e-12)


def test_a_registered_activation_works_in_predict_lsuv_and_the_diagnostics(registered):
    X, Y = moons(200, noise=0.2, seed=3)
    model = _model()
    report = model.initialize(X, method="lsuv")
    assert [round(entry["variance"], 9) for entry in report] == [1.0, 1.0]
    p = model.predict(X)
    assert p.shape == (1, 200) and np.all((p > 0) & (p < 1))
    first = measure(model, X, Y)[0]
    assert first.activation == "bent_identity"
    assert first.dead_fraction is None and first.saturated_fraction is None
    z = model.layers[0].preactivation(X)
    assert first.activation_std == pytest.approx(np.std(0.5 * (np.sqrt(z * z + 1) - 1) + z))


def test_a_registered_activation_is_a_choice_of_the_study_commands(registered, tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    from initlab.cli import main

    out = tmp_path / "diag"
    main(
        [
            "diagnose",
            "--depth",
            "3",
            "--width",
            "8",
            "--activation",
            "bent_identity",
            "--schemes",
            "glorot_uniform",
            "--out",
            str(out),
        ]
    )
    rows = json.loads((out / "layers.json").read_text())
    hidden = [row for row in rows if row.get("activation") == "bent_identity"]
    assert len(hidden) == 3
    assert all(math.isfinite(row["activation_std"]) for row in hidden)
