"""Weight initializers: the post's `Initializer`, whose methods are found by name at call time.

An initializer is called with a weight shape (units, fan_in), the layout of PyTorch's Linear
weight, so fan_in = shape[1] and fan_out = shape[0]. It returns (weights, bias) with shapes
(units, fan_in) and (units, 1).

The method is looked up on the instance each time it is called, so the post's patches work:

    >>> import numpy as np
    >>> def he(self):
    ...     scale = np.sqrt(2 / self.shape[1])
    ...     return np.random.randn(*self.shape) * scale, np.zeros((self.shape[0], 1))
    >>> Initializer.he = he   # replaces the built-in "he" for every Initializer, as in the post

Built-in methods draw from `self.rng`, a numpy Generator: the layer passes one derived from the
model's seed, or the initializer's own `seed` takes precedence. NumPy's global state is never used.
"""

import numpy as np

# Every name a user may write, mapped to the method that implements it.
ALIASES = {
    "random_normal": "random_normal",
    "normal": "random_normal",
    "zeros": "zeros",
    "zero": "zeros",
    "he": "he",
}


class Initializer:
    """Draw a layer's (weights, bias) for a weight shape (units, fan_in).

    Parameters
    ----------
    method : str
        A registered name ("random_normal", "he", "zeros", ...) or the name of a method patched
        onto the class.
    scale : float
        The multiplier of the post's "random_normal": weights = randn(units, fan_in) * scale.
    seed : int or None
        If given, this initializer draws from its own Generator(seed), which advances from call to
        call (two layers sharing it get different draws; the sequence repeats with the seed).
        If None, it draws from the Generator the layer passes (derived from the model's seed).

    Example
    -------
    >>> w, b = Initializer("he", seed=0)((12, 2))
    >>> w.shape, b.shape
    ((12, 2), (12, 1))
    """

    def __init__(self, method="random_normal", scale=1.0, seed=None):
        if not isinstance(method, str):
            raise ValueError(f"method must be a scheme name, got {method!r}")
        self.method = ALIASES.get(method.lower(), method)
        if not callable(getattr(self, self.method, None)):
            raise ValueError(
                f"method {method!r} is not known; expected one of {sorted(ALIASES)} "
                f"or the name of a method patched onto Initializer"
            )
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
            raise ValueError(f"scale must be a number >= 0, got {scale!r}")
        if not np.isfinite(scale) or scale < 0:
            raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        self.scale = scale
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
        return np.asarray(weights, dtype=float), np.asarray(bias, dtype=float)

    # --- the schemes -------------------------------------------------------------------------
    def _zero_bias(self):
        return np.zeros((self.shape[0], 1))

    def random_normal(self):
        """The post's scheme: W = randn(units, fan_in) * scale."""
        return self.rng.standard_normal(self.shape) * self.scale, self._zero_bias()

    def zeros(self):
        """W = 0: every unit of a layer computes the same thing, so symmetry is never broken."""
        return np.zeros(self.shape), self._zero_bias()

    def he(self):
        """The post's He: W = randn(units, fan_in) * sqrt(2 / fan_in) (He et al., 2015)."""
        return self.rng.standard_normal(self.shape) * np.sqrt(2.0 / self.shape[1]), self._zero_bias()

    # --- configuration -----------------------------------------------------------------------
    def get_config(self):
        return {"method": self.method, "scale": self.scale, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"Initializer(method={self.method!r}, scale={self.scale!r}, seed={self.seed!r})"


class _FunctionInitializer(Initializer):
    """Adapts a plain function fn(shape) or fn(shape, rng), returning W or (W, b)."""

    def __init__(self, function):
        super().__init__()
        self.function = function
        self.method = "_call_function"

    def _call_function(self):
        try:
            result = self.function(self.shape, self.rng)
        except TypeError:
            result = self.function(self.shape)
        if isinstance(result, tuple):
            return result
        return result, self._zero_bias()

    def get_config(self):
        return {"function": getattr(self.function, "__qualname__", repr(self.function))}

    def __repr__(self):
        return f"Initializer({self.function!r})"


def _check_shape(shape):
    try:
        shape = tuple(int(n) for n in shape)
    except TypeError:
        raise ValueError(f"shape must be (units, fan_in), got {shape!r}") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be (units, fan_in) with both >= 1, got {shape!r}")
    return shape


def get(identifier):
    """Return an Initializer from a name, a config dict, an Initializer, a function, or None."""
    if identifier is None:
        return Initializer()
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return Initializer(method=identifier)
    if isinstance(identifier, dict):
        return Initializer.from_config(identifier)
    if callable(identifier):
        return _FunctionInitializer(identifier)
    raise ValueError(
        f"initializer must be a name, an Initializer, a function or None, got {identifier!r}"
    )
