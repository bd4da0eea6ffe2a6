"""The training loop's fast path gives the numbers of plain, obviously correct code.

References: a straightforward NumPy implementation of the post's network written here; the
library's plain path (layer.forward / layer.backward, the loss's from_logits, optimizer.step);
PyTorch float64 autograd for the gradients.
"""

import tracemalloc

import numpy as np
import pytest

from conftest import post_model
from initlab import Dense, Layer, NeuralNetwork
from initlab.blocks import activations, datasets, losses
from initlab.blocks.initializers import Initializer
from initlab.engine import training
from initlab.engine.parameters import pack_parameters

X, Y = datasets.moons(200, noise=0.2, seed=1)


def textbook_fit(X, Y, weights, epochs, learning_rate):
    """Full-batch gradient descent for relu, relu, sigmoid + binary cross-entropy, written out."""
    params = [(w.copy(), b.copy()) for w, b in weights]
    m = X.shape[1]
    history = []
    for _ in range(epochs):
        a0 = X
        z1 = params[0][0] @ a0 + params[0][1]
        a1 = np.maximum(z1, 0)
        z2 = params[1][0] @ a1 + params[1][1]
        a2 = np.maximum(z2, 0)
        z3 = params[2][0] @ a2 + params[2][1]
        p = 1 / (1 + np.exp(-z3))
        history.append(np.mean(-(Y * np.log(p) + (1 - Y) * np.log(1 - p))))
        dz3 = (p - Y) / m
        dz2 = (params[2][0].T @ dz3) * (z2 > 0)
        dz1 = (params[1][0].T @ dz2) * (z1 > 0)
        grads = [
            (dz @ a.T, dz.sum(axis=1, keepdims=True)) for dz, a in ((dz1, a0), (dz2, a1), (dz3, a2))
        ]
        params = [
            (w - learning_rate * dw, b - learning_rate * db)
            for (w, b), (dw, db) in zip(params, grads, strict=True)
        ]
    return np.array(history), params


def plain_step(model, X, Y):
    """One step on the library's plain path: what the fast path must reproduce."""
    a = X
    for layer in model.layers:
        a = layer.forward(a)
    cost, grad = model.loss_and_gradient(Y, a)
    for index in range(len(model.layers) - 1, -1, -1):
        grad = model.layers[index].backward(grad, need_input_grad=index > 0)
    model.optimizer.step(model.parameters, model.gradients)
    return cost


def plain_fit(model, X, Y, epochs, batch_size=None):
    """fit's epoch loop on the plain path, with the same minibatch orders as fit draws."""
    if not model.built:
        model.build(X.shape[0])
    rng = model.shuffle_generator()
    m = X.shape[1]
    history = []
    for _ in range(epochs):
        if batch_size is None:
            history.append(plain_step(model, X, Y))
            continue
        order = rng.permutation(m)
        total = 0.0
        for start in range(0, m, batch_size):
            index = order[start : start + batch_size]
            total += plain_step(model, X[:, index], Y[:, index]) * len(index)
        history.append(total / m)
    return np.array(history)


def test_fast_loop_matches_the_textbook_numpy_loop():
    model = post_model(seed=3)
    model.build(2)
    weights = [(layer.weights.copy(), layer.bias.copy()) for layer in model.layers]
    history = model.fit(X, Y, epochs=60, learning_rate=0.1)["loss"]
    expected_history, expected = textbook_fit(X, Y, weights, 60, 0.1)
    np.testing.assert_allclose(history, expected_history, rtol=1e-12)
    for layer, (w, b) in zip(model.layers, expected, strict=True):
        np.testing.assert_allclose(layer.weights, w, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(layer.bias, b, rtol=1e-10, atol=1e-14)


CASES = [
    # hidden activation, output activation, loss, optimizer, targets
    ("relu", "sigmoid", "crossentropy", "sgd", "binary"),
    ("tanh", "sigmoid", "crossentropy", "momentum", "binary"),
    ("sigmoid", "sigmoid", "crossentropy", "adam", "binary"),
    ("leaky_relu", "softmax", "categorical_crossentropy", "sgd", "classes"),
    ("relu", "softmax", "categorical_crossentropy", "adam", "classes"),
    ("tanh", "linear", "mse", "sgd", "regression"),
    ("relu", "sigmoid", "mse", "momentum", "binary"),  # no fused pair: the unfused path
    ("linear", "tanh", "mse", "sgd", "regression"),
]


def case_data(targets):
    if targets == "classes":
        Xc, labels = datasets.moons(150, noise=0.3, seed=2)
        return Xc, np.vstack([labels, 1 - labels, (Xc[0:1] > 0.5).astype(float)]) / np.vstack(
            [labels, 1 - labels, (Xc[0:1] > 0.5).astype(float)]
        ).sum(axis=0)
    if targets == "regression":
        Xr = np.random.default_rng(4).normal(size=(3, 90))
        return Xr, np.vstack([np.sin(Xr[0]) + Xr[1] ** 2, Xr[2] - Xr[0]])
    return X, Y


def case_model(hidden, output, loss, optimizer, n_outputs, seed=5):
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=7, activation=hidden, initializer="he"))
    model.add(Dense(units=5, activation=hidden, initializer="he"))
    model.add(Dense(units=n_outputs, activation=output, initializer="he"))
    model.compile(loss=loss, optimizer=optimizer)
    return model


@pytest.mark.parametrize("hidden, output, loss, optimizer, targets", CASES)
@pytest.mark.parametrize("batch_size", [None, 32])
def test_fast_loop_matches_the_plain_path(hidden, output, loss, optimizer, targets, batch_size):
    Xc, Yc = case_data(targets)
    fast = case_model(hidden, output, loss, optimizer, Yc.shape[0])
    plain = case_model(hidden, output, loss, optimizer, Yc.shape[0])
    history = fast.fit(Xc, Yc, epochs=15, learning_rate=0.05, batch_size=batch_size)["loss"]
    plain.optimizer.learning_rate = 0.05
    expected = plain_fit(plain, Xc, Yc, 15, batch_size)
    np.testing.assert_allclose(history, expected, rtol=1e-11)
    np.testing.assert_allclose(fast.parameters, plain.parameters, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("hidden, output, loss, optimizer, targets", CASES)
def test_gradients_of_a_fast_step_match_pytorch(hidden, output, loss, optimizer, targets):
    torch = pytest.importorskip("torch")
    Xc, Yc = case_data(targets)
    model = case_model(hidden, output, loss, optimizer, Yc.shape[0])
    model.build(Xc.shape[0])
    weights = [(layer.weights.copy(), layer.bias.copy()) for layer in model.layers]
    model.fit(Xc, Yc, epochs=1)  # the gradients stay in model.gradients after the update

    params = [
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
        for w, b in weights
    ]
    hidden_f = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "linear": lambda t: t,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
    }[hidden]
    a = torch.tensor(Xc)
    for w, b in params[:-1]:
        a = hidden_f(w @ a + b)
    z = params[-1][0] @ a + params[-1][1]
    y = torch.tensor(Yc)
    if loss == "crossentropy" and output == "sigmoid":
        cost = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    elif loss == "categorical_crossentropy":
        cost = -(y * torch.log_softmax(z, dim=0)).sum(dim=0).mean()
    else:
        out = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda t: t}[output](z)
        cost = torch.mean((out - y) ** 2)
    cost.backward()
    for layer, (w, b) in zip(model.layers, params, strict=True):
        np.testing.assert_allclose(layer.grads["weights"], w.grad.numpy(), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(layer.grads["bias"], b.grad.numpy(), rtol=1e-9, atol=1e-14)


class PlainDense(Dense):
    """Dense trained through the default Layer.training_steps: plain forward/backward + copies."""

    training_steps = Layer.training_steps


class Scale(Layer):
    """y = s * x elementwise per feature: a layer that knows nothing of the fast path."""

    def __init__(self):
        super().__init__()
        self.units = None

    def build(self, fan_in, rng, dtype=np.float64):
        self.units = fan_in
        self.params = {"scale": rng.uniform(0.5, 1.5, size=(fan_in, 1)).astype(dtype)}
        self.grads = {"scale": np.zeros((fan_in, 1), dtype)}

    def forward(self, x):
        self.cache = x
        return self.params["scale"] * x

    def backward(self, grad_output, need_input_grad=True):
        x = self.cache
        np.sum(grad_output * x, axis=-1, keepdims=True, out=self.grads["scale"])
        return self.params["scale"] * grad_output if need_input_grad else None

    def get_config(self):
        return {"class": "Scale"}


def test_a_layer_without_a_fast_path_trains_in_the_same_loop():
    # Dense through the generic default gives Dense's numbers; a foreign layer trains too.
    def make(dense):
        model = NeuralNetwork(seed=8)
        model.add(dense(units=9, activation="tanh", initializer="he"))
        model.add(Scale())
        model.add(dense(units=1, activation="sigmoid", initializer="he"))
        model.compile(loss="crossentropy", optimizer="momentum")
        return model

    fast, generic, plain = make(Dense), make(PlainDense), make(Dense)
    history = fast.fit(X, Y, epochs=25, batch_size=64)["loss"]
    np.testing.assert_allclose(
        generic.fit(X, Y, epochs=25, batch_size=64)["loss"], history, rtol=1e-11
    )
    np.testing.assert_allclose(plain_fit(plain, X, Y, 25, 64), history, rtol=1e-11)
    np.testing.assert_allclose(fast.parameters, plain.parameters, rtol=1e-9, atol=1e-13)
    assert history[-1] < history[0]


def traced_bytes(run, repeats):
    """(growth, peak above the start) of traced memory over `repeats` calls of run()."""
    for _ in range(50):  # NumPy fills some small caches of its own on the first calls
        run()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(repeats):
            run()
        end, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return end - start, peak - start


def test_an_epoch_allocates_no_arrays():
    model = post_model()
    model.fit(X, Y, epochs=1)
    Xc, Yc = model.check_data(X, Y)
    loop = training.TrainingLoop(
        model.layers,
        model.loss,
        model.optimizer,
        model.parameters,
        model.gradients,
        Xc,
        Yc,
        rngs=[model.shuffle_generator()],
    )
    growth, peak = traced_bytes(loop.run_epoch, 400)
    # One leaked array a epoch would keep at least 400 x 1.6 KB; NumPy's own small caches move
    # by a few bytes.
    assert growth < 4096, f"400 epochs kept {growth} bytes"
    # No array is allocated: the smallest one an epoch could make, (6, 200) float64, is 9.6 KB.
    assert peak < 6 * 200 * 8, f"an epoch's transient peak was {peak} bytes"


def test_float32_trains_in_float32_and_tracks_float64():
    single, double = post_model(dtype="float32"), post_model(dtype="float64")
    h32 = single.fit(X, Y, epochs=200, learning_rate=0.05)["loss"]
    h64 = double.fit(X, Y, epochs=200, learning_rate=0.05)["loss"]
    assert single.parameters.dtype == np.float32 and single.layers[0].weights.dtype == np.float32
    np.testing.assert_allclose(h32, h64, rtol=2e-5)
    np.testing.assert_allclose(single.parameters, double.parameters, rtol=1e-3, atol=1e-4)


def test_fused_crossentropy_step_is_exact_and_finite_at_huge_logits():
    loss = losses.get("crossentropy")
    z = np.array([[-1000.0, -30.0, -1e-3, 0.0, 2.5, 40.0, 1000.0, 800.0]])
    y = np.array([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    grad = np.empty_like(z)
    step, load = loss.training_step(y, z, grad, from_logits=True)
    load()
    cost = step()
    expected_cost, expected_grad = loss.from_logits(y, z)
    assert np.isfinite(cost) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(cost, expected_cost, rtol=1e-15)
    # from_logits computes sigmoid(z) - y, which rounds to 0 for z = 40, y = 1; the fast path
    # computes -sigmoid(-z) = -4.2e-18 exactly. Elsewhere they agree to the last bits.
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-14, atol=1e-18)
    assert grad[0, 5] == pytest.approx(-np.exp(-40.0) / 8, rel=1e-12)
    # a saturated wrong sample costs |z|, not a capped 11.5: 1000 twice, plus the moderate ones
    moderate = 2 * np.log(2) + 0.0005 + np.log1p(np.exp(2.5))
    assert cost == pytest.approx((2000 + moderate) / 8, rel=1e-6)


def test_fused_crossentropy_step_handles_stacked_models_and_new_targets():
    loss = losses.get("crossentropy")
    rng = np.random.default_rng(0)
    z = rng.normal(scale=4, size=(3, 1, 50))
    y = np.empty((1, 50))
    grad = np.empty_like(z)
    step, load = loss.training_step(y, z, grad, from_logits=True)
    for seed in range(2):  # a new batch of targets goes through load()
        y[...] = np.random.default_rng(seed).integers(0, 2, size=(1, 50))
        load()
        cost = step()
        expected_cost, expected_grad = loss.from_logits(y, z)
        assert cost.shape == (3,)
        np.testing.assert_allclose(cost, expected_cost, rtol=1e-14)
        # sigmoid(z) - 1 cancels in from_logits; the fast path's -sigmoid(-z) does not.
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-18)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_bound_activation_steps_match_forward_and_backward(name):
    activation = activations.get(name)
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 4, 30))
    z[0, 0, :3] = 0.0  # the kink of relu and leaky relu
    grad_a = rng.normal(size=z.shape)
    a, grad = np.empty_like(z), grad_a.copy()
    forward, backward = activation.training_steps(z, a, grad)
    for op in forward:
        op()
    for op in backward:
        op()
    expected_a = activation.forward(z)
    np.testing.assert_allclose(a, expected_a, rtol=1e-15)
    np.testing.assert_allclose(grad, activation.backward(z, expected_a, grad_a.copy()), rtol=1e-15)


def test_dense_packs_weights_and_bias_as_one_block_that_stays_in_sync():
    model = post_model()
    model.build(2)
    first = model.layers[0]
    assert np.shares_memory(first.weights, model.parameters)
    assert np.shares_memory(first.bias, model.parameters)
    np.testing.assert_array_equal(first.kernel, np.hstack([first.weights, first.bias]))
    first.weights = np.full((12, 2), 0.5)  # the post's way of setting weights
    first.bias = np.arange(12.0).reshape(12, 1)
    np.testing.assert_array_equal(first.kernel[:, :2], 0.5)
    np.testing.assert_array_equal(first.kernel[:, 2], np.arange(12.0))
    # a loaded model is packed the same way
    model.fit(X, Y, epochs=3)


def test_training_from_a_huge_initialisation_stays_finite():
    model = post_model(initializer=Initializer(scale=1000))
    history = model.fit(X, Y, epochs=20)["loss"]
    assert np.all(np.isfinite(history)) and np.all(np.isfinite(model.parameters))


def test_rebound_parameters_are_packed_again_and_trained():
    model, plain = post_model(seed=2), post_model(seed=2)
    for m in (model, plain):
        m.build(2)
        m.layers[1].params["weights"] = m.layers[1].params["weights"] * 0.5  # a new array
    model.fit(X, Y, epochs=5)
    plain.parameters, plain.gradients = pack_parameters(plain.layers)
    plain_fit(plain, X, Y, 5)
    np.testing.assert_allclose(model.parameters, plain.parameters, rtol=1e-10)
    assert np.shares_memory(model.layers[1].weights, model.parameters)


def test_a_rolled_back_repack_leaves_no_stale_kernel():
    # LSUV packs fresh vectors, and on failure puts the old params views back: the kernel the
    # fast path uses is derived from those views, so it follows them.
    model, plain = post_model(seed=6), post_model(seed=6)
    model.build(2)
    saved = (
        [dict(layer.params) for layer in model.layers],
        [dict(layer.grads) for layer in model.layers],
        model.parameters,
        model.gradients,
    )
    pack_parameters(model.layers)  # new vectors ...
    for layer, params, grads in zip(model.layers, saved[0], saved[1], strict=True):
        layer.params, layer.grads = params, grads  # ... rolled back
    model.parameters, model.gradients = saved[2], saved[3]
    history = model.fit(X, Y, epochs=5)["loss"]
    np.testing.assert_allclose(history, plain_fit(plain, X, Y, 5), rtol=1e-11)
    np.testing.assert_allclose(model.parameters, plain.parameters, rtol=1e-10)


def test_a_callback_can_change_the_learning_rate_mid_fit():
    class Freeze:
        def on_epoch_end(self, model, epoch, cost):
            if epoch == 2:
                model.optimizer.learning_rate = 1e-300  # effectively zero from epoch 3 on

    model = post_model()
    history = model.fit(X, Y, epochs=8, learning_rate=0.5, callbacks=[Freeze()])["loss"]
    assert history[1] < history[0]
    np.testing.assert_allclose(history[4:], history[3], rtol=1e-12)
