"""Optimizers: each step against PyTorch's optimizer fed the same gradients, and validation."""

import numpy as np
import pytest

from initlab.blocks import optimizers


def _gradient_sequence(steps=25, size=7, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=size) for _ in range(steps)]


@pytest.mark.parametrize(
    "name, config, torch_factory",
    [
        ("sgd", {"learning_rate": 0.1}, lambda t, p: t.optim.SGD(p, lr=0.1)),
        (
            "momentum",
            {"learning_rate": 0.05, "momentum": 0.8},
            lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.8),
        ),
        (
            "adam",
            {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.99, "epsilon": 1e-7},
            lambda t, p: t.optim.Adam(p, lr=0.01, betas=(0.85, 0.99), eps=1e-7),
        ),
    ],
)
def test_steps_match_pytorch(name, config, torch_factory):
    torch = pytest.importorskip("torch")
    optimizer = optimizers.get({"name": name, **config})
    params = np.random.default_rng(1).normal(size=7)
    tparam = torch.tensor(params.copy(), requires_grad=True)
    toptim = torch_factory(torch, [tparam])
    for grad in _gradient_sequence():
        optimizer.step(params, grad)
        tparam.grad = torch.tensor(grad)
        toptim.step()
    np.testing.assert_allclose(params, tparam.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_sgd_is_params_minus_rate_times_grads():
    params, grads = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    optimizers.SGD(learning_rate=0.2).step(params, grads)
    np.testing.assert_allclose(params, [0.9, -2.05])


def test_reset_forgets_state():
    adam = optimizers.Adam()
    params = np.zeros(3)
    adam.step(params, np.ones(3))
    first = params.copy()
    adam.reset()
    params[:] = 0
    adam.step(params, np.ones(3))
    np.testing.assert_array_equal(params, first)


@pytest.mark.parametrize("rate", [0, -0.1, float("nan"), float("inf"), "fast", True])
def test_bad_learning_rate_is_named_and_echoed(rate):
    with pytest.raises(ValueError, match="learning_rate") as error:
        optimizers.SGD(learning_rate=rate)
    assert repr(rate) in str(error.value)


@pytest.mark.parametrize(
    "config",
    [
        {"name": "momentum", "momentum": 1.0},
        {"name": "adam", "beta_1": -0.1},
        {"name": "adam", "beta_2": 1.5},
        {"name": "adam", "epsilon": 0},
        {"name": "adam", "beta_1": "0.9"},
        {"name": "momentum", "momentum": True},
        {"name": "adam", "epsilon": "1e-8"},
    ],
)
def test_bad_hyperparameters_are_rejected(config):
    key = next(k for k in config if k != "name")
    with pytest.raises(ValueError, match=key):
        optimizers.get(config)


def test_registry():
    assert isinstance(optimizers.get(None), optimizers.SGD)
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    with pytest.raises(ValueError, match="rmsprop.*adam"):
        optimizers.get("rmsprop")
    config = optimizers.Momentum(0.3, 0.5).get_config()
    assert optimizers.get(config).get_config() == config


@pytest.mark.parametrize("name, count", [("sgd", 0), ("momentum", 1), ("adam", 2)])
def test_moments_carry_the_state_from_one_optimizer_to_another(name, count):
    # Copying the moments (and Adam's step count) into a fresh optimizer continues the run
    # exactly: they are all the state there is.
    grads = _gradient_sequence(steps=12)
    params = np.random.default_rng(2).normal(size=7)
    first = optimizers.get(name)
    fresh = first.moments(params)
    assert len(fresh) == count and all(not moment.any() for moment in fresh)
    for grad in grads[:6]:
        first.step(params, grad)
    second = optimizers.get(name)
    for target, moment in zip(second.moments(params), first.moments(params), strict=True):
        target[...] = moment
    if name == "adam":
        second.iterations = first.iterations
    other = params.copy()
    for grad in grads[6:]:
        first.step(params, grad)
        second.step(other, grad)
    np.testing.assert_array_equal(other, params)
