"""Mean-field signal propagation at initialisation, for any elementwise activation.

A fully connected network at initialisation, W_ij ~ N(0, σ_w² / fan_in), b_i ~ N(0, σ_b²),
z^{l+1} = W^{l+1} φ(z^l) + b^{l+1}, has, as the width grows, Gaussian pre-activations whose
per-input second moment q and whose correlation c between two inputs follow deterministic maps
(Poole et al. 2016; Schoenholz et al. 2017):

    length map       q^{l+1} = σ_w² E[φ(√q^l z)²] + σ_b²,                   z ~ N(0, 1)
    covariance map   q12^{l+1} = σ_w² E[φ(u1) φ(u2)] + σ_b²,   (u1, u2) ~ N(0, [[q, q c], [q c, q]])
    correlation      c^{l+1} = q12^{l+1} / q^{l+1}
    order or chaos   χ1 = σ_w² E[φ'(√q* z)²]   (< 1 ordered: inputs merge; > 1 chaotic)
    depth scales     ξ_q = -1 / ln(dq-map/dq at q*),  ξ_c = -1 / ln(σ_w² E[φ'(u1) φ'(u2)] at c*)

Every expectation is computed here from the activation object itself (its forward and backward),
never from a per-activation formula, so an activation registered tomorrow is covered as it is.

Quadrature. The expectations are Gaussian quadratures split where an activation may have a kink:
at 0 (relu, leaky_relu, elu, selu, sign). A plain Gauss–Hermite rule converges only like 1/n
across a kink (E|z| is 1e-3 off with 128 nodes), and slowly for steep profiles (tanh at large
q); split at 0, every piece is smooth and the rules converge exponentially:
- one variable: E[f(√q z)] = ∫_0^∞ (f(√q z) + f(-√q z)) N(z) dz, by Gauss–Legendre on panels
  graded from 0 at the activation's scale 1/√q out to the Gaussian's tail (exact to about 1e-14
  for any q, however steep √q makes the profile);
- two variables: polar coordinates (z1, z2) = r (cos θ, sin θ), with the angle cut where u1 or u2
  changes sign (four arcs, Gauss–Legendre on each) and the radius on the Gauss rule for the weight
  r e^{-r²/2} on [0, ∞) (the half-range Gauss–Hermite rule of that weight), computed once by the
  Lanczos (discretised Stieltjes) method of Gautschi (2004, §2.2). Its accuracy falls as q grows
  (see RADIAL_NODES); beyond q = Q_TWO_VARIABLES the two-variable quantities are reported as nan.
A kink away from 0 (relu6, hard tanh) is still integrated correctly, but converges algebraically.

    >>> round(chi1("relu", 2.0, 0.0), 12)        # He et al.'s σ_w² = 2 is critical for relu
    1.0
    >>> round(critical_weight_variance("tanh", 0.05), 3)  # Schoenholz et al.: about 1.76
    1.761

References: B. Poole et al., "Exponential expressivity in deep neural networks through transient
chaos", NeurIPS 2016; S. Schoenholz et al., "Deep information propagation", ICLR 2017;
J. Pennington et al., "Resurrecting the sigmoid in deep learning through dynamical isometry",
NeurIPS 2017; Y. Cho, L. Saul, "Kernel methods for deep learning", NeurIPS 2009.
"""

import functools
import math
import numbers

import numpy as np

from initlab import checks
from initlab.blocks import activations as activations_module

# One variable: Gauss–Legendre nodes per panel, on 1 + GRADED_PANELS + 5 panels per half line
# (320 evaluations); E|z|, relu's and tanh's expectations agree with closed forms or scipy's
# adaptive quad to about 1e-15 for q from 1e-30 to 1e30.
PANEL_NODES = 10
GRADED_PANELS = 10
TAIL_EDGES = (2.0, 3.5, 5.5, 8.0, 12.0)
# Two variables. Against rules of twice as many nodes, tanh's two-variable expectations agree to
# 3e-12 at q <= 3, 3e-9 at q = 10, 3e-7 at q = 50 and 2e-5 at q = 100 (its profile steepens with
# q; 1% off at q = 1000), so above Q_TWO_VARIABLES they are nan. Positively homogeneous
# activations (linear, relu, leaky_relu) are computed at q = 1 and scaled: exact at any q.
RADIAL_NODES = 40  # two variables: radial nodes ...
ARC_NODES = 24  # ... times angular nodes on each of the four arcs: 3840 evaluations
Q_TWO_VARIABLES = 100.0
# q is searched on [Q_MIN, Q_MAX]; beyond it the length map is taken as having run to 0 or ∞, and
# slopes at q* = 0 or ∞ are the limits, evaluated there.
Q_MIN, Q_MAX = 1e-30, 1e30
# A relative gap (or a slope's distance from 1) this small is rounding: taken as none.
_ROUNDING = 1e-12
# A fixed point of the correlation map is looked for below 1 - C_GAP (at 1 it always is one).
C_GAP = 1e-7
_BISECTIONS = 48  # a bracket 10 wide in q, or 1 wide in c, to rounding
_REGULA_FALSI_STEPS = 30


# --- the activation: φ and φ' from its one definition ------------------------------------------
def _phi_and_derivative(activation):
    """(activation, φ, φ') from a name or an Activation; refuses one that is not elementwise.

    The one place the theory reads an activation: φ(z) = forward(z), φ'(z) = backward(z, φ(z), 1).
    """
    act = activations_module.get(activation)
    # Elementwise means f applies to each entry alone: the same numbers laid out as a column and
    # as a row give the same values. Softmax normalises along the units axis and fails this.
    probe = np.linspace(-2.0, 2.0, 5)
    column = act.forward(probe[:, None].copy())
    row = act.forward(probe[None, :].copy())
    if not np.allclose(np.ravel(column), np.ravel(row), rtol=1e-12, atol=1e-12):
        raise ValueError(
            f"activation {act.name!r} is not elementwise (each output depends on the whole "
            f"layer), so the mean-field theory of one unit does not apply; expected an "
            f"elementwise activation such as 'tanh' or 'relu'"
        )

    def phi(z):
        return act.forward(np.array(z, dtype=float))

    def derivative(z):
        z = np.array(z, dtype=float)
        return act.backward(z, act.forward(z.copy()), np.ones_like(z))

    # A positively homogeneous φ (φ(λz) = λ φ(z) for λ > 0: linear, relu, leaky_relu) has
    # two-variable expectations that scale exactly with q, so they are taken at q = 1 and scaled
    # (exact at any q). Read off the activation itself, on probes where doubling is exact.
    probe = np.array([[-1.5, -0.3, 0.7, 1.9]])
    if np.array_equal(phi(2 * probe), 2 * phi(probe)) and np.array_equal(
        derivative(2 * probe), derivative(probe)
    ):
        phi.homogeneous_degree, derivative.homogeneous_degree = 1, 0
    return act, phi, derivative


# --- Gaussian quadrature ----------------------------------------------------------------------
@functools.cache
def _gauss_rule(weight_name, n):
    """Nodes and weights of the n-point Gauss rule for a weight on [0, ∞) (Lanczos method).

    weight_name: "half_normal", w(x) = exp(-x²/2) / √(2π) (mass 1/2), or "radial",
    w(r) = r exp(-r²/2) (mass 1). The weight is discretised by a composite Gauss–Legendre rule
    (64 panels of 20 points on [0, 32]: w is below 1e-220 beyond), whose discrete measure's
    three-term recurrence is found by Lanczos with full reorthogonalisation; the Jacobi matrix's
    eigenvalues are the nodes and the squared first components of its eigenvectors the weights
    (Golub & Welsch 1969). Exact for polynomials of degree < 2n, up to rounding.
    """
    t, v = np.polynomial.legendre.leggauss(20)
    panels, length = 64, 32.0
    h = length / panels
    x = ((np.arange(panels)[:, None] + (t + 1) / 2) * h).ravel()
    w = np.tile(v * h / 2, panels)
    w = w * (
        np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        if weight_name == "half_normal"
        else x * np.exp(-x * x / 2)
    )
    mass = w.sum()
    basis = np.zeros((n + 1, x.size))
    alpha, beta = np.zeros(n), np.zeros(n + 1)
    basis[0] = np.sqrt(w / mass)
    for k in range(n):
        u = x * basis[k] - (beta[k] * basis[k - 1] if k else 0.0)
        alpha[k] = basis[k] @ u
        for _ in range(2):  # Gram–Schmidt twice: once is not enough in floating point
            u -= basis[: k + 1].T @ (basis[: k + 1] @ u)
        beta[k + 1] = np.linalg.norm(u)
        basis[k + 1] = u / beta[k + 1]
    jacobi = np.diag(alpha) + np.diag(beta[1:n], 1) + np.diag(beta[1:n], -1)
    nodes, vectors = np.linalg.eigh(jacobi)
    return nodes, mass * vectors[0] ** 2


@functools.cache
def _legendre(n):
    return np.polynomial.legendre.leggauss(n)


def _normal_rule(q):
    """Nodes z and weights for E[f(√q z)], z ~ N(0, 1), graded to the activation's scale 1/√q.

    Both half lines are cut into panels, Gauss–Legendre on each: from 0 to s = min(1, 1/√q)/8,
    then geometrically from s to 1 (so a feature of f at u = √q z ~ 1 is resolved however large
    q is), then [1, 2, 3.5, 5.5, 8, 12] for the Gaussian's tail (N(12) < 1e-31). 0 is never
    crossed. Shapes: q (...) -> nodes and weights (..., 2 * HALF_LINE_PANELS * PANEL_NODES).
    """
    t, v = _legendre(PANEL_NODES)
    # Every q <= 1 has the same rule (s = 1/8): each distinct s is ruled once.
    starts, inverse = np.unique(
        np.minimum(1.0, 1.0 / np.sqrt(np.maximum(q, Q_MIN))) / 8, return_inverse=True
    )
    start = starts[:, None]
    graded = start * (1.0 / start) ** (np.arange(GRADED_PANELS + 1) / GRADED_PANELS)
    tail = np.broadcast_to(np.array(TAIL_EDGES), starts.shape + (len(TAIL_EDGES),))
    edges = np.concatenate([np.zeros(starts.shape + (1,)), graded, tail], axis=-1)
    half = np.diff(edges, axis=-1)[..., None] / 2  # (rules, panels, 1)
    x = (edges[..., :-1, None] + half * (t + 1)).reshape(starts.shape + (-1,))
    w = (half * v).reshape(x.shape) * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    x, w = np.concatenate([x, -x], axis=-1), np.concatenate([w, w], axis=-1)
    shape = np.shape(q) + (-1,)
    return x[inverse.ravel()].reshape(shape), w[inverse.ravel()].reshape(shape)


def gaussian_expectation(f, q):
    """E[f(√q z)] for z ~ N(0, 1), for every q in an array (shape kept).

    >>> round(float(gaussian_expectation(np.abs, 1.0)), 12)      # √(2/π)
    0.797884560803
    """
    (expectation,) = gaussian_expectations((f,), q)
    return expectation


def gaussian_expectations(functions, q):
    """[E[f(√q z)] for f in functions]: gaussian_expectation of each, on one quadrature rule (the
    rule, a few exponentials per node and q, costs more than most f).

    A positively homogeneous f (its degree d, from _phi_and_derivative or _squared) is
    integrated once, at q = 1, and scaled by q^(d/2): exact at any q > 0, f(0) at q = 0 (nan
    stays nan). _squared(g) after g squares g's values instead of evaluating g again.
    """
    q = np.asarray(q, dtype=float)
    # Keyed by id: any callable may be integrated, hashable or not (a NumPy Polynomial is not).
    expectations = {}
    general = [f for f in functions if _degree(f) is None]
    if general:
        nodes, weights = _normal_rule(q)
        u = np.sqrt(q)[..., None] * nodes
        values = {}
        for f in general:
            root = id(getattr(f, "root", None))
            values[id(f)] = values[root] ** 2 if root in values else f(u)
            expectations[id(f)] = np.sum(values[id(f)] * weights, axis=-1)
    for f in functions:
        if id(f) not in expectations:
            (unit,) = gaussian_expectations((_unscaled(f),), 1.0)
            at_zero = np.where(q == 0, f(np.zeros(1))[0], np.nan)
            scaled = np.where(q > 0, unit * q ** (_degree(f) / 2), at_zero)
            expectations[id(f)] = scaled[()]  # a scalar for a scalar q, as np.sum gives
    return [expectations[id(f)] for f in functions]


def _degree(f):
    """f's degree of positive homogeneity (f(λz) = λ^d f(z), λ > 0) if it is known, else None."""
    degree = getattr(f, "homogeneous_degree", None)
    return degree if isinstance(degree, numbers.Real) else None


def bivariate_expectation(f, g, q1, q2, c):
    """E[f(u1) g(u2)] for (u1, u2) Gaussian with variances q1, q2 and correlation c (broadcast).

    Polar coordinates z = r (cos θ, sin θ): u1 = √q1 r cos θ, u2 = √q2 r cos(θ - ψ), ψ = arccos c.
    The angle is cut where either changes sign (θ = ±π/2, ψ ± π/2), so a kink of f or g at 0 falls
    on the ends of the arcs, never inside one.

    >>> round(float(bivariate_expectation(np.sign, np.sign, 1.0, 1.0, 0.5)), 12)   # (2/π) asin c
    0.333333333333
    """
    q1, q2, c = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (q1, q2, c)))
    degrees = _degree(f), _degree(g)
    if None not in degrees:  # positively homogeneous: exact from q = 1 (_phi_and_derivative)
        unit = bivariate_expectation(_unscaled(f), _unscaled(g), 1.0, 1.0, c)
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = unit * q1 ** (degrees[0] / 2) * q2 ** (degrees[1] / 2)
        # A variance of 0 makes its variable the constant 0, which the scaling misses where the
        # degree is 0 (a step's value at 0 is not its value over a half-line): E[f(0) g(u2)].
        # The theory's own callers pass q > 0, so none of this runs for them.
        for q, other_q, fixed, varying in ((q1, q2, f, g), (q2, q1, g, f)):
            if np.any(q == 0):
                at_zero = fixed(np.zeros(1))[0] * gaussian_expectation(
                    varying, np.where(q == 0, other_q, 1.0)
                )
                scaled = np.where(q == 0, at_zero, scaled)
        # nan ** 0 is 1, so a nan is carried over by hand; a negative variance is none: nan, as
        # gaussian_expectations gives.
        invalid = np.isnan(q1) | np.isnan(q2) | np.isnan(c) | (q1 < 0) | (q2 < 0)
        scaled = np.where(invalid, np.nan, scaled)
        return scaled[()]
    psi = np.arccos(np.clip(c, -1.0, 1.0))
    cuts = np.sort(
        np.mod(
            np.stack(
                [
                    np.full_like(psi, np.pi / 2),
                    np.full_like(psi, 1.5 * np.pi),
                    psi + np.pi / 2,
                    psi + 1.5 * np.pi,
                ],
                axis=-1,
            ),
            2 * np.pi,
        ),
        axis=-1,
    )
    ends = np.concatenate([cuts[..., 1:], cuts[..., :1] + 2 * np.pi], axis=-1)
    t, v = _legendre(ARC_NODES)
    half = (ends - cuts)[..., None] / 2  # (..., 4, 1)
    theta = (cuts[..., None] + half * (t + 1)).reshape(cuts.shape[:-1] + (-1,))
    arc_weights = (half * v).reshape(theta.shape) / (2 * np.pi)  # (..., 4 * ARC_NODES)
    r, radial_weights = _gauss_rule("radial", RADIAL_NODES)
    u1 = (np.sqrt(q1)[..., None] * np.cos(theta))[..., None] * r
    u2 = (np.sqrt(q2)[..., None] * np.cos(theta - psi[..., None]))[..., None] * r
    values = f(u1) * g(u2) @ radial_weights
    # Beyond Q_TWO_VARIABLES the profile is too steep for these rules: say so rather than guess.
    return np.where(
        np.maximum(q1, q2) > Q_TWO_VARIABLES, np.nan, np.sum(values * arc_weights, axis=-1)
    )


def _squared(f):
    """z -> f(z)², positively homogeneous of twice f's degree if f is."""

    def square(z):
        return f(z) ** 2

    square.root = f
    if _degree(f) is not None:
        square.homogeneous_degree = 2 * _degree(f)
    return square


def _unscaled(f):
    # The same function without its homogeneity degree, so that it is integrated as given.
    def plain(z):
        return f(z)

    return plain


# --- argument checks --------------------------------------------------------------------------
def _variance(name, value):
    """value as a float array of finite numbers >= 0 (a scalar stays 0-d)."""
    if np.ndim(value) == 0:
        return np.asarray(checks.number(name, value, minimum=0))
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        array = None
    if array is None or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite numbers >= 0, got {value!r}")
    return array


def _result(array):
    """A float for 0-d results, else the array."""
    array = np.asarray(array, dtype=float)
    return float(array) if array.ndim == 0 else array


# --- the length map and its fixed point -------------------------------------------------------
def q_map(activation, weight_variance, bias_variance, q):
    """One layer of the length map: q' = σ_w² E[φ(√q z)²] + σ_b², z ~ N(0, 1).

    Arguments broadcast; q is the second moment of the pre-activations of one input, per unit.

    >>> round(q_map("relu", 2.0, 0.0, 3.0), 12)       # relu halves E[z²]: σ_w² q / 2
    3.0

    Reference: Poole et al. (2016), eq. 3.
    """
    _, phi, _ = _phi_and_derivative(activation)
    wv = _variance("weight_variance", weight_variance)
    bv = _variance("bias_variance", bias_variance)
    q = _variance("q", q)
    return _result(_q_map(phi, wv, bv, q))


def _q_map(phi, wv, bv, q):
    return wv * gaussian_expectation(_squared(phi), q) + bv


def fixed_point(activation, weight_variance, bias_variance, q0=1.0):
    """q*: the fixed point q* = σ_w² E[φ(√q* z)²] + σ_b² that the length map reaches from q0.

    The map moves q up where it exceeds q and down where it falls short; q* is the first
    crossing in that direction (found on a logarithmic grid, then bisected to rounding). It is
    0 when q shrinks below 1e-30 (tanh without bias in the ordered phase), inf when it grows past
    1e30 (relu with σ_w² > 2), and q0 itself where every q is fixed (relu at σ_w² = 2, σ_b² = 0).

    >>> round(fixed_point("relu", 1.0, 0.5), 12)       # σ_b² / (1 - σ_w²/2)
    1.0

    Reference: Poole et al. (2016), fig. 1; Schoenholz et al. (2017), §3.
    """
    _, phi, _ = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    q0 = checks.number("q0", q0, minimum=0, strict=True)
    return _result(_fixed_point(phi, wv, bv, q0))


def _fixed_point(phi, wv, bv, q0=1.0):
    def excess(q):  # sign of q-map(q) - q, relative, with rounding taken as 0
        gap = (_q_map(phi, wv, bv, q) - q) / q
        return np.sign(np.where(np.abs(gap) <= _ROUNDING, 0.0, gap))

    # Where q0 is fixed to rounding, every q may be (relu at σ_w² = 2, σ_b² = 0): q0 it is. On the
    # march only a change of sign beyond rounding is a crossing: a map that nears q without
    # crossing it (relu at σ_w² = 2 with a bias, q + σ_b²; tanh at σ_w² = 1 without one) has no
    # fixed point however small its gap gets.
    direction = excess(np.full(wv.shape, q0))
    q_star = np.full(wv.shape, q0)
    low, high = np.full(wv.shape, np.nan), np.full(wv.shape, np.nan)
    # March from q0 by factors of 10 the way the map moves q, until it turns back: then the
    # fixed point lies between the turn and the last step that still moved q the marching way
    # beyond rounding (a step within rounding may already lie past it). Past Q_MIN or Q_MAX it
    # is 0 or ∞.
    current = np.full(wv.shape, q0)
    moved = current.copy()  # the last q the map moved the marching way beyond rounding
    moving = direction != 0
    while np.any(moving):
        trial = current * 10.0**direction
        sign = excess(trial) * direction
        turned = moving & (sign < 0)
        low = np.where(turned, np.minimum(moved, trial), low)
        high = np.where(turned, np.maximum(moved, trial), high)
        moved = np.where(moving & (sign > 0), trial, moved)
        escaped = moving & ~turned & ((trial >= Q_MAX) | (trial <= Q_MIN))
        q_star = np.where(escaped, np.where(direction > 0, np.inf, 0.0), q_star)
        moving &= ~turned & ~escaped
        current = np.where(moving, trial, current)
    search = np.isfinite(low)
    if np.any(search):
        # On [low, high] the map is above q at low and at or below it at high: bisect in log q.
        log_low, log_high = np.log(low[search]), np.log(high[search])
        wv_s, bv_s = wv[search], bv[search]
        for _ in range(_BISECTIONS):
            middle = (log_low + log_high) / 2
            q = np.exp(middle)
            up = _q_map(phi, wv_s, bv_s, q) > q
            log_low, log_high = np.where(up, middle, log_low), np.where(up, log_high, middle)
        q_star[search] = np.exp((log_low + log_high) / 2)
    return q_star


def _evaluation_q(q_star):
    # Slopes at q* = 0 or ∞ are the limits q -> 0+ or ∞; they are evaluated at the ends of the
    # searched range (exact for positively homogeneous activations such as relu).
    return np.clip(q_star, Q_MIN, Q_MAX)


# --- order and chaos --------------------------------------------------------------------------
def chi1(activation, weight_variance, bias_variance):
    """χ1 = σ_w² E[φ'(√q* z)²]: the slope of the correlation map at c = 1.

    χ1 < 1: ordered (nearby inputs converge, gradients vanish); χ1 > 1: chaotic (they
    decorrelate, gradients explode); χ1 = 1: the edge of chaos. It is also the factor by which the
    mean squared singular value of the Jacobian grows per layer.

    >>> round(chi1("relu", 1.5, 0.3), 12)               # σ_w² / 2, whatever q*
    0.75

    Reference: Poole et al. (2016), eq. 7; Schoenholz et al. (2017), eq. 5.
    """
    _, phi, derivative = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    return _result(_chi1(phi, derivative, wv, bv, _fixed_point(phi, wv, bv)))


def backward_factor(activation, weight_variance, q):
    """σ_w² E[φ'(√q z)²]: the factor by which a layer whose pre-activations have second moment q
    multiplies the variance of the gradient sent back through it (equal fan-in and fan-out).

    Var(dL/da^{l-1}) = fan_out · Var(W^l) · E[φ'(z^l)²] · Var(dL/da^l); χ1 is this factor at
    q = q*, and a network's per-layer backward factor is its product along the q^l it reaches.

    >>> round(float(backward_factor("relu", 2.0, 0.3)), 12)   # σ_w² / 2, whatever q
    1.0

    Reference: Schoenholz et al. (2017), §4 (the gradients' variance, eq. 12).
    """
    _, _, derivative = _phi_and_derivative(activation)
    wv, q = np.broadcast_arrays(_variance("weight_variance", weight_variance), _variance("q", q))
    return _result(wv * gaussian_expectation(_squared(derivative), q))


def _chi1(phi, derivative, wv, bv, q_star):
    return wv * gaussian_expectation(_squared(derivative), _evaluation_q(q_star))


def correlation_map(activation, weight_variance, bias_variance, c, q=None):
    """One layer of the correlation map of two inputs of equal length q (default q*):

        c' = (σ_w² E[φ(u1) φ(u2)] + σ_b²) / (σ_w² E[φ(u1)²] + σ_b²),   corr(u1, u2) = c.

    At q = q* the denominator is q* (Poole et al.'s form); elsewhere it is the next layer's q.

    >>> round(correlation_map("linear", 1.0, 0.0, 0.3), 12)
    0.3

    Reference: Poole et al. (2016), eq. 5.
    """
    _, phi, _ = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    c = np.asarray(c, dtype=float)
    if not np.all((c >= -1) & (c <= 1)):
        raise ValueError(f"c must be correlations in [-1, 1], got {c!r}")
    if q is None:
        q = _evaluation_q(_fixed_point(phi, wv, bv))
    else:
        q = _variance("q", q)
        if np.any(q <= 0):
            raise ValueError(f"q must be > 0, got {q!r}")
    return _result(_correlation_map(phi, wv, bv, c, q))


def _correlation_map(phi, wv, bv, c, q):
    covariance = wv * bivariate_expectation(phi, phi, q, q, c) + bv
    return covariance / _q_map(phi, wv, bv, q)


def correlation_fixed_point(activation, weight_variance, bias_variance):
    """c*: the stable fixed point of the correlation map at q*.

    1 in the ordered phase and on the edge (χ1 <= 1, the fixed point at c = 1 attracts); below 1
    in the chaotic phase, found on [0, 1 - 1e-7] where the map crosses c from above (0 for an odd
    φ without bias); nan there when q* = ∞ (no fixed point), or when q* > Q_TWO_VARIABLES (100),
    beyond the quadrature's accuracy, unless φ is positively homogeneous (then exact at any q).

    >>> correlation_fixed_point("tanh", 1.0, 0.05)
    1.0

    Reference: Poole et al. (2016), fig. 2; Schoenholz et al. (2017), §3.
    """
    _, phi, derivative = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    q_star = _fixed_point(phi, wv, bv)
    return _result(
        _correlation_fixed_point(phi, wv, bv, q_star, _chi1(phi, derivative, wv, bv, q_star))
    )


def _correlation_fixed_point(phi, wv, bv, q_star, chi):
    q = _evaluation_q(q_star)
    # Not computed: no fixed point (q* = ∞), or beyond the two-variable quadrature's range.
    unreachable = ~np.isfinite(q_star) | ((q > Q_TWO_VARIABLES) & (_degree(phi) is None))
    c_star = np.where((chi > 1) & unreachable, np.nan, 1.0)
    chaotic = (chi > 1) & ~unreachable
    if np.any(chaotic):
        wv_s, bv_s, q_s = wv[chaotic], bv[chaotic], q[chaotic]

        def excess(c):
            return _correlation_map(phi, wv_s, bv_s, c, q_s) - c

        # On [0, 1 - C_GAP] the map starts at or above c (at c = 0 it is (σ_w² E[φ]² + σ_b²) / q,
        # never negative) and, when χ1 > 1 clearly enough, ends below it: the Illinois variant of
        # regula falsi finds the crossing (superlinear, and never leaves the bracket). Where it
        # does not end below, c* is 1. Below 0 the map is only ever left, never entered: c = -1
        # may be fixed too (odd φ, no bias) but repels.
        low, high = np.zeros(q_s.shape), np.full(q_s.shape, 1.0 - C_GAP)
        f_low, f_high = excess(low), excess(high)
        bracketed = f_high < 0
        f_low = np.maximum(f_low, 0.0)
        side = np.zeros(q_s.shape)
        for _ in range(_REGULA_FALSI_STEPS):
            with np.errstate(invalid="ignore", divide="ignore"):
                middle = high - f_high * (high - low) / (f_high - f_low)
            middle = np.where(np.isfinite(middle), np.clip(middle, low, high), (low + high) / 2)
            f_middle = excess(middle)
            up = f_middle > 0
            # Keep the sign change inside [low, high]; halve the stale end's value when the
            # same end is kept twice (Illinois), so the bracket shrinks from both sides.
            f_high = np.where(up & (side > 0), f_high / 2, f_high)
            f_low = np.where(~up & (side < 0), f_low / 2, f_low)
            low, f_low = np.where(up, middle, low), np.where(up, f_middle, f_low)
            high, f_high = np.where(up, high, middle), np.where(up, f_high, f_middle)
            side = np.where(up, 1.0, -1.0)
            if np.all((f_middle == 0) | (high - low < 1e-14)):
                break
        c_star[chaotic] = np.where(
            bracketed, np.where(np.abs(f_low) < np.abs(f_high), low, high), 1.0
        )
    return c_star


def critical_weight_variance(activation, bias_variance):
    """The σ_w² at which χ1 = 1 for this bias variance: the edge of chaos.

    Found where χ1(σ_w²) first reaches 1 on a logarithmic grid of σ_w² in [1e-2, 1e4], then by
    bisection; nan if χ1 stays below 1. At σ_b² = 0, tanh's edge is σ_w² = 1 (there χ1 - 1 grows
    only like (σ_w² - 1)², so the bisection pins it to about 1e-6).

    >>> round(critical_weight_variance("relu", 0.0), 9)
    2.0

    Reference: Schoenholz et al. (2017), fig. 1; Poole et al. (2016), fig. 2.
    """
    _, phi, derivative = _phi_and_derivative(activation)
    bv = _variance("bias_variance", bias_variance)
    return _result(_critical_weight_variance(phi, derivative, bv))


def _critical_weight_variance(phi, derivative, bv):
    def above(wv):  # χ1 >= 1, with rounding around 1 counted as 1
        return _chi1(phi, derivative, wv, bv, _fixed_point(phi, wv, bv)) >= 1 - 1e-13

    # χ1 >= 1 on a logarithmic grid of σ_w² (all at once), then bisection after the first.
    grid = np.logspace(-2, 4, 31)
    shape = (grid.size,) + bv.shape
    crossed = np.broadcast_to(grid.reshape((-1,) + (1,) * bv.ndim), shape)
    crossed = (
        _chi1(
            phi,
            derivative,
            crossed,
            np.broadcast_to(bv, shape),
            _fixed_point(phi, crossed, np.broadcast_to(bv, shape)),
        )
        >= 1 - 1e-13
    )
    first = np.argmax(crossed, axis=0)
    found = crossed.any(axis=0)
    log_low = np.log(grid[np.maximum(first - 1, 0)])
    log_high = np.log(grid[first])
    for _ in range(_BISECTIONS):
        middle = (log_low + log_high) / 2
        up = above(np.exp(middle))
        log_low, log_high = np.where(up, log_low, middle), np.where(up, middle, log_high)
    return np.where(found, np.exp(log_high), np.nan)


def depth_scales(activation, weight_variance, bias_variance):
    """(ξ_q, ξ_c): the depths over which the length and the correlation forget their input.

        ξ_q⁻¹ = -ln(σ_w² E[z φ(√q* z) φ'(√q* z)] / √q*)     (the length map's slope at q*;
                                                            Schoenholz et al.'s χ1 + σ_w² E[φ''φ]
                                                            by Gaussian integration by parts)
        ξ_c⁻¹ = -ln(σ_w² E[φ'(u1) φ'(u2)]),  (u1, u2) at q* and correlation c*

    |q^l - q*| and |c^l - c*| decay like exp(-l / ξ). ξ_c diverges on the edge of chaos: networks
    train up to a depth of about 6 ξ_c (Schoenholz et al., fig. 6). inf where the slope is >= 1;
    ξ_c is nan where c* is (chaotic, q* > Q_TWO_VARIABLES).

    >>> [round(xi, 6) for xi in depth_scales("relu", 1.0, 0.1)]    # both -1 / ln(1/2)
    [1.442695, 1.442695]

    Reference: Schoenholz et al. (2017), eqs. 7-9.
    """
    _, phi, derivative = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    xi_q, xi_c, _ = _depth_scales(phi, derivative, wv, bv)
    return _result(xi_q), _result(xi_c)


def phase_quantities(activation, weight_variance, bias_variance):
    """Everything the phase diagram shows, over broadcast σ_w² and σ_b² arrays, computed once.

    Returns {"q_star", "chi1", "c_star", "chi_c", "length_slope", "xi_q", "xi_c"}, arrays of the
    broadcast shape (see fixed_point, chi1, correlation_fixed_point and depth_scales).

    >>> sorted(phase_quantities("tanh", [1.0, 2.0], 0.05))[:3]
    ['c_star', 'chi1', 'chi_c']
    """
    _, phi, derivative = _phi_and_derivative(activation)
    wv, bv = np.broadcast_arrays(
        _variance("weight_variance", weight_variance), _variance("bias_variance", bias_variance)
    )
    with np.errstate(all="ignore"):
        xi_q, xi_c, parts = _depth_scales(phi, derivative, wv, bv)
    return {**parts, "xi_q": xi_q, "xi_c": xi_c}


def _depth_scales(phi, derivative, wv, bv):
    """(ξ_q, ξ_c, dict of the intermediate numbers) over broadcast arrays wv, bv."""
    q_star = _fixed_point(phi, wv, bv)
    q = _evaluation_q(q_star)
    chi = _chi1(phi, derivative, wv, bv, q_star)
    c_star = _correlation_fixed_point(phi, wv, bv, q_star, chi)
    length_slope = (
        wv * gaussian_expectation(lambda u: u * phi(u) * derivative(u), q) / q
    )  # E[z φ φ'] / √q, with u = √q z
    chi_c = np.where(
        c_star >= 1, chi, wv * bivariate_expectation(derivative, derivative, q, q, c_star)
    )
    chi_c = np.where(np.isnan(c_star), np.nan, chi_c)
    return (
        _depth(length_slope),
        _depth(chi_c),
        {
            "q_star": q_star,
            "chi1": chi,
            "c_star": c_star,
            "chi_c": chi_c,
            "length_slope": length_slope,
        },
    )


def _depth(slope):
    # A slope of 1 to rounding (relu at σ_w² = 2 computes 1 - 2⁻⁵³) forgets nothing: its depth
    # is inf, not the 2⁵³ that -1 / ln(1 - 2⁻⁵³) would give.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            slope >= 1 - _ROUNDING, np.inf, np.where(slope <= 0, 0.0, -1.0 / np.log(slope))
        )


def propagate(activation, weight_variance, bias_variance, depth, q0=1.0, c0=0.5):
    """The theory's q^l and c^l, layers 1 .. depth, for two inputs of length q0 and correlation c0.

    Layer 1 is affine in the input: q^1 = σ_w² q0 + σ_b², c^1 = (σ_w² q0 c0 + σ_b²) / q^1;
    deeper layers follow the length and correlation maps. An input x of n features has
    q0 = x·x / n. Returns (q, c), two arrays of shape (depth,).

    >>> q, c = propagate("relu", 2.0, 0.0, depth=3)
    >>> np.round(q, 12).tolist()
    [2.0, 2.0, 2.0]
    """
    _, phi, _ = _phi_and_derivative(activation)
    wv = _variance("weight_variance", weight_variance)
    bv = _variance("bias_variance", bias_variance)
    if wv.ndim or bv.ndim:
        raise ValueError("propagate takes one weight_variance and one bias_variance (numbers)")
    depth = checks.integer("depth", depth, minimum=1)
    q0 = checks.number("q0", q0, minimum=0, strict=True)
    c0 = checks.number("c0", c0)
    if not -1 <= c0 <= 1:
        raise ValueError(f"c0 must be a correlation in [-1, 1], got {c0!r}")
    q, c = np.empty(depth), np.empty(depth)
    q[0] = wv * q0 + bv
    c[0] = (wv * q0 * c0 + bv) / q[0] if q[0] > 0 else 1.0
    for layer in range(1, depth):
        c[layer] = (
            _correlation_map(phi, wv, bv, c[layer - 1], q[layer - 1]) if q[layer - 1] else 1.0
        )
        q[layer] = _q_map(phi, wv, bv, q[layer - 1])
    return q, c


# --- scales of an activation: γ and the variance-preserving gain ------------------------------
def gamma(activation):
    """γ = 1 / std(φ(z)), z ~ N(0, 1): the scale that Normalizer-Free networks put after φ.

        >>> round(gamma("relu"), 4)        # 1 / √(1/2 - 1/(2π))
        1.7129

    Reference: A. Brock et al., "Characterizing signal propagation to close the performance gap
    in unnormalized ResNets", ICLR 2021, §4.1.
    """
    _, phi, _ = _phi_and_derivative(activation)
    mean = gaussian_expectation(phi, 1.0)
    second = gaussian_expectation(_squared(phi), 1.0)
    return float(1.0 / np.sqrt(second - mean**2))


def variance_preserving_gain(activation):
    """The gain g with E[(g φ(z))²] = 1 for z ~ N(0, 1): g = 1 / √E[φ(z)²].

    Weights of std g / √fan_in then keep the pre-activations' second moment at 1 from layer to
    layer (the fixed point q* = 1 at σ_w² = g², σ_b² = 0): He et al.'s argument, done exactly.

    >>> round(variance_preserving_gain("relu") ** 2, 12)
    2.0

    Reference: K. He et al., "Delving deep into rectifiers", ICCV 2015, eq. 10.
    """
    _, phi, _ = _phi_and_derivative(activation)
    return float(1.0 / np.sqrt(gaussian_expectation(_squared(phi), 1.0)))


def gain_table(activations=None):
    """One row per activation: the exact gain, γ, and PyTorch's calculate_gain where it has one.

    activations : names or Activation objects (default: every registered elementwise activation).
    Each row: {"activation", "exact_gain", "pytorch_gain" (None if PyTorch has no entry),
    "relative_difference" (pytorch / exact - 1), "gamma"}.
    """
    if activations is None:
        names = dict.fromkeys(cls.name for cls in activations_module.ACTIVATIONS.values())
        activations = [name for name in names if is_elementwise(name)]
    rows = []
    for activation in activations:
        act, _, _ = _phi_and_derivative(activation)
        exact = variance_preserving_gain(act)
        pytorch = act.gain  # the activation's fact: PyTorch's calculate_gain value, or None
        rows.append(
            {
                "activation": act.name,
                "exact_gain": exact,
                "pytorch_gain": pytorch,
                "relative_difference": None if pytorch is None else pytorch / exact - 1,
                "gamma": gamma(act),
            }
        )
    return rows


def is_elementwise(activation):
    """Whether the theory applies to this activation (a name or an Activation).

    >>> is_elementwise("tanh"), is_elementwise("softmax")
    (True, False)
    """
    try:
        _phi_and_derivative(activation)
    except ValueError:
        return False
    return True


# --- the same quantities measured on real networks -------------------------------------------
def gaussian_network(
    activation, weight_variance, bias_variance, depth, width, seed=0, n_inputs=None
):
    """A built NeuralNetwork of `depth` Dense layers of `width` units drawn as the theory assumes.

    Weights N(0, σ_w² / fan_in) by Initializer("random_normal", stddev=σ_w / √fan_in), biases
    N(0, σ_b²) by a bias_initializer; every layer (the last too) applies the activation.
    n_inputs defaults to width.
    """
    from initlab.blocks.initializers import Initializer
    from initlab.blocks.layers import Dense
    from initlab.engine.model import NeuralNetwork

    wv = float(_variance("weight_variance", weight_variance))
    bv = float(_variance("bias_variance", bias_variance))
    depth = checks.integer("depth", depth, minimum=1)
    width = checks.integer("width", width, minimum=1)
    n_inputs = width if n_inputs is None else checks.integer("n_inputs", n_inputs, minimum=1)
    model = NeuralNetwork(seed=checks.integer("seed", seed, minimum=0))
    fan_in = n_inputs
    for _ in range(depth):
        model.add(
            Dense(
                width,
                activation=activation,
                initializer=Initializer("random_normal", stddev=math.sqrt(wv / fan_in)),
                bias_initializer=Initializer("random_normal", stddev=math.sqrt(bv)),
            )
        )
        fan_in = width
    model.build(n_inputs)
    return model


def input_pairs(n_features, pairs, q0=1.0, c0=0.5, seed=0):
    """2 * pairs inputs (n_features, 2 * pairs): columns 2k and 2k + 1 are a pair.

    Every input has x·x / n_features = q0 exactly, and every pair correlation c0 exactly (the
    second is c0 x̂ + √(1 - c0²) times a unit vector orthogonal to x̂), so the theory's q0 and c0
    hold without sampling error.
    """
    n_features = checks.integer("n_features", n_features, minimum=2)
    pairs = checks.integer("pairs", pairs, minimum=1)
    rng = np.random.default_rng(np.random.SeedSequence(checks.integer("seed", seed, minimum=0)))
    first, other = rng.standard_normal((2, pairs, n_features))
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    other -= np.sum(other * first, axis=1, keepdims=True) * first
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    second = c0 * first + math.sqrt(1 - c0 * c0) * other
    X = np.empty((n_features, 2 * pairs))
    X[:, 0::2], X[:, 1::2] = first.T, second.T
    return X * math.sqrt(q0 * n_features)


def measure_propagation(
    activation,
    weight_variance,
    bias_variance,
    depth,
    width,
    seeds=(0, 1, 2),
    pairs=100,
    q0=1.0,
    c0=0.5,
):
    """Measured q^l and c^l of real networks: what `propagate` predicts, for each seed.

    For each seed, `gaussian_network(..., seed)` runs forward on `input_pairs(width, pairs, q0, c0,
    seed)`; at each layer q^l = mean over units and inputs of z², and c^l = the mean over pairs of
    z_a·z_b / (|z_a| |z_b|). Returns (q, c), arrays of shape (len(seeds), depth).

    >>> q, c = measure_propagation("relu", 2.0, 0.0, depth=3, width=64, seeds=[0], pairs=10)
    >>> q.shape, bool(np.all(np.abs(q / 2 - 1) < 0.5))
    ((1, 3), True)
    """
    seeds = [checks.integer("seeds", seed, minimum=0) for seed in seeds]
    if not seeds:
        raise ValueError("seeds must list at least one seed, got []")
    q, c = np.empty((len(seeds), depth)), np.empty((len(seeds), depth))
    for row, seed in enumerate(seeds):
        model = gaussian_network(activation, weight_variance, bias_variance, depth, width, seed)
        a = input_pairs(width, pairs, q0, c0, seed)
        for layer_index, layer in enumerate(model.layers):
            z = layer.preactivation(a)  # (width, 2 * pairs)
            a = layer.activation.forward(z)
            q[row, layer_index] = np.mean(z * z)
            norms = np.linalg.norm(z, axis=0)
            c[row, layer_index] = np.mean(
                np.sum(z[:, 0::2] * z[:, 1::2], axis=0) / (norms[0::2] * norms[1::2])
            )
    return q, c


def predict_signals(model, X):
    """The theory's per-layer signal scale for a built model of Dense layers on inputs X.

    Each layer's σ_w² = fan_in · mean(W²) and σ_b² = mean(b²) are read from its drawn weights
    (the theory holds for any i.i.d. zero-mean weights as the width grows, by the central limit
    theorem); each input starts at q^1 = σ_w² x·x / n + σ_b², is carried through the length map
    layer by layer, and the moments are pooled over the inputs as the diagnostics pool them.
    X : (n_features, m). Returns one dict per layer: weight_variance, bias_variance, q (mean
    over inputs), preactivation_std (√q: the weights' mean is 0) and activation_std (None for
    an activation the theory does not cover, such as a softmax output).

    >>> from initlab import Dense, NeuralNetwork
    >>> model = NeuralNetwork(seed=0, layers=[Dense(256, "relu", initializer="he")])
    >>> model.build(10)
    >>> row = predict_signals(model, np.ones((10, 3)))[0]
    >>> round(row["q"] / row["weight_variance"], 12)     # q^1 = σ_w² x·x/n + σ_b², x·x/n = 1
    1.0
    """
    if not getattr(model, "built", False):
        raise ValueError("model must be built (call model.build(n_features) or predict first)")
    X = np.asarray(X, dtype=float)
    q = second_moments = None  # of the layer below: its q and E[φ²] at it, per input
    predictions = []
    for layer in model.layers:
        weights, bias = layer.params["weights"], layer.params["bias"]
        wv = weights.shape[-1] * float(np.mean(weights * weights))
        bv = float(np.mean(bias * bias))
        if q is None:
            q = wv * np.mean(X * X, axis=0) + bv  # (m,), one per input
        else:
            q = wv * second_moments + bv  # the length map
        row = {
            "weight_variance": wv,
            "bias_variance": bv,
            "q": float(np.mean(q)),
            "preactivation_std": float(np.sqrt(np.mean(q))),
            "activation_std": None,
        }
        if is_elementwise(layer.activation):
            _, phi, _ = _phi_and_derivative(layer.activation)
            # E[φ²] serves twice: this layer's activation std, and the next layer's q.
            means, second_moments = gaussian_expectations((phi, _squared(phi)), q)
            second, mean = np.mean(second_moments), np.mean(means)
            row["activation_std"] = float(np.sqrt(max(second - mean * mean, 0.0)))
        predictions.append(row)
        if row["activation_std"] is None:
            break
    return predictions


# --- the Jacobian of a real network -----------------------------------------------------------
def jacobian_singular_values(model, x):
    """Singular values of the input-output Jacobian ∂z^L/∂x of a built model at input x.

    J = W^L D^{L-1} W^{L-1} ... D^1 W^1 with D^l = diag(φ'(z^l)), the derivatives at x: the
    product that back-propagation multiplies gradients by. The last layer is taken before its
    activation. x : (n_features,) or (n_features, 1). Returns the singular values, descending.

    For a deep linear network of Gaussian weights (σ_w² = 1) the largest squared singular value
    tends to (L+1)^(L+1) / L^L as the width grows; with orthogonal weights all are 1 (Pennington
    et al. 2017, §2).

        >>> from initlab import Dense, NeuralNetwork
        >>> model = NeuralNetwork(seed=0, layers=[Dense(4, initializer="orthogonal")])
        >>> model.build(4)
        >>> np.round(jacobian_singular_values(model, np.ones(4)), 12).tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    if not getattr(model, "built", False):
        raise ValueError("model must be built (call model.build(n_features) or predict first)")
    a = np.asarray(x, dtype=float).reshape(-1, 1)
    jacobian = None
    for index, layer in enumerate(model.layers):
        weights, bias = layer.params["weights"], layer.params["bias"]
        if weights.ndim != 2:
            raise ValueError("jacobian_singular_values takes a single model, not an ensemble")
        if index == 0 and a.shape[0] != weights.shape[1]:
            raise ValueError(f"x must have {weights.shape[1]} features, got {a.shape[0]}")
        z = weights @ a + bias
        jacobian = weights if jacobian is None else weights @ jacobian
        if index < len(model.layers) - 1:
            _, phi, derivative = _phi_and_derivative(layer.activation)
            jacobian = derivative(z) * jacobian
            a = phi(z)
    return np.linalg.svd(jacobian, compute_uv=False)
