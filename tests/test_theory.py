"""Mean-field theory: closed forms to 1e-9, the published tanh edge of chaos, real networks.

Closed forms used (each an exact Gaussian integral):
- relu: E[relu(√q z)²] = q/2, E[relu'(√q z)²] = 1/2 (so χ1 = σ_w²/2), and Cho & Saul's arc-cosine
  kernel E[relu(u1) relu(u2)] = q (sin θ + (π - θ) cos θ) / (2π), θ = arccos c.
- erf (an activation defined here, as a user would): E[erf(u1) erf(u2)] =
  (2/π) arcsin(2 q c / (1 + 2 q)) (Williams 1997), E[erf'(√q z)²] = (4/π) / √(1 + 4q).
- sign: E[sign(u1) sign(u2)] = (2/π) arcsin c (the arcsine kernel).
"""

import math

import numpy as np
import pytest

from initlab import Dense, Initializer, NeuralNetwork
from initlab.blocks.activations import Activation
from initlab.blocks.initializers import calculate_gain
from initlab.tools import theory

special = pytest.importorskip("scipy.special")


class Erf(Activation):
    """erf(z), erf'(z) = 2/√π exp(-z²): not registered, so the theory must work from the object."""

    name = "erf"

    def forward(self, z, out=None):
        return special.erf(z, out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, 2 / math.sqrt(math.pi) * np.exp(-z * z), out=out)


class Sign(Activation):
    name = "sign"

    def forward(self, z, out=None):
        return np.sign(z, out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, 0.0, out=out)


def arc_cosine(q, c):
    theta = np.arccos(c)
    return q * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)


WEIGHTS = np.array([0.3, 1.0, 1.5, 1.99])
BIASES = np.array([0.0, 0.05, 0.7])


# --- quadrature -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, moment",
    [
        (
            "half_normal",
            lambda k: 2 ** (k / 2) * math.gamma((k + 1) / 2) / (2 * math.sqrt(math.pi)),
        ),
        ("radial", lambda k: 2 ** (k / 2) * math.gamma(k / 2 + 1)),
    ],
)
def test_gauss_rules_integrate_polynomials_exactly(name, moment):
    nodes, weights = theory._gauss_rule(name, 40)
    assert np.all(nodes > 0)
    for k in range(0, 30):
        assert weights @ nodes**k == pytest.approx(moment(k), rel=1e-12)


def test_half_range_rule_is_exact_across_a_kink_where_gauss_hermite_is_not():
    # E|z| = √(2/π): the kink at 0 costs plain Gauss–Hermite 2e-3 at 128 nodes.
    assert theory.gaussian_expectation(np.abs, 1.0) == pytest.approx(
        math.sqrt(2 / math.pi), abs=1e-14
    )
    nodes, weights = np.polynomial.hermite_e.hermegauss(128)
    plain = weights @ np.abs(nodes) / math.sqrt(2 * math.pi)
    assert abs(plain - math.sqrt(2 / math.pi)) > 1e-4


def test_bivariate_expectation_matches_a_two_dimensional_scipy_integral_for_tanh():
    integrate = pytest.importorskip("scipy.integrate")
    for q1, q2, c in [(0.7, 1.3, 0.4), (2.0, 2.0, -0.8), (1.0, 0.5, 0.97)]:
        s = math.sqrt(1 - c * c)

        def integrand(z2, z1, q1=q1, q2=q2, c=c, s=s):
            u1, u2 = math.sqrt(q1) * z1, math.sqrt(q2) * (c * z1 + s * z2)
            density = math.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * math.pi)
            return math.tanh(u1) * math.tanh(u2) * density

        reference, _ = integrate.dblquad(integrand, -12, 12, -12, 12, epsabs=1e-13, epsrel=1e-13)
        value = theory.bivariate_expectation(np.tanh, np.tanh, q1, q2, c)
        assert value == pytest.approx(reference, abs=1e-10)


# --- relu: closed forms ------------------------------------------------------------------------
def test_relu_q_map_chi1_and_fixed_point_are_the_closed_forms():
    wv, bv = np.meshgrid(WEIGHTS, BIASES)
    for q in (0.01, 1.0, 37.0):
        np.testing.assert_allclose(theory.q_map("relu", wv, bv, q), wv * q / 2 + bv, rtol=1e-12)
    np.testing.assert_allclose(theory.chi1("relu", wv, bv), wv / 2, rtol=1e-12)
    np.testing.assert_allclose(
        theory.fixed_point("relu", wv[1:], bv[1:]), bv[1:] / (1 - wv[1:] / 2), rtol=1e-9
    )
    assert theory.fixed_point("relu", 1.0, 0.0) == 0.0  # shrinks to 0 without bias
    assert theory.fixed_point("relu", 2.5, 0.1) == np.inf  # grows without bound
    assert theory.fixed_point("relu", 2.0, 0.0, q0=3.0) == 3.0  # every q is fixed


def test_relu_correlation_map_is_the_arc_cosine_kernel():
    c = np.linspace(-1, 1, 21)
    for wv, bv, q in [(2.0, 0.0, 1.0), (1.5, 0.3, 2.7), (0.8, 0.05, 0.01)]:
        expected = (wv * arc_cosine(q, c) + bv) / (wv * q / 2 + bv)
        np.testing.assert_allclose(
            theory.correlation_map("relu", wv, bv, c, q=q), expected, rtol=0, atol=1e-12
        )


def test_relu_depth_scales():
    xi_q, xi_c = theory.depth_scales("relu", WEIGHTS, 0.2)
    expected = -1 / np.log(WEIGHTS / 2)
    np.testing.assert_allclose(xi_q, expected, rtol=1e-9)
    np.testing.assert_allclose(xi_c, expected, rtol=1e-9)  # ordered: c* = 1, χ_c = χ1
    assert theory.critical_weight_variance("relu", [0.0, 0.3]) == pytest.approx([2, 2], rel=1e-9)


# --- erf and sign: activations the registry does not know ---------------------------------------
def test_erf_closed_forms():
    erf = Erf()
    for q in (0.05, 1.0, 6.0):
        assert theory.q_map(erf, 1.0, 0.0, q) == pytest.approx(
            2 / np.pi * math.asin(2 * q / (1 + 2 * q)), abs=1e-12
        )
    for c in (-0.9, 0.0, 0.5, 0.999):
        q = 1.3
        kernel = 2 / np.pi * math.asin(2 * q * c / (1 + 2 * q))
        assert theory.correlation_map(erf, 2.0, 0.1, c, q=q) == pytest.approx(
            (2.0 * kernel + 0.1) / (2.0 * 2 / np.pi * math.asin(2 * q / (1 + 2 * q)) + 0.1),
            abs=1e-12,
        )
    q_star = theory.fixed_point(erf, 2.0, 0.1)
    assert q_star == pytest.approx(
        2 * 2 / np.pi * math.asin(2 * q_star / (1 + 2 * q_star)) + 0.1, rel=1e-12
    )
    assert theory.chi1(erf, 2.0, 0.1) == pytest.approx(
        2.0 * 4 / np.pi / math.sqrt(1 + 4 * q_star), rel=1e-12
    )
    # At σ_b² = 0 erf is critical where σ_w² erf'(0)² = 1: σ_w² = π/4.
    assert theory.critical_weight_variance(erf, 0.0) == pytest.approx(np.pi / 4, rel=1e-5)


def test_sign_correlation_map_is_the_arcsine_kernel():
    c = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(
        theory.correlation_map(Sign(), 1.0, 0.0, c, q=1.0), 2 / np.pi * np.arcsin(c), atol=1e-12
    )


def test_linear_and_leaky_relu():
    assert theory.chi1("linear", 0.7, 0.2) == pytest.approx(0.7, rel=1e-12)
    assert theory.correlation_map("linear", 0.7, 0.2, 0.3, q=2.0) == pytest.approx(
        (0.7 * 2 * 0.3 + 0.2) / (0.7 * 2 + 0.2), rel=1e-12
    )
    # leaky_relu(α): E[φ²] = q (1 + α²) / 2, E[φ'²] = (1 + α²) / 2.
    alpha = 0.01
    assert theory.q_map("leaky_relu", 1.0, 0.0, 2.0) == pytest.approx(1 + alpha**2, rel=1e-12)
    assert theory.critical_weight_variance("leaky_relu", 0.1) == pytest.approx(
        2 / (1 + alpha**2), rel=1e-9
    )


# --- tanh: the published phase boundary ---------------------------------------------------------
def test_tanh_edge_of_chaos_matches_poole_and_schoenholz():
    # Schoenholz et al. (2017) fig. 1 and §3 put tanh's edge at σ_w² ≈ 1.76 for σ_b² = 0.05
    # (σ_w ≈ 1.33, read off the figure to two decimals); at σ_b² = 0 it is σ_w² = 1 exactly
    # (Poole et al. 2016), where χ1 - 1 only grows like (σ_w² - 1)², hence 1e-6.
    edge = theory.critical_weight_variance("tanh", [0.0, 0.05])
    assert edge[0] == pytest.approx(1.0, abs=1e-6)
    assert edge[1] == pytest.approx(1.76, abs=0.01)
    assert math.sqrt(edge[1]) == pytest.approx(1.33, abs=0.005)
    assert theory.chi1("tanh", edge[1], 0.05) == pytest.approx(1.0, abs=1e-9)
    # The line rises with the bias: more bias, more weight variance to reach chaos.
    line = theory.critical_weight_variance("tanh", [0.01, 0.1, 0.3, 1.0])
    assert np.all(np.diff(line) > 0)


def test_tanh_phases_and_depth_scales_agree_with_iterating_the_maps():
    assert theory.chi1("tanh", 1.2, 0.05) < 1 < theory.chi1("tanh", 2.5, 0.05)
    assert theory.correlation_fixed_point("tanh", 1.2, 0.05) == 1.0
    c_star = theory.correlation_fixed_point("tanh", 2.5, 0.05)
    assert 0 < c_star < 1
    assert theory.correlation_map("tanh", 2.5, 0.05, c_star) == pytest.approx(c_star, abs=1e-12)
    xi_q, xi_c = theory.depth_scales("tanh", 2.5, 0.05)
    # |c^l - c*| shrinks by exp(-1/ξ_c) per layer near c*; likewise q with ξ_q.
    c = c_star + 1e-4
    ratio = (theory.correlation_map("tanh", 2.5, 0.05, c) - c_star) / (c - c_star)
    assert ratio == pytest.approx(math.exp(-1 / xi_c), rel=1e-3)
    q_star = theory.fixed_point("tanh", 2.5, 0.05)
    q = q_star * (1 + 1e-5)
    ratio = (theory.q_map("tanh", 2.5, 0.05, q) - q_star) / (q - q_star)
    assert ratio == pytest.approx(math.exp(-1 / xi_q), rel=1e-4)
    # ξ_c diverges at the edge.
    edge = theory.critical_weight_variance("tanh", 0.05)
    assert theory.depth_scales("tanh", edge * 1.001, 0.05)[1] > 200


# --- γ and the variance-preserving gain --------------------------------------------------------
def test_gamma_and_gain_against_closed_forms_and_pytorch():
    assert theory.gamma("relu") == pytest.approx(1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-12)
    assert theory.gamma("linear") == pytest.approx(1.0, rel=1e-12)
    rows = {row["activation"]: row for row in theory.gain_table()}
    assert "softmax" not in rows
    assert rows["relu"]["exact_gain"] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert rows["relu"]["pytorch_gain"] == calculate_gain("relu")
    assert rows["leaky_relu"]["exact_gain"] == pytest.approx(
        calculate_gain("leaky_relu", 0.01), rel=1e-12
    )
    # Where PyTorch's table is not the exact gain: tanh (5/3 against 1.5925) and sigmoid (1).
    assert rows["tanh"]["exact_gain"] == pytest.approx(1.59254, abs=1e-5)
    assert rows["tanh"]["relative_difference"] == pytest.approx(0.0465, abs=1e-4)
    assert rows["sigmoid"]["pytorch_gain"] == 1.0
    assert rows["sigmoid"]["exact_gain"] == pytest.approx(1.84623, abs=1e-5)
    # The gain is the σ_w whose fixed point at σ_b² = 0 is q* = 1.
    g = rows["tanh"]["exact_gain"]
    assert theory.q_map("tanh", g**2, 0.0, 1.0) == pytest.approx(1.0, rel=1e-12)


# --- refusals -----------------------------------------------------------------------------------
def test_softmax_and_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="'softmax' is not elementwise"):
        theory.chi1("softmax", 1.0, 0.0)
    with pytest.raises(ValueError, match="weight_variance must be a finite number >= 0, got -1"):
        theory.chi1("tanh", -1, 0.0)
    with pytest.raises(ValueError, match="bias_variance must be finite numbers >= 0"):
        theory.fixed_point("tanh", 1.0, [0.1, np.nan])
    with pytest.raises(ValueError, match="c must be correlations in"):
        theory.correlation_map("tanh", 1.0, 0.0, 1.5)
    with pytest.raises(ValueError, match="activation 'nope' is not known"):
        theory.q_map("nope", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        theory.propagate("tanh", 1.0, 0.0, depth=0)


# --- real networks ------------------------------------------------------------------------------
def test_propagate_starts_from_the_input_layer():
    q, c = theory.propagate("tanh", 1.5, 0.1, depth=4, q0=2.0, c0=0.25)
    assert q[0] == pytest.approx(1.5 * 2 + 0.1)
    assert c[0] == pytest.approx((1.5 * 2 * 0.25 + 0.1) / 3.1)
    assert q[1] == pytest.approx(theory.q_map("tanh", 1.5, 0.1, q[0]), rel=1e-14)
    assert c[1] == pytest.approx(theory.correlation_map("tanh", 1.5, 0.1, c[0], q=q[0]), rel=1e-14)


def test_input_pairs_have_the_exact_length_and_correlation():
    X = theory.input_pairs(50, pairs=7, q0=2.0, c0=-0.3, seed=4)
    assert X.shape == (50, 14)
    np.testing.assert_allclose(np.sum(X * X, axis=0) / 50, 2.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(X[:, 0::2] * X[:, 1::2], axis=0) / 100, -0.3, atol=1e-12)


@pytest.mark.parametrize(
    "activation, points",
    [
        ("tanh", [(1.76, 0.05), (3.0, 0.1), (2.5, 0.0)]),
        ("relu", [(1.5, 0.5), (1.0, 0.5), (0.5, 1.0)]),
    ],
)
def test_measured_variance_of_wide_deep_networks_follows_the_theory_at_every_layer(
    activation, points
):
    """Width 512, depth 30, 16 seeds, three (σ_w², σ_b²) points each for tanh and relu: the
    seeds' mean of q^l against the theory's, at every one of the 30 layers.

    Finite width makes each network's q^l wander: each layer averages over 512 units, and the
    errors compound along the depth where the length map does not contract. Measured over these
    16 seeds, one network's q^30 is 4-7% off the theory for tanh and 6-11% for relu (its
    standard deviation over seeds), so the mean of 16 has a standard error SE_l of up to 2%
    (tanh) and 3.8% (relu) at the deepest layers. tanh: every layer within 5% (measured: at
    most 3.6%, at layer 28 of σ_w² = 1.76). relu: every layer within 5% + 2 SE_l, at most 12.6%
    (measured: at most 6.0%, at layer 27 of (1.5, 0.5), 2.0 SE; the other two points within
    3.7%); a flat 5% at every layer would need about 45 seeds there. Every point: the mean over
    the layers within 2% and c^l within 0.05 at every layer. relu at σ_w² = 2, σ_b² = 0 (He) is
    left out: its length map has slope 1, so log q^l is a random walk (variance about 5 l /
    width, Hanin & Rolnick 2018) and even 16 seeds' mean sits 8% off at some layers, though the
    theory is its expectation.
    """
    depth, seeds = 30, range(16)
    for wv, bv in points:
        q, c = theory.measure_propagation(
            activation, wv, bv, depth, width=512, seeds=seeds, pairs=8
        )
        q_theory, c_theory = theory.propagate(activation, wv, bv, depth, q0=1.0, c0=0.5)
        ratio = q / q_theory  # (seeds, depth)
        error = np.abs(ratio.mean(axis=0) - 1)  # (depth,): every layer
        standard_error = ratio.std(axis=0, ddof=1) / math.sqrt(len(seeds))
        allowed = 0.05 if activation == "tanh" else 0.05 + 2 * standard_error
        assert np.all(error < allowed), (activation, wv, bv, error, allowed)
        assert np.all(allowed < 0.13)
        assert abs(ratio.mean() - 1) < 0.02, (activation, wv, bv, ratio.mean())
        assert np.all(np.abs(c.mean(axis=0) - c_theory) < 0.05)
        assert error[0] < 0.02  # the first layer: only the input's draw


def test_jacobian_of_a_deep_linear_gaussian_network_reaches_the_fuss_catalan_edge():
    width, depth = 1000, 4
    model = NeuralNetwork(
        seed=3,
        layers=[
            Dense(width, initializer=Initializer("random_normal", stddev=1 / math.sqrt(width)))
            for _ in range(depth)
        ],
    )
    model.build(width)
    singular = theory.jacobian_singular_values(model, np.ones(width))
    edge = (depth + 1) ** (depth + 1) / depth**depth  # 3125 / 256 = 12.2
    assert singular[0] ** 2 == pytest.approx(edge, rel=0.05)
    assert np.mean(singular**2) == pytest.approx(1.0, rel=0.03)  # E tr(JJᵀ)/N = σ_w^{2L}


def test_jacobian_of_an_orthogonal_linear_network_is_an_isometry():
    # Exact at any width (a product of orthogonal matrices); 300 keeps the QR draws quick.
    model = NeuralNetwork(seed=0, layers=[Dense(300, initializer="orthogonal") for _ in range(4)])
    model.build(300)
    singular = theory.jacobian_singular_values(model, np.ones(300))
    np.testing.assert_allclose(singular, 1.0, atol=1e-9)


def test_jacobian_mean_squared_singular_value_follows_the_product_of_chi():
    # E[tr(J Jᵀ)] / N = Π_l σ_w² E[φ'(√q^l z)²]: χ1 layer by layer along the q^l of propagate.
    width, depth, wv, bv = 400, 6, 1.76, 0.05
    values = []
    for seed in range(3):
        model = theory.gaussian_network("tanh", wv, bv, depth, width, seed=seed)
        x = theory.input_pairs(width, 1, q0=1.0, seed=seed)[:, 0]
        values.append(np.mean(theory.jacobian_singular_values(model, x) ** 2))
    q, _ = theory.propagate("tanh", wv, bv, depth)
    _, _, derivative = theory._phi_and_derivative("tanh")
    predicted = (
        np.prod(
            [wv * theory.gaussian_expectation(lambda u: derivative(u) ** 2, ql) for ql in q[:-1]]
        )
        * wv
    )
    # Over 12 seeds the mean is 0.851 +- 0.025 against 0.823; 3 seeds vary by about 6%.
    assert np.mean(values) == pytest.approx(predicted, rel=0.12)


def test_predict_signals_follows_relus_closed_form_layer_by_layer():
    model = theory.gaussian_network("relu", 1.5, 0.2, depth=4, width=64, seed=1, n_inputs=5)
    X = np.random.default_rng(0).normal(size=(5, 7))
    rows = theory.predict_signals(model, X)
    layers = model.layers
    wv = [
        layer.params["weights"].shape[1] * np.mean(layer.params["weights"] ** 2) for layer in layers
    ]
    bv = [np.mean(layer.params["bias"] ** 2) for layer in layers]
    q = wv[0] * np.mean(X * X, axis=0) + bv[0]
    for index, row in enumerate(rows):
        if index:
            q = wv[index] * q / 2 + bv[index]  # relu: E[relu(√q z)²] = q / 2
        assert row["q"] == pytest.approx(np.mean(q), rel=1e-12)
        # std of relu(√q z) pooled over inputs: E = √q/√(2π), E² = q/2.
        mean = np.mean(np.sqrt(q) / math.sqrt(2 * math.pi))
        assert row["activation_std"] == pytest.approx(
            math.sqrt(np.mean(q) / 2 - mean**2), rel=1e-12
        )


def test_expectations_on_one_rule_are_the_bits_of_one_at_a_time():
    q = np.geomspace(1e-3, 1e3, 7)
    functions = (np.tanh, lambda u: np.maximum(u, 0.0) ** 2, np.abs)
    together = theory.gaussian_expectations(functions, q)
    for f, expectation in zip(functions, together, strict=True):
        assert np.array_equal(expectation, theory.gaussian_expectation(f, q))
    # E|√q z| = √(2q/π): the closed form, at every q.
    np.testing.assert_allclose(together[2], np.sqrt(2 * q / np.pi), rtol=1e-12)


def test_a_homogeneous_function_is_ruled_once_and_scaled_exactly_at_every_q():
    _, phi, derivative = theory._phi_and_derivative("relu")
    q = np.array([0.0, 1e-300, 1e-6, 0.3, 1.0, 7.0, 1e12])
    second, mean, slope = theory.gaussian_expectations(
        (theory._squared(phi), phi, theory._squared(derivative)), q
    )
    # relu: E[relu(√q z)²] = q/2, E[relu(√q z)] = √(q/2π), E[relu'(√q z)²] = 1/2 for q > 0; at
    # q = 0 every sample is relu's at 0 (its derivative there is 0, as in the NumPy path).
    np.testing.assert_allclose(second, q / 2, rtol=1e-13, atol=0)
    np.testing.assert_allclose(mean, np.sqrt(q / (2 * np.pi)), rtol=1e-13, atol=0)
    np.testing.assert_allclose(slope[1:], 0.5, rtol=1e-13)
    assert slope[0] == derivative(np.zeros(1))[0] ** 2


def test_a_homogeneous_function_is_evaluated_on_one_rule_whatever_the_number_of_qs():
    calls = []

    def square(u):  # u², homogeneous of degree 2: E[(√q z)²] = q
        calls.append(u.shape)
        return u * u

    square.homogeneous_degree = 2
    q = np.array([[0.0, 0.5, 3.0], [1e-8, 40.0, np.nan]])
    (expectation,) = theory.gaussian_expectations((square,), q)
    # The rule at q = 1 once, and f(0) once: never a rule per q.
    assert sorted(calls) == sorted([(theory._normal_rule(1.0)[0].size,), (1,)])
    unit = theory.gaussian_expectation(lambda u: u * u, 1.0)
    assert np.array_equal(expectation[np.isfinite(q)], unit * q[np.isfinite(q)])
    assert np.isnan(expectation[1, 2])  # a nan q is no vanishing signal
    scalar = theory.gaussian_expectation(square, 2.0)
    assert isinstance(scalar, np.floating) and scalar == 2.0 * unit


def test_two_homogeneous_functions_at_a_variance_of_zero_or_nan_are_what_the_rule_gives():
    # A step (degree 0) that is 1 at 0: with q1 = 0 its variable is the constant 0, so
    # E[step(u1) step(u2)] = step(0) P(u2 >= 0) = 1/2, not the 1/4 + asin(c)/2π of q1 > 0.
    def step(u):
        return np.where(u >= 0, 1.0, 0.0)

    step.homogeneous_degree = 0
    _, phi, derivative = theory._phi_and_derivative("relu")
    q1 = np.array([0.0, 1.0, 0.0, 2.0, np.nan, 1.0, -1.0])
    q2 = np.array([1.0, 0.0, 0.0, 3.0, 1.0, np.nan, 1.0])
    c = 0.5
    np.testing.assert_allclose(
        theory.bivariate_expectation(step, step, q1, q2, c),
        [0.5, 0.5, 1.0, 0.25 + math.asin(c) / (2 * math.pi), np.nan, np.nan, np.nan],
        rtol=1e-12,
    )
    for f in (phi, derivative):  # the scaled path against the plain quadrature, as given
        plain = theory._unscaled(f)
        with np.errstate(invalid="ignore"):  # the quadrature's √q of the negative variance
            expected = theory.bivariate_expectation(plain, plain, q1, q2, c)
        np.testing.assert_allclose(
            theory.bivariate_expectation(f, f, q1, q2, c), expected, rtol=1e-12, atol=1e-15
        )


def test_any_callable_is_integrated_hashable_or_not():
    # NumPy's polynomials define __eq__ without __hash__: E[He_2(z)] = 0, E[z² + 1] = 2.
    hermite = np.polynomial.HermiteE([0, 0, 1])
    moment = np.polynomial.Polynomial([1, 0, 1])
    first, second = theory.gaussian_expectations((hermite, moment), np.array([1.0, 1.0]))
    np.testing.assert_allclose(first, 0.0, atol=1e-14)
    np.testing.assert_allclose(second, 2.0, rtol=1e-14)


def test_a_square_after_its_function_squares_its_values_and_gives_the_same_bits():
    calls = []

    def counted(u):
        calls.append(u.shape)
        return np.tanh(u)

    q = np.geomspace(1e-2, 1e2, 5)
    mean, second = theory.gaussian_expectations((counted, theory._squared(counted)), q)
    assert len(calls) == 1
    assert np.array_equal(second, theory.gaussian_expectation(lambda u: np.tanh(u) ** 2, q))
    assert np.array_equal(mean, theory.gaussian_expectation(np.tanh, q))


def test_a_qs_rule_does_not_depend_on_the_others_ruled_with_it():
    q = np.array([[0.05, 1.0, 3.0], [0.7, 3.0, 1e-40]])
    nodes, weights = theory._normal_rule(q)
    assert nodes.shape == weights.shape == q.shape + (nodes.shape[-1],)
    for index in np.ndindex(q.shape):
        alone = theory._normal_rule(np.array(q[index]))
        assert np.array_equal(nodes[index], alone[0]) and np.array_equal(weights[index], alone[1])
    # Every q <= 1 is ruled alike (its graded panels start at 1/8).
    assert np.array_equal(nodes[0, 0], nodes[1, 0]) and not np.array_equal(nodes[0, 2], nodes[0, 1])


def test_a_map_that_nears_q_without_crossing_it_has_no_fixed_point():
    # relu at σ_w² = 2 maps q to q + σ_b²: it grows without end, its gap σ_b² / q shrinking
    # below any tolerance on the way. tanh at σ_w² = 1 without bias shrinks to 0 the same way.
    assert theory.fixed_point("relu", 2.0, 0.05) == np.inf
    assert theory.fixed_point("tanh", 1.0, 0.0) == 0.0
    # Nothing forgets at a slope of 1 (rounded to 1 - 2⁻⁵³ on the way): both depths are inf.
    assert theory.depth_scales("relu", 2.0, 0.05) == (np.inf, np.inf)
    assert theory.depth_scales("relu", 2.0, 0.0) == (np.inf, np.inf)
    # Just inside, the closed form σ_b² / (1 - σ_w²/2) is still found, however large.
    for weight_variance in (1.9, 1.999, 1.99999):
        expected = 0.05 / (1 - weight_variance / 2)
        assert theory.fixed_point("relu", weight_variance, 0.05) == pytest.approx(expected, 1e-9)
    # ... up to where the map's gap near q* is within rounding for a decade of q: still there,
    # to the digits 1 - σ_w²/2 keeps (its rounding, 1e-16 of 1e-12, moves q* by 1e-4).
    for gap, bias_variance in ((1.05e-12, 0.3), (2e-12, 1.0)):
        expected = bias_variance / gap
        found = theory.fixed_point("relu", 2 * (1 - gap), bias_variance)
        assert found == pytest.approx(expected, rel=1e-3)
