"""Losses: gradients against central differences, fused logit paths against PyTorch and the
unfused path, finiteness at any scale, and target validation."""

import numpy as np
import pytest

from conftest import needs_wide_long_double, numerical_gradient
from initlab.blocks import activations, expressions, losses


def _binary(shape=(1, 9), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=2.0, size=shape), (rng.random(shape) > 0.5).astype(float)


def _onehot(n_classes=4, m=9, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, m)
    return rng.normal(scale=2.0, size=(n_classes, m)), np.eye(n_classes)[:, labels]


CASES = {
    "crossentropy": _binary,
    "categorical_crossentropy": _onehot,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_from_logits_gradient_matches_central_differences(name):
    loss = losses.get(name)
    z, y = CASES[name]()
    _, grad = loss.from_logits(y, z.copy())
    numeric = numerical_gradient(lambda: float(loss.from_logits(y, z.copy())[0]), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_gradient_matches_central_differences(name):
    loss = losses.get(name)
    if loss.output_activation is None:
        rng = np.random.default_rng(2)
        y_pred, y = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    else:
        z, y = (_onehot if loss.output_activation == "softmax" else _binary)(seed=2)
        y_pred = activations.get(loss.output_activation).forward(z)
    numeric = numerical_gradient(lambda: float(loss(y, y_pred)), y_pred)
    np.testing.assert_allclose(loss.gradient(y, y_pred), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_path_equals_activation_then_loss(name):
    loss = losses.get(name)
    z, y = CASES[name](seed=5)
    p = activations.get(loss.output_activation).forward(z)
    cost, _ = loss.from_logits(y, z.copy())
    np.testing.assert_allclose(cost, loss(y, p), rtol=1e-12)


def test_binary_crossentropy_matches_pytorch_with_logits():
    torch = pytest.importorskip("torch")
    z, y = _binary(shape=(1, 50), seed=7)
    z[0, :3] = [-900.0, 0.0, 900.0]  # saturated both ways: still exact
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(y))
    expected.backward()
    cost, grad = losses.get("crossentropy").from_logits(y, z.copy())
    np.testing.assert_allclose(cost, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-16)


def test_binary_crossentropy_of_several_outputs_matches_pytorch_on_both_paths():
    # Three independent sigmoid outputs: the mean runs over outputs and samples, as Keras's
    # and PyTorch's do, and each output's gradient is its own p - y over that count.
    torch = pytest.importorskip("torch")
    z, y = _binary(shape=(3, 40), seed=11)
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(zt, torch.tensor(y))
    expected.backward()
    bce = losses.get("crossentropy")
    cost, grad = bce.from_logits(y, z.copy())
    np.testing.assert_allclose(cost, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-16)
    bound_grad = np.empty_like(z)
    step, load = bce.training_step(y.copy(), z.copy(), bound_grad, from_logits=True)
    load()
    np.testing.assert_allclose(step(), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(bound_grad, zt.grad.numpy(), rtol=1e-10, atol=1e-16)
    p = 1 / (1 + np.exp(-z))  # the unfused path, from probabilities
    np.testing.assert_allclose(bce(y, p), expected.item(), rtol=1e-9)


def test_categorical_crossentropy_matches_pytorch():
    torch = pytest.importorskip("torch")
    z, y = _onehot(n_classes=5, m=30, seed=8)
    zt = torch.tensor(z.T.copy(), requires_grad=True)  # torch wants (m, classes)
    expected = torch.nn.functional.cross_entropy(zt, torch.tensor(y.argmax(axis=0)))
    expected.backward()
    cost, grad = losses.get("categorical_crossentropy").from_logits(y, z.copy())
    np.testing.assert_allclose(cost, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy().T, rtol=1e-10, atol=1e-16)


def test_mse_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    y_pred, y = rng.normal(size=(2, 10)), rng.normal(size=(2, 10))
    pt = torch.tensor(y_pred, requires_grad=True)
    expected = torch.nn.functional.mse_loss(pt, torch.tensor(y))
    expected.backward()
    loss = losses.get("mse")
    np.testing.assert_allclose(loss(y, y_pred), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(loss.gradient(y, y_pred), pt.grad.numpy(), rtol=1e-12)


def test_crossentropy_is_finite_and_uncapped_at_huge_logits():
    # The post's ln(p + 1e-5) capped a confidently wrong sample's loss near 11.5; the exact loss
    # of a logit of -1000 on a positive label is 1000, and its gradient is -1, not ~0.
    cost, grad = losses.get("crossentropy").from_logits(np.array([[1.0]]), np.array([[-1000.0]]))
    assert np.isfinite(cost) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(cost, 1000.0)
    np.testing.assert_allclose(grad, [[-1.0]])


@needs_wide_long_double
def test_crossentropy_from_logits_is_within_a_few_ulps_of_the_exact_loss_and_gradient():
    # The loss softplus(u) and its gradient s sigmoid(u) (u = s z, s = 1 - 2y) from one
    # exponential, against both computed in x87 extended precision (64-bit significands).
    z = np.concatenate([np.linspace(-40, 40, 801), [-740.0, -700.0, -1e-300, 0.0, 700.0, 740.0]])
    for label in (0.0, 1.0):
        y = np.full_like(z, label)
        values, grad = expressions.evaluate(losses.get("crossentropy").logit_definition, z, y)
        u = np.longdouble(1 - 2 * label) * z.astype(np.longdouble)
        exact = np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))
        exact_grad = np.longdouble(1 - 2 * label) / (1 + np.exp(-u))
        eps = np.finfo(np.float64).eps
        # Past u = -708 the loss and the gradient are subnormal numbers, exact to their last bit.
        tiny = np.finfo(np.float64).tiny
        assert np.all(np.abs(values - exact) <= 2 * eps * np.abs(exact) + tiny), label
        assert np.all(np.abs(grad - exact_grad) <= 3 * eps * np.abs(exact_grad) + tiny), label


def test_zero_logits_cost_ln2():
    y = np.array([[0.0, 1.0, 1.0, 0.0]])
    cost, grad = losses.get("crossentropy").from_logits(y, np.zeros_like(y))
    np.testing.assert_allclose(cost, np.log(2))
    np.testing.assert_allclose(grad, (0.5 - y) / 4)


def test_costs_reduce_per_model_over_leading_axes():
    loss = losses.get("crossentropy")
    z, y = _binary(shape=(3, 1, 6), seed=1)
    costs, _ = loss.from_logits(y, z.copy())
    assert costs.shape == (3,)
    for k in range(3):
        np.testing.assert_allclose(costs[k], loss.from_logits(y[k], z[k].copy())[0])


def test_crossentropy_rejects_labels_other_than_0_and_1():
    with pytest.raises(ValueError, match=r"Y must hold labels 0 or 1.*2\.0"):
        losses.get("crossentropy").prepare_targets(np.array([[0.0, 1.0, 2.0]]), 1)


def test_categorical_encodes_class_indices_and_validates_them():
    loss = losses.get("categorical_crossentropy")
    onehot = loss.prepare_targets(np.array([[2.0, 0.0, 1.0]]), 3)
    np.testing.assert_array_equal(onehot, np.eye(3)[:, [2, 0, 1]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss.prepare_targets(np.array([[3.0, 0.0]]), 3)
    with pytest.raises(ValueError, match="one-hot"):
        loss.prepare_targets(np.array([[0.5, 1.0], [0.2, 0.0]]), 2)


def test_unknown_loss_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        losses.get("hinge")
    assert "'hinge'" in str(error.value) and "categorical_crossentropy" in str(error.value)


# Every path the training loop binds: (loss, from_logits). The plain paths get probabilities.
STEP_PATHS = [
    ("categorical_crossentropy", True),
    ("categorical_crossentropy", False),
    ("crossentropy", True),
    ("crossentropy", False),
    ("mse", False),
]
# (models' leading axes, targets' leading axes, targets transposed as the minibatch loop lays
# them out): one model, full batch and minibatch; stacked models with their own targets, and
# sharing one set of targets.
LAYOUTS = {
    "one model": ((), (), False),
    "one model, minibatch": ((), (), True),
    "stacked, minibatch": ((3,), (3,), True),
    "stacked, shared targets": ((3,), (), False),
}


def _targets(name, shape, rng):
    if name == "categorical_crossentropy":
        labels = rng.integers(0, shape[-2], shape[:-2] + shape[-1:])
        return np.moveaxis(np.eye(shape[-2])[labels], -1, -2)
    if name == "crossentropy":
        return rng.integers(0, 2, shape).astype(float)
    return rng.normal(size=shape)


def _bound_step(name, from_logits, lead, target_lead, transposed, n=4, m=50):
    """A loss step bound as the loop binds it: the output is a view above a row of ones."""
    loss = losses.get(name)
    n = 1 if name == "crossentropy" else n
    output = np.ones(lead + (n + 1, m))[..., :-1, :]
    target_shape = target_lead + (n, m)
    y = (
        np.swapaxes(np.empty(target_shape[:-2] + (m, n)), -1, -2)
        if transposed
        else np.empty(target_shape)
    )
    grad = np.empty(output.shape)
    step, load = loss.training_step(y, output, grad, from_logits=from_logits)
    return loss, output, y, grad, step, load


def _reference(loss, from_logits, y, output):
    if from_logits:
        return loss.from_logits(y, output.copy())
    return loss(y, output), loss.gradient(y, output)


def _fill(loss, from_logits, output, z):
    activation = loss.output_activation
    output[...] = z if from_logits or activation is None else activations.get(activation).forward(z)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize(("name", "from_logits"), STEP_PATHS)
def test_bound_step_equals_the_reference_path(name, from_logits, layout):
    lead, target_lead, transposed = LAYOUTS[layout]
    loss, output, y, grad, step, load = _bound_step(
        name, from_logits, lead, target_lead, transposed
    )
    rng = np.random.default_rng(4)
    for _ in range(2):  # a second batch of targets and outputs goes through load() again
        y[...] = _targets(name, y.shape, rng)
        _fill(loss, from_logits, output, rng.normal(scale=3.0, size=output.shape))
        load()
        cost = step()
        expected_cost, expected_grad = _reference(loss, from_logits, y, output)
        assert np.shape(cost) == lead
        np.testing.assert_allclose(cost, expected_cost, rtol=1e-13)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("layout", ["one model", "stacked, minibatch"])
@pytest.mark.parametrize(("name", "from_logits"), STEP_PATHS)
def test_bound_step_is_exact_and_finite_at_logits_of_1000(name, from_logits, layout):
    lead, target_lead, transposed = LAYOUTS[layout]
    loss, output, y, grad, step, load = _bound_step(
        name, from_logits, lead, target_lead, transposed, m=8
    )
    rng = np.random.default_rng(5)
    z = rng.choice([-1000.0, 0.0, 1000.0], size=output.shape)
    y[...] = _targets(name, y.shape, rng)
    _fill(loss, from_logits, output, z)  # probabilities of exactly 0 and 1 on the plain paths
    load()
    cost = step()
    expected_cost, expected_grad = _reference(loss, from_logits, y, output)
    assert np.all(np.isfinite(cost)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(cost, expected_cost, rtol=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-16)


def test_softmax_step_costs_a_wrong_logit_of_1000_exactly():
    # Logits (1000, -1000, 0) with the label on -1000: the loss is logsumexp - z_label = 2000
    # (the other terms are below the rounding of 1000); dL/dz = (p - y) / m = (1, -1, 0) / m.
    loss = losses.get("categorical_crossentropy")
    z = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    grad = np.empty_like(z)
    step, load = loss.training_step(y, z, grad, from_logits=True)
    load()
    assert step() == (2000.0 + np.log(3.0)) / 2
    np.testing.assert_allclose(grad[:, 0], [0.5, -0.5, 0.0], atol=1e-300)


@pytest.mark.parametrize("layout", ["one model, minibatch", "stacked, shared targets"])
@pytest.mark.parametrize(("name", "from_logits"), STEP_PATHS)
def test_bound_step_allocates_no_array(name, from_logits, layout):
    tracemalloc = pytest.importorskip("tracemalloc")
    lead, target_lead, transposed = LAYOUTS[layout]
    loss, output, y, grad, step, load = _bound_step(
        name, from_logits, lead, target_lead, transposed, n=10, m=256
    )
    rng = np.random.default_rng(6)
    y[...] = _targets(name, y.shape, rng)
    _fill(loss, from_logits, output, rng.normal(size=output.shape))
    load()
    step()  # the first call may set up NumPy's internals
    tracemalloc.start()
    try:
        for _ in range(100):
            load()
            step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The costs returned are small new objects; any temporary array would be as large as this.
    assert peak < output.nbytes, f"100 steps peaked at {peak} bytes; one output is {output.nbytes}"


def test_mse_has_no_fused_path():
    y = np.zeros((2, 5))
    with pytest.raises(ValueError, match="from_logits must be False"):
        losses.get("mse").training_step(y, y.copy(), y.copy(), from_logits=True)


def test_sparse_labels_train_exactly_as_one_hot():
    from initlab import Dense, NeuralNetwork

    rng = np.random.default_rng(7)
    X, labels = rng.normal(size=(4, 60)), rng.integers(0, 3, 60)
    histories = []
    for Y in (labels.reshape(1, -1).astype(float), np.eye(3)[:, labels]):
        model = NeuralNetwork(seed=0)
        model.add(Dense(8, "relu", initializer="he"))
        model.add(Dense(3, "softmax", initializer="glorot_uniform"))
        model.compile(loss="categorical_crossentropy")
        histories.append(model.fit(X, Y, epochs=3, batch_size=16, learning_rate=0.1)["loss"])
    np.testing.assert_array_equal(histories[0], histories[1])


# --- the plain paths in float32: probabilities of exactly 0 and 1 --------------------------------

# Every (target, prediction) pair of 0 and 1, twice, in one row: right and wrong, both ways.
_EDGE_Y = np.array([[0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
_EDGE_P = np.array([[0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]])


def _plain_paths(loss, y, p):
    """(cost, gradient) from __call__ and gradient, and from the bound training step."""
    grad = np.empty_like(p)
    step, load = loss.training_step(y.copy(), p.copy(), grad, from_logits=False)
    load()
    return [(loss(y, p), loss.gradient(y, p)), (step(), grad)]


def test_binary_crossentropy_clips_float32_below_1_and_keeps_float64_at_1e_15():
    loss = losses.get("crossentropy")
    eps32 = loss.eps_for(np.float32)
    # The bug: 1 - 1e-15 is 1.0 in float32, so ln(1 - p) was -inf at p = 1.
    assert np.float32(1 - 1e-15) == 1 and np.float32(1 - eps32) < 1
    assert eps32 == 2.0**-23 and loss.eps_for(np.float64) == 1e-15


def test_binary_crossentropy_plain_path_is_finite_in_float32_at_0_and_1():
    loss = losses.get("crossentropy")
    y, p = _EDGE_Y.astype(np.float32), _EDGE_P.astype(np.float32)
    # The float64 formula at the values float32 clips to, [2^-23, 1 - 2^-23].
    eps = 2.0**-23
    q = np.clip(_EDGE_P, eps, 1 - eps)
    expected_cost = -np.mean(_EDGE_Y * np.log(q) + (1 - _EDGE_Y) * np.log(1 - q))
    expected_grad = (q - _EDGE_Y) / (q * (1 - q)) / _EDGE_Y.size
    # Wrong answers cost -ln(2^-23) = 23 ln 2 whichever way round: the clipping is symmetric.
    np.testing.assert_allclose(expected_cost, 4 * 23 * np.log(2) / 8, rtol=1e-6)
    for cost, grad in _plain_paths(loss, y, p):
        assert np.isfinite(cost) and np.all(np.isfinite(grad))
        assert np.asarray(cost).dtype == np.float32 and grad.dtype == np.float32
        np.testing.assert_allclose(cost, expected_cost, rtol=1e-6)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)


def test_binary_crossentropy_plain_path_is_unchanged_in_float64():
    loss = losses.get("crossentropy")
    q = np.clip(_EDGE_P, 1e-15, 1 - 1e-15)
    expected_cost = -np.sum(_EDGE_Y * np.log(q) + (1 - _EDGE_Y) * np.log1p(-q)) / _EDGE_Y.size
    expected_grad = (q - _EDGE_Y) / (q * (1 - q)) / _EDGE_Y.size
    for cost, grad in _plain_paths(loss, _EDGE_Y, _EDGE_P):
        np.testing.assert_allclose(cost, expected_cost, rtol=1e-15)
        np.testing.assert_array_equal(grad, expected_grad)


def test_categorical_crossentropy_plain_path_is_finite_in_float32_at_0_and_1():
    # Its clip is [1e-15, 1]: no 1 - p, and 1e-15 is a normal float32, so nothing rounds to a
    # bound that breaks ln p or -y / p.
    loss = losses.get("categorical_crossentropy")
    y = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    p = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    q = np.clip(p, np.float32(1e-15).astype(np.float64), 1.0)  # the float32 bound, exactly
    expected_cost = -np.sum(y * np.log(q)) / 3
    expected_grad = -y / q / 3
    for cost, grad in _plain_paths(loss, y.astype(np.float32), p.astype(np.float32)):
        assert np.isfinite(cost) and np.all(np.isfinite(grad))
        np.testing.assert_allclose(cost, expected_cost, rtol=1e-6)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)


@pytest.mark.parametrize("name", ["crossentropy", "categorical_crossentropy"])
def test_from_logits_and_training_step_ignore_harmless_underflow_under_errstate_raise(name):
    loss = losses.get(name)
    z = np.array([[-800.0, 900.0], [800.0, -900.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    with np.errstate(all="raise"):
        cost, grad = loss.from_logits(y, z.copy())
        buffer_y, output, buffer_grad = y.copy(), z.copy(), np.empty_like(z)
        step, load = loss.training_step(buffer_y, output, buffer_grad, from_logits=True)
        load()
        bound_cost = step()
    # Every prediction is right by a wide margin: cost and gradient are 0 (to rounding).
    np.testing.assert_allclose(cost, 0.0, atol=1e-300)
    np.testing.assert_allclose(grad, 0.0, atol=1e-300)
    np.testing.assert_allclose(bound_cost, 0.0, atol=1e-300)
    np.testing.assert_allclose(buffer_grad, 0.0, atol=1e-300)
