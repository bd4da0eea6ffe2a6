"""Weight initializers: every Keras and PyTorch scheme, under both libraries' names, one registry.

An initializer is called with a weight shape (units, fan_in), the layout of PyTorch's Linear
weight, so fan_in = shape[1] and fan_out = shape[0]. It returns (weights, bias) with shapes
(units, fan_in) and (units, 1).

    >>> w, b = Initializer("he_normal", seed=0)((12, 2))     # Keras's name and behaviour
    >>> w, b = Initializer("kaiming_normal_", mode="fan_out", nonlinearity="relu")((12, 2))
    >>> w, b = get("glorot_uniform")((12, 2))

Every scheme is a method of `Initializer`, registered with its parameters, formula and its Keras
and PyTorch names by the `@_scheme` decorator just above it (INITIALIZERS holds that metadata,
ALIASES every accepted name). The fan-based schemes (Glorot/Xavier, He/Kaiming, LeCun, the
post's "he" and "xavier") are presets of one core, `_variance_scaling`, as in Keras.

The method is looked up on the instance each time it is called, so the post's patches work:

    >>> import numpy as np
    >>> def he(self):
    ...     scale = np.sqrt(2 / self.shape[1])
    ...     return np.random.randn(*self.shape) * scale, np.zeros((self.shape[0], 1))
    >>> built_in_he = Initializer.he
    >>> Initializer.he = he   # replaces the built-in "he" for every Initializer, as in the post
    >>> Initializer.he = built_in_he   # undone

Built-in methods draw from `self.rng`, a numpy Generator: the layer passes one derived from the
model's seed, or the initializer's own `seed` takes precedence. NumPy's global state is never used.

Where Keras and PyTorch give one name different meanings, initlab keeps both apart:
Keras's he_normal, glorot_normal and lecun_normal are *truncated* normals (standard deviation
divided by 0.8796..., draws beyond two of it redrawn, which restores the variance asked for),
PyTorch's kaiming_normal and xavier_normal are not; PyTorch's trunc_normal_ cuts at absolute
bounds a, b, Keras's truncated_normal at two standard deviations. The post's "random_normal" keeps
its meaning, randn * scale with a standard deviation of 1 (Keras's default there is 0.05).
"""

import difflib
import inspect
import math
import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from initlab import checks
from initlab.blocks import activations

# The standard deviation of a standard normal truncated to [-2, 2]. Keras divides the requested
# standard deviation by it, so that the truncated draw has the variance the scheme asks for.
TRUNCATED_NORMAL_STD = 0.87962566103423978

# How the formulas of the scheme table (`initlab inits`, the README) are written.
FORMULA_NOTATION = (
    "n_mode: fan_in, fan_out or fan_avg = (fan_in + fan_out) / 2, as the scheme's mode says. "
    "TN(σ): Keras's truncated normal, N(0, (σ / 0.87962566103423978)²) with draws beyond two of "
    "its standard deviations redrawn, which leaves the standard deviation σ. "
    "gain(nonlinearity, a): calculate_gain, PyTorch's table (relu √2, tanh 5/3, leaky_relu "
    "√(2 / (1 + a²)), ...)."
)

# PyTorch's calculate_gain also names its linear layer types, whose gain is 1; every other name is
# an activation, whose gain is the activation's own fact (activations.py).
LINEAR_NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def nonlinearities():
    """The names calculate_gain takes: the linear layer types, and every registered activation
    that has a gain."""
    return LINEAR_NONLINEARITIES + tuple(
        name
        for name, cls in activations.ACTIVATIONS.items()
        if name not in LINEAR_NONLINEARITIES and _gain_of(cls, None) is not None
    )


def _gain_of(cls, param):
    try:
        instance = cls() if param is None else cls(param)
    except (TypeError, ValueError):
        return None
    return instance.gain


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch recommends for a nonlinearity: it makes up for how it shrinks the signal.

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  selu: 3/4;
    leaky_relu: sqrt(2 / (1 + negative_slope²)), negative_slope = param (0.01 if None).
    The values are the activations' own `gain` (activations.py), so an activation registered
    with a gain is known here too.

    >>> calculate_gain("leaky_relu", 0.2)
    1.3867504905630728

    Reference: torch.nn.init.calculate_gain; He et al. (2015), arXiv:1502.01852.
    """
    if nonlinearity in LINEAR_NONLINEARITIES:
        return 1.0
    if not isinstance(nonlinearity, str) or nonlinearity not in nonlinearities():
        raise ValueError(
            f"nonlinearity must be one of {list(nonlinearities())}, got {nonlinearity!r}"
        )
    cls = activations.ACTIVATIONS.lookup(nonlinearity)
    if param is None:
        return float(cls().gain)
    param = checks.number("negative_slope (param)", param)
    try:
        instance = cls(param)  # leaky_relu's slope
    except TypeError:
        instance = cls()  # PyTorch ignores param for every other nonlinearity
    return float(instance.gain)


# --- parameter checks: each returns the clean value or raises ValueError echoing it ---------------
# The numeric ones are initlab.checks' (number, positive, fraction); these two adapt them.
def _non_negative(label, value):
    return checks.number(label, value, minimum=0)


def _optional_real(label, value):
    return None if value is None else checks.number(label, value)


def _one_of(*options):
    def check(label, value):
        if not isinstance(value, str) or value.lower() not in options:
            raise ValueError(f"{label} must be one of {list(options)}, got {value!r}")
        return value.lower()

    return check


def _nonlinearity(label, value):
    if not isinstance(value, str) or value not in nonlinearities():
        raise ValueError(f"{label} must be one of {list(nonlinearities())}, got {value!r}")
    return value


class Param(NamedTuple):
    default: object
    check: Callable


class Scheme(NamedTuple):
    """A registered scheme: what it takes, what it draws, and what Keras and PyTorch call it."""

    name: str
    summary: str
    formula: str
    params: dict  # parameter -> Param(default, check)
    keras: tuple = ()  # Keras names that resolve here and behave the same
    pytorch: tuple = ()  # PyTorch names likewise
    keras_note: str = ""  # how it differs, or the equivalent call when there is no name
    pytorch_note: str = ""
    aliases: tuple = ()  # further names that resolve here
    # PyTorch spellings whose argument names or defaults differ from initlab's:
    # name -> ({their argument: initlab's}, {initlab parameter: their default})
    translations: dict = {}
    check: Callable = None  # cross-parameter check(name, params) -> params

    def validate(self, params):
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            takes = list(self.params) or "no parameters"
            raise ValueError(
                f"{self.name} has no parameter {', '.join(map(repr, unknown))}; it takes {takes}"
            )
        values = {key: spec.default for key, spec in self.params.items()}
        values.update(params)
        for key, spec in self.params.items():
            values[key] = spec.check(f"{self.name}: {key}", values[key])
        return self.check(self.name, values) if self.check else values


INITIALIZERS = {}  # scheme name -> Scheme, in the order the schemes are defined below
ALIASES = {}  # every accepted name (snake_case, lower case) -> scheme name


def _scheme(formula, params=None, **metadata):
    """Register the decorated method as a scheme; its name is the method's name."""

    def register(method):
        name = method.__name__
        summary = (method.__doc__ or "").strip().split("\n")[0]
        INITIALIZERS[name] = Scheme(name, summary, formula, params or {}, **metadata)
        for alias in (
            name,
            *metadata.get("keras", ()),
            *metadata.get("pytorch", ()),
            *metadata.get("aliases", ()),
        ):
            if ALIASES.setdefault(alias, name) != name:
                raise RuntimeError(f"{alias!r} names both {ALIASES[alias]} and {name}")
        return method

    return register


# --- cross-parameter checks ---------------------------------------------------------------------
def _check_uniform_range(name, p):
    if p["minval"] > p["maxval"]:
        raise ValueError(
            f"{name}: minval must be <= maxval, got minval={p['minval']!r}, maxval={p['maxval']!r}"
        )
    return p


def _check_truncation(name, p):
    mean, stddev = p["mean"], p["stddev"]
    p["low"] = mean - 2 * stddev if p["low"] is None else p["low"]
    p["high"] = mean + 2 * stddev if p["high"] is None else p["high"]
    if not p["low"] < p["high"]:
        raise ValueError(f"{name}: low must be < high, got low={p['low']!r}, high={p['high']!r}")
    # Draws are made by rejection; a window far out in the tail and wide would reject nearly all.
    _, rate = _truncation_proposal((p["low"] - mean) / stddev, (p["high"] - mean) / stddev)
    if rate < 1e-3:
        raise ValueError(
            f"{name}: [low, high] = [{p['low']!r}, {p['high']!r}] lies too far in the tail of "
            f"N({mean!r}, {stddev!r}²) to sample (acceptance {rate:.2g}); expected a window "
            f"nearer the mean"
        )
    return p


def _check_distribution(name, p):
    # Keras accepts "normal" and means its truncated normal.
    if p["distribution"] == "normal":
        p["distribution"] = "truncated_normal"
    return p


def _check_gain_arguments(name, p):
    calculate_gain(p["nonlinearity"], p["a"])
    return p


_MODES = _one_of("fan_in", "fan_out", "fan_avg")
_KAIMING_MODES = _one_of("fan_in", "fan_out")  # PyTorch has no fan_avg for Kaiming
_DISTRIBUTIONS = _one_of("truncated_normal", "untruncated_normal", "uniform", "normal")
_GAIN = {"gain": Param(1.0, checks.number)}
_NON_NEGATIVE_GAIN = {"gain": Param(1.0, _non_negative)}
_KAIMING = {
    "a": Param(0.0, checks.number),
    "mode": Param("fan_in", _KAIMING_MODES),
    "nonlinearity": Param("leaky_relu", _nonlinearity),
}

# Attributes of Initializer that are not schemes, so no name may resolve to them.
_NOT_SCHEMES = {"get_config", "from_config"}


class Initializer:
    """Draw a layer's (weights, bias) for a weight shape (units, fan_in).

    Parameters
    ----------
    method : str
        A scheme name in Keras's or PyTorch's spelling ("he_normal", "HeNormal",
        "kaiming_uniform_", "orthogonal", ... `initlab inits` lists them) or the name of a method
        patched onto the class, as the post does.
    scale : float or None
        For "random_normal", the post's multiplier: weights = randn(units, fan_in) * scale.
        For "variance_scaling", Keras's scale (Var(W) = scale / n). None: the scheme's default.
    seed : int or None
        If given, this initializer draws from its own Generator(seed), which advances from call to
        call (two layers sharing it get different draws; the sequence repeats with the seed).
        If None, it draws from the Generator the layer passes (derived from the model's seed).
    **params
        The scheme's parameters (mean, stddev, mode, distribution, gain, a, nonlinearity,
        sparsity, std, value, ...). They are checked here: a bad one raises ValueError.

    Attributes `shape` and `rng` are set on each call, so methods (built-in or patched) read them;
    `params` holds every parameter of the scheme, defaults included.

    Example
    -------
    >>> w, b = Initializer("he", seed=0)((12, 2))
    >>> w.shape, b.shape
    ((12, 2), (12, 1))
    >>> Initializer("variance_scaling", scale=2.0, mode="fan_out", distribution="uniform")
    Initializer(method='variance_scaling', scale=2.0, mode='fan_out', distribution='uniform')
    """

    def __init__(self, method="random_normal", scale=None, seed=None, **params):
        if not isinstance(method, str):
            raise ValueError(f"method must be a scheme name, got {method!r}")
        if scale is not None:
            params["scale"] = scale
        seed = checks.integer("seed", seed, minimum=0, optional=True)
        self.method, self.params = _resolve(type(self), method, params)
        # The post's patched methods read self.scale; schemes without a scale see the neutral 1.
        self.scale = self.params.get("scale", 1.0)
        self.seed = seed
        self._own_rng = None if seed is None else np.random.default_rng(seed)
        self.shape = None
        self.rng = None

    def __call__(self, shape, rng=None):
        self.shape = _check_shape(shape)
        if self._own_rng is not None:
            self.rng = self._own_rng
        elif rng is not None:
            self.rng = rng
        else:
            self.rng = np.random.default_rng()
        weights, bias = getattr(self, self.method)()
        return self._numbers("weights", weights), self._numbers("bias", bias)

    def _numbers(self, name, value):
        # A function or patched method may return anything: strings would be parsed as numbers
        # ('1.5') or fail without naming the initializer, complex numbers lose their parts.
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise ValueError(
                f"initializer {self!r} returned {name} of dtype {value.dtype}; expected real "
                "numbers"
            )
        return value.astype(float, copy=False)

    # --- helpers the schemes share -------------------------------------------------------------
    def _zero_bias(self):
        return np.zeros((self.shape[0], 1))

    def _fan(self, mode):
        fan_out, fan_in = self.shape
        return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]

    def _variance_scaling(self, scale, mode, distribution):
        """The core of every fan-based scheme: weights with Var(W) = scale / n, n = the fan of mode.

        uniform: U(-limit, limit), limit = sqrt(3 scale / n) (a uniform's variance is limit² / 3);
        untruncated_normal: N(0, scale / n);
        truncated_normal: N(0, sigma²) redrawn beyond ±2 sigma, sigma = sqrt(scale / n) / 0.8796...
        """
        variance = scale / self._fan(mode)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return self.rng.uniform(-limit, limit, self.shape)
        if distribution == "untruncated_normal":
            return self.rng.standard_normal(self.shape) * math.sqrt(variance)
        stddev = math.sqrt(variance) / TRUNCATED_NORMAL_STD
        return _truncated_normal(self.rng, self.shape, 0.0, stddev, -2 * stddev, 2 * stddev)

    def _kaiming(self, distribution):
        p = self.params
        gain = calculate_gain(p["nonlinearity"], p["a"])
        return self._variance_scaling(gain**2, p["mode"], distribution), self._zero_bias()

    # --- constants ------------------------------------------------------------------------------
    @_scheme("W = 0", keras=("zeros",), pytorch=("zeros_",), aliases=("zero",))
    def zeros(self):
        """All zeros: every unit of a layer computes the same thing, so symmetry is never broken."""
        return np.zeros(self.shape), self._zero_bias()

    @_scheme("W = 1", keras=("ones",), pytorch=("ones_",), aliases=("one",))
    def ones(self):
        """All ones (symmetric, like zeros)."""
        return np.ones(self.shape), self._zero_bias()

    @_scheme(
        "W = value",
        {"value": Param(0.0, checks.number)},
        keras=("constant",),
        pytorch=("constant_",),
        translations={"constant_": ({"val": "value"}, {})},
    )
    def constant(self):
        """Every weight equal to `value` (PyTorch's constant_(val))."""
        return np.full(self.shape, self.params["value"]), self._zero_bias()

    # --- plain distributions ----------------------------------------------------------------------
    @_scheme(
        "scale · N(mean, stddev²), default N(0, 1)",
        {
            "mean": Param(0.0, checks.number),
            "stddev": Param(1.0, _non_negative),
            "scale": Param(1.0, _non_negative),
        },
        keras=("random_normal",),
        keras_note="stddev 0.05 there",
        pytorch=("normal_",),
        aliases=("normal",),
        translations={"normal_": ({"std": "stddev"}, {})},
    )
    def random_normal(self):
        """The post's scheme, W = randn(units, fan_in) * scale, generalised to N(mean, stddev²).

        >>> Initializer(scale=10, seed=0)((3, 2))[0].shape      # the post's "large random values"
        (3, 2)
        """
        p = self.params
        normal = self.rng.standard_normal(self.shape)
        return p["scale"] * (p["mean"] + p["stddev"] * normal), self._zero_bias()

    @_scheme(
        "U(minval, maxval), default ±0.05",
        {"minval": Param(-0.05, checks.number), "maxval": Param(0.05, checks.number)},
        keras=("random_uniform",),
        pytorch=("uniform_",),
        pytorch_note="default U(0, 1)",
        aliases=("uniform",),
        translations={"uniform_": ({"a": "minval", "b": "maxval"}, {"minval": 0.0, "maxval": 1.0})},
        check=_check_uniform_range,
    )
    def random_uniform(self):
        """Uniform on [minval, maxval) (Keras's RandomUniform; PyTorch's uniform_(a, b))."""
        p = self.params
        return self.rng.uniform(p["minval"], p["maxval"], self.shape), self._zero_bias()

    @_scheme(
        "N(mean, stddev²) cut at mean ± 2·stddev",
        {
            "mean": Param(0.0, checks.number),
            "stddev": Param(0.05, checks.positive),
            "low": Param(None, _optional_real),
            "high": Param(None, _optional_real),
        },
        keras=("truncated_normal",),
        pytorch=("trunc_normal_",),
        pytorch_note="a, b absolute",
        translations={
            "trunc_normal_": (
                {"std": "stddev", "a": "low", "b": "high"},
                {"stddev": 1.0, "low": -2.0, "high": 2.0},
            )
        },
        check=_check_truncation,
    )
    def truncated_normal(self):
        """A normal whose draws outside [low, high] are redrawn (Keras: [mean ∓ 2 stddev]).

        PyTorch's trunc_normal_(mean, std, a, b) cuts at the absolute bounds a, b: with its default
        a=-2, b=2 and a small std (0.02, say) it truncates nothing.
        """
        p = self.params
        weights = _truncated_normal(
            self.rng, self.shape, p["mean"], p["stddev"], p["low"], p["high"]
        )
        return weights, self._zero_bias()

    # --- variance scaling and its presets ---------------------------------------------------------
    @_scheme(
        "σ² = scale/n_mode: TN(σ), N(0, σ²) or U(±√3σ)",
        {
            "scale": Param(1.0, checks.positive),
            "mode": Param("fan_in", _MODES),
            "distribution": Param("truncated_normal", _DISTRIBUTIONS),
        },
        keras=("variance_scaling",),
        check=_check_distribution,
    )
    def variance_scaling(self):
        """Keras's VarianceScaling: Var(W) = scale / n, n the fan that `mode` names.

        Reference: Keras, keras.initializers.VarianceScaling.
        """
        p = self.params
        weights = self._variance_scaling(p["scale"], p["mode"], p["distribution"])
        return weights, self._zero_bias()

    @_scheme(
        "TN(√(2 / (fan_in + fan_out)))",
        keras=("glorot_normal",),
        pytorch_note="xavier_normal_ is untruncated",
    )
    def glorot_normal(self):
        """Keras's Glorot normal: variance_scaling(1, fan_avg, truncated_normal).

        Reference: Glorot & Bengio (2010), "Understanding the difficulty of training deep
        feedforward neural networks".
        """
        return self._variance_scaling(1.0, "fan_avg", "truncated_normal"), self._zero_bias()

    @_scheme(
        "U(±gain · √(6 / (fan_in + fan_out)))",
        _NON_NEGATIVE_GAIN,
        keras=("glorot_uniform",),
        pytorch=("xavier_uniform_",),
        aliases=("xavier_uniform",),
    )
    def glorot_uniform(self):
        """Glorot (Xavier) uniform: variance_scaling(gain², fan_avg, uniform); Keras's default.

        Reference: Glorot & Bengio (2010).
        """
        gain = self.params["gain"]
        return self._variance_scaling(gain**2, "fan_avg", "uniform"), self._zero_bias()

    @_scheme(
        "N(0, gain² · 2 / (fan_in + fan_out))",
        _NON_NEGATIVE_GAIN,
        keras_note="≡ glorot_normal, untruncated",
        pytorch=("xavier_normal_",),
    )
    def xavier_normal(self):
        """PyTorch's Xavier normal: variance_scaling(gain², fan_avg, untruncated_normal).

        Reference: Glorot & Bengio (2010).
        """
        gain = self.params["gain"]
        return self._variance_scaling(gain**2, "fan_avg", "untruncated_normal"), self._zero_bias()

    @_scheme(
        "N(0, 1 / fan_in), the post's",
        keras_note="≡ lecun_normal, untruncated",
        pytorch_note="≡ kaiming_normal_, 'linear'",
    )
    def xavier(self):
        """The post's "xavier": W = randn(units, fan_in) * sqrt(1 / fan_in) (LeCun's variance)."""
        return self._variance_scaling(1.0, "fan_in", "untruncated_normal"), self._zero_bias()

    @_scheme(
        "N(0, 2 / fan_in), the post's",
        keras_note="≡ he_normal, untruncated",
        pytorch_note="≡ kaiming_normal_()",
    )
    def he(self):
        """The post's He: W = randn(units, fan_in) * sqrt(2 / fan_in) (He et al., 2015)."""
        return self._variance_scaling(2.0, "fan_in", "untruncated_normal"), self._zero_bias()

    @_scheme(
        "TN(√(2 / fan_in))", keras=("he_normal",), pytorch_note="kaiming_normal_ is untruncated"
    )
    def he_normal(self):
        """Keras's He normal, truncated: variance_scaling(2, fan_in, truncated_normal).

        Reference: He et al. (2015), "Delving deep into rectifiers", arXiv:1502.01852.
        """
        return self._variance_scaling(2.0, "fan_in", "truncated_normal"), self._zero_bias()

    @_scheme(
        "N(0, gain(nonlinearity, a)² / n_mode)",
        _KAIMING,
        keras_note="he_normal is truncated",
        pytorch=("kaiming_normal_",),
        check=_check_gain_arguments,
    )
    def kaiming_normal(self):
        """PyTorch's Kaiming normal, untruncated: variance_scaling(gain², mode, untruncated_normal).

        Defaults (a=0, mode="fan_in", nonlinearity="leaky_relu") give gain sqrt(2): the post's he.
        Reference: He et al. (2015), arXiv:1502.01852.
        """
        return self._kaiming("untruncated_normal")

    @_scheme(
        "U(±gain(nonlinearity, a) · √(3 / n_mode))",
        _KAIMING,
        keras=("he_uniform",),
        keras_note="at the defaults",
        pytorch=("kaiming_uniform_",),
        check=_check_gain_arguments,
    )
    def kaiming_uniform(self):
        """He (Kaiming) uniform: variance_scaling(gain², mode, uniform); by default U(±√(6/fan_in)).

        Reference: He et al. (2015), arXiv:1502.01852.
        """
        return self._kaiming("uniform")

    @_scheme("TN(√(1 / fan_in))", keras=("lecun_normal",))
    def lecun_normal(self):
        """LeCun normal, truncated: variance_scaling(1, fan_in, truncated_normal).

        Reference: LeCun et al. (1998), "Efficient BackProp"; Klambauer et al. (2017), SELU.
        """
        return self._variance_scaling(1.0, "fan_in", "truncated_normal"), self._zero_bias()

    @_scheme("U(±√(3 / fan_in))", keras=("lecun_uniform",))
    def lecun_uniform(self):
        """LeCun uniform: variance_scaling(1, fan_in, uniform).

        Reference: LeCun et al. (1998), "Efficient BackProp".
        """
        return self._variance_scaling(1.0, "fan_in", "uniform"), self._zero_bias()

    # --- structured matrices ----------------------------------------------------------------------
    @_scheme(
        "gain · Q sign(diag R), where Q R ~ N(0, 1)",
        _GAIN,
        keras=("orthogonal",),
        pytorch=("orthogonal_",),
        aliases=("orthogonal_initializer",),
    )
    def orthogonal(self):
        """A (semi-)orthogonal matrix times gain: W Wᵀ = gain² I on the smaller side.

        Q comes from the QR factorisation of a standard normal (max, min) matrix; multiplying its
        columns by the signs of R's diagonal makes Q uniformly (Haar) distributed (Mezzadri 2007),
        the correction Keras and PyTorch both apply.
        Reference: Saxe et al. (2014), "Exact solutions to the nonlinear dynamics of learning in
        deep linear neural networks", arXiv:1312.6120.
        """
        units, fan_in = self.shape
        normal = self.rng.standard_normal((max(units, fan_in), min(units, fan_in)))
        q, r = np.linalg.qr(normal)
        q *= np.where(np.diagonal(r) < 0, -1.0, 1.0)
        weights = q if units >= fan_in else q.T
        return self.params["gain"] * weights, self._zero_bias()

    @_scheme(
        "gain · I",
        _GAIN,
        keras=("identity",),
        pytorch=("eye_",),
        pytorch_note="gain 1 only",
        aliases=("eye", "identity_initializer"),
    )
    def identity(self):
        """The identity matrix times gain; rectangular shapes keep as many inputs as they can."""
        return self.params["gain"] * np.eye(*self.shape), self._zero_bias()

    @_scheme(
        "N(0, std²); ⌈sparsity·units⌉ zeros/column",
        {"sparsity": Param(0.1, checks.fraction), "std": Param(0.01, _non_negative)},
        pytorch=("sparse_",),
        pytorch_note="sparsity required",
    )
    def sparse(self):
        """PyTorch's sparse_: each input's column keeps only a fraction 1 - sparsity of its weights.

        Reference: Martens (2010), "Deep learning via Hessian-free optimization".
        """
        units, fan_in = self.shape
        weights = self.rng.normal(0.0, self.params["std"], self.shape)
        n_zeros = math.ceil(self.params["sparsity"] * units)
        # Sorting a column of uniforms gives a random permutation of its rows; the first n_zeros
        # of each permutation are zeroed.
        rows = np.argsort(self.rng.random(self.shape), axis=0)[:n_zeros]
        weights[rows, np.arange(fan_in)] = 0.0
        return weights, self._zero_bias()

    @_scheme("W, b ~ U(±1/√fan_in) (kaiming_uniform, a=√5)", pytorch_note="nn.Linear's default")
    def pytorch_linear(self):
        """PyTorch's nn.Linear default: kaiming_uniform(a=sqrt(5)) weights and a uniform bias.

        With a = sqrt(5), gain² = 2 / (1 + 5) = 1/3, so the bound is sqrt(3 gain² / fan_in) =
        1 / sqrt(fan_in): the same bound as the bias, U(±1/sqrt(fan_in)).
        """
        gain = calculate_gain("leaky_relu", math.sqrt(5.0))
        weights = self._variance_scaling(gain**2, "fan_in", "uniform")
        bound = 1.0 / math.sqrt(self.shape[1])
        return weights, self.rng.uniform(-bound, bound, (self.shape[0], 1))

    # --- configuration -----------------------------------------------------------------------
    @property
    def name(self):
        """The scheme's name (the function's, for a function initializer), as summary shows it."""
        return self.method

    def get_config(self):
        return {"method": self.method, **self.params, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        scheme = INITIALIZERS.get(self.method)
        defaults = {} if scheme is None else scheme.validate({})
        shown = {k: v for k, v in self.params.items() if defaults.get(k, object()) != v}
        if self.seed is not None:
            shown["seed"] = self.seed
        args = "".join(f", {key}={value!r}" for key, value in shown.items())
        return f"Initializer(method={self.method!r}{args})"


class _FunctionInitializer(Initializer):
    """Adapts a plain function returning W or (W, b): fn(shape), fn(shape, rng) or fn(shape, rng=).

    The layer's Generator is passed when the function asks for it: as a second positional
    argument if it has a required one, or as the keyword `rng` if it has that parameter.
    """

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.method = "_call_function"
        self._rng_argument = _rng_argument(function)

    def _call_function(self):
        if self._rng_argument == "positional":
            result = self.function(self.shape, self.rng)
        elif self._rng_argument == "keyword":
            result = self.function(self.shape, rng=self.rng)
        else:
            result = self.function(self.shape)
        if isinstance(result, tuple):
            return result
        return result, self._zero_bias()

    @property
    def name(self):
        return getattr(self.function, "__qualname__", repr(self.function))

    def get_config(self):
        return {"function": self.name}

    def __repr__(self):
        return f"Initializer({self.function!r})"


class FunctionNotSaved(_FunctionInitializer):
    """What stands for a function initializer in a loaded model: its name, which get_config and
    summary give as the function's; drawing with it is an error that says why (a file holds the
    weights the function drew, never the function). `role`: "initializer" or "bias_initializer"."""

    def __init__(self, name, role="initializer"):
        def draw(shape):
            raise ValueError(
                f"this layer's {role} was the function {name!r}, which a model file does not "
                "hold (the numbers it drew are in the file); expected a new one to draw new "
                "numbers: build the layer again with it"
            )

        draw.__qualname__ = name
        super().__init__(draw)
        self.role = role

    def __repr__(self):
        return f"Initializer(function {self.name!r}, not saved)"


def _rng_argument(function):
    """How `function` wants the Generator: "positional", "keyword" or None (it takes only shape)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: call them with shape only
        return None
    try:
        signature.bind(None)
    except TypeError:
        try:
            signature.bind(None, None)
        except TypeError:
            raise ValueError(
                f"an initializer function must accept (shape) or (shape, rng), got {function!r} "
                f"with signature {signature}"
            ) from None
        return "positional"
    if "rng" in signature.parameters:
        return "keyword"
    return None


def _snake_case(name):
    # "HeNormal" -> "he_normal", "he_normal" and "kaiming_normal_" unchanged: Keras's class names.
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip()).lower()


def _resolve(cls, method, params):
    """(scheme name, checked parameters) for a name as the user wrote it."""
    key = _snake_case(method)
    if key in ALIASES:
        scheme = INITIALIZERS[ALIASES[key]]
        renames, defaults = scheme.translations.get(key, ({}, {}))
        translated = dict(defaults)
        for argument, value in params.items():
            target = renames.get(argument, argument)
            if target in params and target != argument:
                raise ValueError(f"{method}: give {argument!r} or {target!r}, not both")
            translated[target] = value
        # Every Initializer of the post's framework carried scale=1.0: it means "no change".
        scale = translated.get("scale")
        if "scale" not in scheme.params and not isinstance(scale, bool) and scale == 1:
            del translated["scale"]
        return scheme.name, scheme.validate(translated)
    if key == "lsuv":
        raise ValueError(
            "lsuv depends on data, so it is not an Initializer: call model.initialize(X, "
            "method='lsuv') on a batch X"
        )
    if method in _NOT_SCHEMES or method.startswith("_") or not callable(getattr(cls, method, None)):
        close = difflib.get_close_matches(key, list(ALIASES) + ["lsuv"], n=3)
        hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
        raise ValueError(
            f"method {method!r} is not known; expected one of {sorted(ALIASES)} (or a Keras "
            f"class name such as 'HeNormal'), or the name of a method patched onto Initializer"
            f"{hint}"
        )
    # A method patched onto the class: its parameters are its own; scale is the post's.
    params = dict(params)
    params["scale"] = _non_negative(f"{method}: scale", params.get("scale", 1.0))
    return method, params


def _truncated_normal(rng, shape, mean, stddev, low, high):
    """N(mean, stddev²) restricted to [low, high], by rejection: rejected draws are drawn again.

    Proposals come from the normal itself (accepted if inside the window: Keras's "redraw beyond
    two standard deviations") or, for a window out in the tail where few normal draws land, from
    a uniform on the window (accepted with probability density / peak density). Both give exactly
    the truncated normal; the one that accepts more is used.
    """
    low, high = (low - mean) / stddev, (high - mean) / stddev
    use_uniform, _ = _truncation_proposal(low, high)
    size = math.prod(shape)
    values = np.empty(size)
    filled = 0
    while filled < size:
        need = size - filled
        if use_uniform:
            nearest = min(max(0.0, low), high)  # where the density peaks inside the window
            proposals = rng.uniform(low, high, need)
            keep = rng.random(need) <= np.exp((nearest**2 - proposals**2) / 2)
        else:
            proposals = rng.standard_normal(need)
            keep = (proposals >= low) & (proposals <= high)
        accepted = proposals[keep]
        values[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return mean + stddev * values.reshape(shape)


def _truncation_proposal(low, high):
    """(use a uniform proposal?, its acceptance rate) for the standard normal cut to [low, high]."""
    mass = _normal_mass(low, high)
    nearest = min(max(0.0, low), high)
    peak = math.exp(-(nearest**2) / 2) / math.sqrt(2 * math.pi)
    if mass <= 0 or peak <= 0:  # beyond ~38 standard deviations both underflow
        return False, 0.0
    uniform_rate = mass / ((high - low) * peak)
    return uniform_rate > mass, max(mass, uniform_rate)


def _normal_mass(low, high):
    """P(low <= Z <= high) for a standard normal Z, precise in the tails too."""
    # erfc keeps its relative precision far in a tail, where 1 - erf rounds to 0.
    if low >= 0:
        return 0.5 * (math.erfc(low / math.sqrt(2)) - math.erfc(high / math.sqrt(2)))
    if high <= 0:
        return 0.5 * (math.erfc(-high / math.sqrt(2)) - math.erfc(-low / math.sqrt(2)))
    return 1.0 - 0.5 * (math.erfc(-low / math.sqrt(2)) + math.erfc(high / math.sqrt(2)))


def _check_shape(shape):
    try:
        units, fan_in = shape
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair (units, fan_in), got {shape!r}") from None
    return (
        checks.integer("shape's units", units, minimum=1),
        checks.integer("shape's fan_in", fan_in, minimum=1),
    )


def get(identifier):
    """Return an Initializer from a name, a config dict, an Initializer, a function, or None.

    None gives the post's default, Initializer() = randn * 1. An unknown name raises ValueError
    listing the known ones.
    """
    if identifier is None:
        return Initializer()
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return Initializer(method=identifier)
    if isinstance(identifier, dict):
        if "method" not in identifier:
            raise ValueError(
                f"an initializer config must have a 'method' (a function initializer cannot be "
                f"rebuilt from its name), got {identifier!r}"
            )
        return Initializer.from_config(identifier)
    if callable(identifier):
        return _FunctionInitializer(identifier)
    raise ValueError(
        f"initializer must be a name, an Initializer, a function or None, got {identifier!r}"
    )
