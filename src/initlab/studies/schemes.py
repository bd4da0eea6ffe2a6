"""Initialisation schemes as the command line writes them, and the deep MLPs they initialise.

A scheme is written `name` or `name:value`:
    he_normal, glorot_uniform, orthogonal, lecun_normal, ...   any scheme name initlab knows
                           (`initlab inits` lists them), in Keras's or PyTorch's spelling
    name:value             value is the scheme's multiplier: its `scale` where it has one, else
                           its `gain`. random_normal:0.01 draws W ~ N(0, 0.01^2) (the post's
                           randn * scale, so the value is the standard deviation), random_normal:10
                           is the post's "large random" x10, orthogonal:2 an orthogonal matrix
                           times 2, variance_scaling:2 Keras's Var(W) = 2 / fan_in
    lsuv                   layer-sequential unit variance (Mishkin & Matas 2015), data-dependent:
                           model.initialize(X, method="lsuv") on the measured batch
The text as written is the scheme's label in tables and figures.

    >>> [scheme.label for scheme in parse_schemes("he, random_normal:0.01")]
    ['he', 'random_normal:0.01']
    >>> model = deep_mlp(parse_schemes("he")[0], depth=3, width=8, n_inputs=4, n_outputs=2, seed=0)
    >>> [layer.units for layer in model.layers]
    [8, 8, 8, 2]
"""

from dataclasses import dataclass

import numpy as np

from initlab.blocks import initializers
from initlab.blocks.layers import Dense
from initlab.engine.model import NeuralNetwork
from initlab.studies.arguments import check_int

# Data-dependent schemes: applied by the model to a batch after the weights are drawn.
DATA_DEPENDENT = ("lsuv",)


# The parameter a scheme's `:value` sets, in order of preference.
MULTIPLIERS = ("scale", "gain")


@dataclass(frozen=True)
class Scheme:
    """One parsed scheme: its label (the text as written), name, and the value after ':' if any.

    parameter is the Initializer parameter that value sets ("scale" or "gain"), or None.
    """

    label: str
    name: str
    value: float | None = None
    parameter: str | None = None

    def initializer(self):
        """A fresh Initializer for one layer (LSUV: its orthonormal start, re-drawn by LSUV)."""
        if self.name in DATA_DEPENDENT:
            return initializers.Initializer("orthogonal")
        if self.value is None:
            return initializers.Initializer(self.name)
        return initializers.Initializer(self.name, **{self.parameter: self.value})

    def apply(self, model, X):
        """Finish a data-dependent scheme on a batch X (n_features, m); others need nothing."""
        if self.name in DATA_DEPENDENT:
            model.initialize(X, method=self.name)


def available_schemes():
    """The scheme names this installation knows (canonical names, without aliases), sorted."""
    return sorted(set(initializers.INITIALIZERS) | set(DATA_DEPENDENT))


# What `initlab diagnose` and `initlab deep` compare when --schemes is not given: for each entry,
# the first spelling this installation knows (the post's "he" until he_normal is registered).
DEFAULT_CANDIDATES = (
    ("he_normal", "he"),
    ("glorot_uniform",),
    ("pytorch_linear",),
    ("lecun_normal",),
    ("orthogonal",),
    ("lsuv",),
    ("random_normal:0.01",),
    ("random_normal:10",),
)


def default_schemes():
    """The default comparison, as a comma-separated string of the schemes available here."""
    chosen = []
    for spellings in DEFAULT_CANDIDATES:
        for text in spellings:
            try:
                parse_scheme(text)
            except ValueError:
                continue
            chosen.append(text)
            break
    return ",".join(chosen)


def parse_scheme(text):
    """Parse one `name` or `name:value`; raise ValueError naming the scheme if it is unknown."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a scheme must be a name such as 'he' or 'random_normal:0.01', got "
                         f"{text!r}")
    label = text.strip()
    name, _, value_text = label.partition(":")
    name = name.strip()
    value = None
    if value_text:
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError(f"scheme {label!r}: the value after ':' must be a number, got "
                             f"{value_text!r}") from None
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"scheme {label!r}: the value after ':' must be a finite number "
                             f">= 0, got {value_text!r}")
    if name.lower() in DATA_DEPENDENT:
        name = name.lower()
        if value is not None:
            raise ValueError(f"scheme {label!r} takes no value; write {name!r}")
        return Scheme(label=label, name=name)
    try:
        plain = initializers.Initializer(name)
    except ValueError:
        raise ValueError(f"scheme {name!r} is not known; known schemes (`initlab inits` lists "
                         f"their Keras and PyTorch names too): {available_schemes()}") from None
    if value is None:
        return Scheme(label=label, name=name)
    parameter = next((p for p in MULTIPLIERS if p in plain.params), None)
    if parameter is None:
        raise ValueError(f"scheme {label!r}: {name} has neither a scale nor a gain for the value "
                         f"after ':' to set; write {name!r} alone")
    scheme = Scheme(label=label, name=name, value=value, parameter=parameter)
    scheme.initializer()  # the scheme's own checks, e.g. of its parameters' ranges
    return scheme


def parse_schemes(text):
    """Parse a comma-separated list of schemes; labels must be distinct."""
    if not isinstance(text, str):
        raise ValueError(f"schemes must be a comma-separated string, got {text!r}")
    schemes = [parse_scheme(part) for part in text.split(",") if part.strip()]
    if not schemes:
        raise ValueError(f"schemes must name at least one scheme, got {text!r}")
    labels = [scheme.label for scheme in schemes]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"schemes lists {repeated} more than once: {text!r}")
    return schemes


def deep_mlp(scheme, depth, width, n_inputs, n_outputs, activation="relu", seed=0, X=None,
             dtype="float64"):
    """A softmax classifier with `depth` hidden Dense layers of `width` units, all drawn by scheme.

    Every layer, the output layer included, uses the scheme, as in Glorot & Bengio's and He et
    al.'s experiments. The model is compiled (categorical cross-entropy, plain SGD) and built;
    a data-dependent scheme (LSUV) is then applied to the batch X (n_inputs, m), which it needs.
    """
    for name, value in (("depth", depth), ("width", width), ("n_inputs", n_inputs),
                        ("n_outputs", n_outputs)):
        check_int(name, value, minimum=1)
    if scheme.name in DATA_DEPENDENT and X is None:
        raise ValueError(f"scheme {scheme.label!r} is data-dependent: pass a batch X")
    model = NeuralNetwork(seed=seed, dtype=dtype)
    for _ in range(depth):
        model.add(Dense(width, activation, initializer=scheme.initializer()))
    model.add(Dense(n_outputs, "softmax", initializer=scheme.initializer()))
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    model.build(n_inputs)
    if X is not None:
        scheme.apply(model, X)
    return model


# The digits data set's samples (all 1797: an upper bound of any split a study trains on).
DIGITS_SAMPLES = 1797


def deep_mlp_bytes(depth, width, batch_size, epochs, signals=1, samples=DIGITS_SAMPLES):
    """About the memory one deep_mlp takes on digits: its training (engine.model's
    training_bytes) and `signals` records of every layer's signals (z, a, their gradients,
    dL/dW) on `samples` samples."""
    from initlab.engine.model import training_bytes

    history, buffers = training_bytes([width] * depth + [10], 64, samples, batch_size, epochs)
    per_record = depth * width * (4 * samples + width + 64)
    return history + buffers + 8 * signals * per_record
