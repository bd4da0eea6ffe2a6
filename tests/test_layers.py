"""Dense: forward against its formula, backward against central differences and PyTorch,
building from the first input, and stacking over a leading ensemble axis."""

import numpy as np
import pytest

from conftest import assert_one_sgd_step_follows_central_differences, numerical_gradient
from initlab import Dense, Initializer, Layer, NeuralNetwork
from initlab.blocks import activations

ACTIVATIONS = sorted(activations.ACTIVATIONS)


def _built(activation="tanh", units=4, fan_in=3, seed=0):
    layer = Dense(units=units, activation=activation, initializer=Initializer(seed=seed))
    layer.build(fan_in, rng=None)
    layer.bias[...] = np.random.default_rng(seed + 1).normal(size=(units, 1))
    return layer


def test_forward_is_activation_of_w_x_plus_b():
    layer = _built("tanh")
    x = np.random.default_rng(2).normal(size=(3, 5))
    np.testing.assert_allclose(layer.forward(x), np.tanh(layer.weights @ x + layer.bias))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_central_differences(activation):
    layer = _built(activation)
    x = np.random.default_rng(3).normal(size=(3, 6))
    upstream = np.random.default_rng(4).normal(size=(4, 6))  # L = sum(upstream * layer(x))

    def loss():
        return float(np.sum(upstream * layer.forward(x)))

    layer.forward(x)
    grad_x = layer.backward(upstream.copy()).copy()
    grads = {name: g.copy() for name, g in layer.grads.items()}
    np.testing.assert_allclose(
        grads["weights"], numerical_gradient(loss, layer.weights), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        grads["bias"], numerical_gradient(loss, layer.bias), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(grad_x, numerical_gradient(loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_forward_and_backward_match_pytorch_linear(activation):
    torch = pytest.importorskip("torch")
    layer = _built(activation, units=5, fan_in=4, seed=7)
    x = np.random.default_rng(8).normal(size=(4, 11))
    upstream = np.random.default_rng(9).normal(size=(5, 11))
    linear = torch.nn.Linear(4, 5, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.weights))  # same (units, fan_in) layout
        linear.bias.copy_(torch.tensor(layer.bias[:, 0]))
    xt = torch.tensor(x.T.copy(), requires_grad=True)
    out = getattr(torch, activation)(linear(xt))
    out.backward(torch.tensor(upstream.T.copy()))
    np.testing.assert_allclose(layer.forward(x), out.detach().numpy().T, rtol=1e-12)
    grad_x = layer.backward(upstream.copy())
    np.testing.assert_allclose(layer.grads["weights"], linear.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"][:, 0], linear.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad_x, xt.grad.numpy().T, rtol=1e-10)


def test_learns_fan_in_from_first_input_and_rejects_a_different_one():
    layer = Dense(units=3)
    assert not layer.built and layer.weights is None
    layer.build(5, rng=np.random.default_rng(0))
    assert layer.fan_in == 5 and layer.weights.shape == (3, 5) and layer.bias.shape == (3, 1)
    with pytest.raises(ValueError, match="expects 5 input features, got 4"):
        Dense(units=3, input_dim=5).build(4, rng=np.random.default_rng(0))


def test_setting_weights_copies_into_place_and_checks_shape():
    layer = _built()
    view = layer.weights
    layer.weights = np.ones((4, 3))
    assert layer.weights is view and np.all(view == 1)
    with pytest.raises(ValueError, match=r"weights must have shape \(4, 3\)"):
        layer.weights = np.ones((3, 4))


def test_leading_axis_trains_stacked_models_like_separate_ones():
    layers = [_built("relu", seed=s) for s in range(3)]
    stacked = _built("relu")
    stacked.params = {
        name: np.stack([layer.params[name] for layer in layers]) for name in ("weights", "bias")
    }
    stacked.grads = {name: np.zeros_like(value) for name, value in stacked.params.items()}
    x = np.random.default_rng(1).normal(size=(3, 6))
    upstream = np.random.default_rng(2).normal(size=(3, 4, 6))
    out = stacked.forward(x).copy()
    stacked.backward(upstream.copy(), need_input_grad=False)
    for k, layer in enumerate(layers):
        np.testing.assert_allclose(out[k], layer.forward(x))
        layer.backward(upstream[k].copy())
        np.testing.assert_allclose(stacked.grads["weights"][k], layer.grads["weights"])
        np.testing.assert_allclose(stacked.grads["bias"][k], layer.grads["bias"])


@pytest.mark.parametrize("units", [0, -3, 2.5, "12", None, True])
def test_bad_units_are_named_and_echoed(units):
    with pytest.raises(ValueError, match="units must be an integer >= 1") as error:
        Dense(units=units)
    assert repr(units) in str(error.value)


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'relux'.*relu"):
        Dense(units=2, activation="relux")


def test_initializer_returning_wrong_shapes_is_reported():
    layer = Dense(units=2, initializer=lambda shape: np.zeros((shape[1], shape[0])))
    with pytest.raises(ValueError, match=r"weights of shape \(3, 2\); expected \(2, 3\)"):
        layer.build(3, rng=np.random.default_rng(0))


class Scale(Layer):
    """y = s * x, one learned scale per feature: a layer that follows only the documented
    contract (units, build, forward, backward)."""

    def __init__(self, units):
        super().__init__()
        self.units = units

    def build(self, fan_in, rng, dtype=np.float64):
        assert fan_in == self.units, "a Scale layer keeps its input's size"
        self.params = {"scale": np.full((self.units, 1), 1.5, dtype)}
        self.grads = {"scale": np.zeros((self.units, 1), dtype)}

    def forward(self, x):
        self.cache = x
        return self.params["scale"] * x

    def backward(self, grad_output, need_input_grad=True):
        np.sum(grad_output * self.cache, axis=-1, keepdims=True, out=self.grads["scale"])
        return self.params["scale"] * grad_output if need_input_grad else None


def test_a_custom_layer_trains_first_in_the_model(moons_data):
    X, Y = moons_data
    model = NeuralNetwork(seed=0, layers=[Scale(2), Dense(6, "tanh"), Dense(1, "sigmoid")])
    model.compile(loss="crossentropy")
    assert_one_sgd_step_follows_central_differences(model, X, Y)


def test_a_custom_layer_trains_last_and_shows_in_the_summary(moons_data, capsys):
    X, Y = moons_data
    model = NeuralNetwork(seed=0, layers=[Dense(5, "tanh"), Dense(1), Scale(1)])
    model.compile(loss="mse")
    assert_one_sgd_step_follows_central_differences(model, X, Y)
    text = model.summary()
    assert "Scale 3" in text and "Dense 1" in text and "(1, m)" in text
    assert text.splitlines()[-1].startswith(f"Total params: {5 * 3 + 6 + 1}")


def test_backward_leaves_the_gradient_it_is_given_unchanged():
    layer = Dense(3, activation="tanh", initializer="he")
    layer.build(fan_in=2, rng=np.random.default_rng(0))
    layer.forward(np.random.default_rng(1).normal(size=(2, 5)))
    grad = np.random.default_rng(2).normal(size=(3, 5))
    kept = grad.copy()
    layer.backward(grad)
    np.testing.assert_array_equal(grad, kept)
