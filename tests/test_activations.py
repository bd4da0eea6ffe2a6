"""Activations: values against their formulas and PyTorch, gradients against central differences."""

import math

import numpy as np
import pytest

from conftest import needs_wide_long_double, numerical_gradient
from initlab.blocks import activations

NAMES = sorted(activations.ACTIVATIONS)


def _z(shape=(4, 7), seed=0):
    z = np.random.default_rng(seed).normal(scale=2.0, size=shape)
    z[0, 0] = 0.3  # keep every entry away from relu's kink at 0, where no derivative exists
    return z


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name):
    act = activations.get(name)
    z = _z()
    weights = np.random.default_rng(1).normal(size=z.shape)  # L = sum(weights * f(z))

    def loss():
        return float(np.sum(weights * act.forward(z.copy())))

    a = act.forward(z.copy())
    analytic = act.backward(z, a, weights.copy())
    numeric = numerical_gradient(loss, z)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_forward_with_out_buffer_equals_without(name):
    act = activations.get(name)
    z = _z()
    out = np.empty_like(z)
    result = act.forward(z, out=out)
    np.testing.assert_array_equal(result, act.forward(z.copy()))


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_match_pytorch(name):
    torch = pytest.importorskip("torch")
    act = activations.get(name)
    z = _z(shape=(5, 9), seed=4)
    grad_a = np.random.default_rng(5).normal(size=z.shape)
    zt = torch.tensor(z, requires_grad=True)
    reference = {
        "linear": lambda t: t,
        "relu": torch.relu,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda t: torch.softmax(t, dim=0),  # units are on axis 0 of (units, m)
        "identity": lambda t: t,
        "gelu": torch.nn.functional.gelu,
        "silu": torch.nn.functional.silu,
        "swish": torch.nn.functional.silu,
        "softplus": torch.nn.functional.softplus,
        "elu": torch.nn.functional.elu,
        "selu": torch.selu,
    }[name]
    at = reference(zt)
    at.backward(torch.tensor(grad_a))
    a = act.forward(z.copy())
    np.testing.assert_allclose(a, at.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        act.backward(z, a, grad_a.copy()), zt.grad.numpy(), rtol=1e-10, atol=1e-14
    )


def test_sigmoid_and_softmax_are_finite_at_extreme_inputs():
    z = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]])
    a = activations.get("sigmoid").forward(z)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a[0, [0, 2, 4]], [0.0, 0.5, 1.0])
    s = activations.get("softmax").forward(np.vstack([z, -z]))
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(axis=0), 1.0)


@needs_wide_long_double
def test_sigmoid_is_within_a_few_ulps_of_the_exact_value_everywhere():
    # From e = exp(-|z|) alone: 1 / (1 + e) or e / (1 + e), against x87 extended precision,
    # out to where sigmoid(z) leaves float64's normal numbers (z = -708).
    z = np.concatenate([np.linspace(-708, 708, 14161), np.geomspace(1e-300, 1, 301)])
    z = np.concatenate([z, -z])[None]
    a = activations.get("sigmoid").forward(z)
    exact = 1 / (1 + np.exp(-z.astype(np.longdouble)))
    assert np.all(np.abs(a - exact) <= 2 * np.finfo(np.float64).eps * exact)
    special = activations.get("sigmoid").forward(np.array([[-np.inf, np.inf, np.nan, -0.0]]))
    np.testing.assert_equal(special, [[0.0, 1.0, np.nan, 0.5]])


def test_sigmoid_in_float32_is_within_three_ulps_of_the_exact_value():
    # Three float32 roundings (exp, 1 + e, the division) against float64, which is exact enough
    # here; out to where sigmoid(z) leaves float32's normal numbers (z = -87).
    z = np.linspace(-87, 87, 17401, dtype=np.float32)[None]
    a = activations.get("sigmoid").forward(z)
    assert a.dtype == np.float32
    exact = 1 / (1 + np.exp(-z.astype(np.float64)))
    assert np.all(np.abs(a - exact) <= 3 * np.finfo(np.float32).eps * exact)


def test_relu_gradient_at_zero_is_zero_like_pytorch():
    relu = activations.get("relu")
    z = np.zeros((2, 3))
    assert np.all(relu.backward(z, relu.forward(z), np.ones_like(z)) == 0)


def test_leaky_relu_slope_is_configurable_and_validated():
    act = activations.get({"name": "leaky_relu", "alpha": 0.3})
    np.testing.assert_allclose(act.forward(np.array([[-2.0, 2.0]])), [[-0.6, 2.0]])
    assert act.get_config() == {"name": "leaky_relu", "alpha": 0.3}
    with pytest.raises(ValueError, match="alpha"):
        activations.LeakyReLU(alpha=-1)


def test_registry_resolves_names_instances_and_none():
    assert isinstance(activations.get("ReLU"), activations.ReLU)
    relu = activations.ReLU()
    assert activations.get(relu) is relu
    assert isinstance(activations.get(None), activations.Linear)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        activations.get("swishy")
    message = str(error.value)
    assert "'swishy'" in message
    for name in NAMES:
        assert name in message


def test_wrong_type_is_rejected_with_its_value():
    with pytest.raises(ValueError, match="42"):
        activations.get(42)


ELEMENTWISE = sorted(name for name, cls in activations.ACTIVATIONS.items() if cls().elementwise)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_the_training_loops_bound_steps_give_the_reference_bits(name):
    act = activations.get(name)
    z = np.random.default_rng(7).normal(scale=3.0, size=(3, 4, 9))  # a stack of 3 models
    grad = np.random.default_rng(8).normal(size=z.shape)
    a, bound_grad = np.empty_like(z), grad.copy()
    forward, backward = act.training_steps(z, a, bound_grad)
    for op in forward + backward:
        op()
    np.testing.assert_array_equal(a, act.forward(z))
    np.testing.assert_array_equal(bound_grad, act.backward(z, act.forward(z), grad))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_stays_nan_forward_and_backward(name):
    act = activations.get(name)
    if name in ("linear", "identity"):
        pytest.skip("the identity passes the gradient on without looking at z")
    z = np.array([[np.nan, 1.0]])
    with np.errstate(invalid="ignore"):
        assert np.isnan(act.forward(z)[0, 0])
        assert np.isnan(act.backward(z, act.forward(z), np.ones_like(z))[0, 0])


def test_the_facts_other_parts_read():
    assert activations.get("relu").gain == pytest.approx(math.sqrt(2))
    assert activations.get("selu").gain == 0.75
    assert activations.get("selu").initializer == "lecun_normal"
    assert activations.get({"name": "leaky_relu", "alpha": 0.2}).gain == pytest.approx(
        math.sqrt(2 / 1.04)
    )
    assert activations.get("gelu").gain is None  # PyTorch has none
    z = np.array([[-2.0, -0.0, 0.5]])
    for name, expected in (("relu", [True, True, False]), ("leaky_relu", [True, True, False])):
        act = activations.get(name)
        np.testing.assert_array_equal(act.is_dead(z, act.forward(z))[0], expected)
    assert activations.get("tanh").is_dead(z, np.tanh(z)) is None
    assert activations.get("tanh").asymptotes == (-1.0, 1.0)
    assert activations.get({"name": "elu", "alpha": 2.0}).asymptotes == (-2.0,)
    assert activations.get("selu").asymptotes == (pytest.approx(-1.7580993408473766),)


def test_selu_keeps_a_unit_gaussian_signal_at_mean_zero_and_variance_one():
    # Klambauer et al.'s fixed point: z ~ N(0, 1) maps to mean 0 and variance 1. Integrated on
    # each side of the kink at 0, where a Gaussian quadrature across it would lose digits.
    quad = pytest.importorskip("scipy.integrate").quad
    selu = activations.get("selu")

    def moment(power):
        def integrand(z):
            return float(selu.forward(np.array(z))) ** power * math.exp(-z * z / 2)

        total = quad(integrand, -np.inf, 0)[0] + quad(integrand, 0, np.inf)[0]
        return total / math.sqrt(2 * math.pi)

    assert abs(moment(1)) < 1e-8 and abs(moment(2) - 1) < 1e-8


@pytest.mark.parametrize("name", ["sigmoid", "softmax"])
def test_harmless_underflow_never_raises_even_under_errstate_raise(name):
    # sigmoid(-800) and a class 800 below the best are 0: the right answer, not an error.
    activation = activations.get(name)
    z = np.array([[-800.0, 0.0], [0.0, 800.0]])
    out = np.empty_like(z)
    with np.errstate(all="raise"):
        forward = activation.forward(z)
        forward_ops, _ = activation.training_steps(z, out, np.empty_like(z))
        for op in forward_ops:
            op()
    expected = {"sigmoid": [[0.0, 0.5], [0.5, 1.0]], "softmax": [[0.0, 0.0], [1.0, 1.0]]}[name]
    np.testing.assert_allclose(forward, expected, atol=1e-300)
    np.testing.assert_array_equal(out, forward)
    # Overflow is still an error: only underflow is ignored, and only there.
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        np.exp(np.array([800.0]))
