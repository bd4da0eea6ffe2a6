"""Initialisation schemes as the command line writes them, their readable labels, and deep MLPs.

A scheme is written `name` or `name:value`:
    he_normal, glorot_uniform, orthogonal, lecun_normal, ...   any scheme name initlab knows
                           (`initlab inits` lists them), in Keras's or PyTorch's spelling
    name:value             value is the scheme's multiplier: its `scale` where it has one, else
                           its `gain`. random_normal:0.01 draws W ~ N(0, 0.01^2) (the post's
                           randn * scale, so the value is the standard deviation), random_normal:10
                           is the post's "large random" x10, orthogonal:2 an orthogonal matrix
                           times 2, variance_scaling:2 Keras's Var(W) = 2 / fan_in
    random_normal_x10      the name `initlab reproduce` gives the post's randn x 10: the same as
                           random_normal:10
    lsuv                   layer-sequential unit variance (Mishkin & Matas 2015), data-dependent:
                           model.initialize(X, method="lsuv") on the measured batch
A list of schemes is written with commas, spaces or both. The text as written is the scheme's
name in tables and result files (and is accepted back); `readable_label` gives the words figures
and printed tables use, for every scheme, in this one place.

    >>> [scheme.label for scheme in parse_schemes("he, random_normal:0.01")]
    ['he', 'random_normal:0.01']
    >>> [scheme.title for scheme in parse_schemes(["HeNormal", "random_normal:10", "lsuv"])]
    ['He normal (truncated)', 'Large random values (randn x 10)', 'LSUV']
    >>> model = deep_mlp(parse_schemes("he")[0], depth=3, width=8, n_inputs=4, n_outputs=2, seed=0)
    >>> [layer.units for layer in model.layers]
    [8, 8, 8, 2]
"""

from dataclasses import dataclass

from initlab.blocks import initializers
from initlab.blocks.layers import Dense
from initlab.engine.model import DATA_DEPENDENT, NeuralNetwork
from initlab.engine.schemes import SPELLINGS, UnknownScheme, listed_names, split_scheme
from initlab.studies.arguments import check_int, split_list, unknown_name

# The --schemes help of every command that compares schemes; {default} is the default list.
SCHEMES_HELP = (
    "schemes, separated by spaces or commas, each `name` or `name:value`. name: any scheme "
    "`initlab inits` lists, in Keras's or PyTorch's spelling (he_normal, glorot_uniform, "
    "orthogonal, lecun_normal, kaiming_uniform_, ...), random_normal_x10 (the post's randn x 10, "
    "as reproduce names it), or lsuv. value: the scheme's scale, or its gain if it has no scale; "
    "for random_normal the scale is the standard deviation, so random_normal:0.01 draws "
    "W ~ N(0, 0.01^2) and random_normal:10 is the post's randn x 10. Default: {default}"
)

# Names that stand for a `name:value` spelling: the post's scheme as `initlab reproduce` names it.

# Readable words for every scheme (by its canonical name), for figures and printed tables.
READABLE = {
    "zeros": "Zeros",
    "ones": "Ones",
    "constant": "Constant",
    "random_normal": "Random normal (randn)",
    "random_uniform": "Random uniform",
    "truncated_normal": "Truncated normal",
    "variance_scaling": "Variance scaling",
    "glorot_normal": "Glorot normal (truncated)",
    "glorot_uniform": "Glorot uniform",
    "xavier_normal": "Xavier normal",
    "xavier": "Xavier (the post's)",
    "he": "He",
    "he_normal": "He normal (truncated)",
    "kaiming_normal": "Kaiming normal",
    "kaiming_uniform": "Kaiming uniform",
    "lecun_normal": "LeCun normal (truncated)",
    "lecun_uniform": "LeCun uniform",
    "orthogonal": "Orthogonal",
    "identity": "Identity",
    "sparse": "Sparse",
    "pytorch_linear": "PyTorch Linear default",
    "lsuv": "LSUV",
}
# Where the post has its own words for a `name:value`.
READABLE_SPELLINGS = {"random_normal:10": "Large random values (randn x 10)"}


@dataclass(frozen=True)
class Scheme:
    """One parsed scheme: its label (the text as written), name, and the value after ':' if any.

    parameter is the Initializer parameter that value sets ("scale" or "gain"), or None.
    """

    label: str
    name: str
    value: float | None = None
    parameter: str | None = None

    @property
    def canonical(self):
        """The registry's name for the scheme, with `:value` if set: he_normal, random_normal:10."""
        name = (
            self.name if self.name in DATA_DEPENDENT else initializers.Initializer(self.name).method
        )
        return name if self.value is None else f"{name}:{self.value:g}"

    @property
    def identity(self):
        """What makes two spellings one scheme: the registry's name and the exact value
        (canonical prints the value to 6 digits, which 0.01 and 0.01000001 share)."""
        return self.canonical.partition(":")[0], self.value

    @property
    def title(self):
        """Readable words for the scheme (see readable_label)."""
        return readable_label(self)

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
    label = text.strip() if isinstance(text, str) else text
    base, colon, given = label.partition(":") if isinstance(label, str) else (label, "", "")
    if colon and base.strip() in SPELLINGS:  # random_normal_x10:3: a spelling sets its value
        meant = SPELLINGS[base.strip()]
        raise ValueError(
            f"scheme {label!r}: {base.strip()} stands for {meant}, whose value it sets; "
            f"expected {base.strip()} alone, or {meant.partition(':')[0]}:{given.strip()}"
        )
    try:
        name, parameter, value = split_scheme(SPELLINGS.get(label, label))
    except UnknownScheme:
        raise _unknown_scheme(SPELLINGS.get(label, label).partition(":")[0].strip()) from None
    scheme = Scheme(label=label, name=name, value=value, parameter=parameter)
    if value is not None:
        scheme.initializer()  # the scheme's own checks, e.g. of its parameters' ranges
    return scheme


def parse_schemes(text):
    """Parse a list of schemes, a string or strings separated by commas or spaces; no repeats."""
    if not isinstance(text, str) and not (
        isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text)
    ):
        raise ValueError(
            f"schemes must be a string of names separated by commas or spaces, got {text!r}"
        )
    schemes = [parse_scheme(part) for part in split_list(text)]
    if not schemes:
        raise ValueError(f"schemes must name at least one scheme, got {text!r}")
    # Two spellings of one scheme (he_normal, HeNormal) are a repeat too.
    identities = [scheme.identity for scheme in schemes]
    repeated = sorted({scheme.label for scheme in schemes if identities.count(scheme.identity) > 1})
    if repeated:
        raise ValueError(f"schemes lists {repeated}, one scheme more than once: {text!r}")
    return schemes


def _unknown_scheme(name):
    # Suggest among every spelling initlab prints (kaiming_normal_, ...) but list the canonical
    # names only: `initlab inits` lists the rest.
    return unknown_name(
        "scheme",
        name,
        available_schemes(),
        candidates=listed_names(),
        hint=" (`initlab inits` lists their Keras and PyTorch names too)",
    )


def readable_label(scheme):
    """Readable words for a scheme (a Scheme or its text), the same in every figure and table.

    >>> readable_label("orthogonal:1.41421356"), readable_label("random_normal:0.01")
    ('Orthogonal, gain 1.41421', 'Random normal x 0.01')
    """
    if isinstance(scheme, str):
        scheme = parse_scheme(scheme)
    if scheme.canonical in READABLE_SPELLINGS:
        return READABLE_SPELLINGS[scheme.canonical]
    name = scheme.canonical.partition(":")[0]
    # A scheme patched onto Initializer has no entry: its name, in words.
    words = READABLE.get(name, name.replace("_", " ").capitalize())
    if scheme.value is None:
        return words
    if scheme.parameter == "scale":
        return f"{words.removesuffix(' (randn)')} x {scheme.value:g}"
    return f"{words}, {scheme.parameter} {scheme.value:g}"


def deep_mlp(
    scheme, depth, width, n_inputs, n_outputs, activation="relu", seed=0, X=None, dtype="float64"
):
    """A softmax classifier with `depth` hidden Dense layers of `width` units, all drawn by scheme.

    Every layer, the output layer included, uses the scheme, as in Glorot & Bengio's and He et
    al.'s experiments. The model is compiled (categorical cross-entropy, plain SGD) and built;
    a data-dependent scheme (LSUV) is then applied to the batch X (n_inputs, m), which it needs.
    """
    for name, value in (
        ("depth", depth),
        ("width", width),
        ("n_inputs", n_inputs),
        ("n_outputs", n_outputs),
    ):
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


def kernel_models(activations, width, n_inputs, n_outputs):
    """One deep_mlp per activation, one hidden layer deep: the training kernel each needs serves
    every depth and scheme of that activation (arguments.say_compiling counts them)."""
    (he,) = parse_schemes("he")
    return [deep_mlp(he, 1, width, n_inputs, n_outputs, activation) for activation in activations]


def deep_mlp_bytes(depth, width, batch_size, epochs, signals=1, samples=DIGITS_SAMPLES):
    """About the memory one deep_mlp takes on digits: its training (engine.model's
    training_bytes) and `signals` records of every layer's signals (z, a, their gradients,
    dL/dW) on `samples` samples."""
    from initlab.engine.model import training_bytes

    history, buffers = training_bytes([width] * depth + [10], 64, samples, batch_size, epochs)
    per_record = depth * width * (4 * samples + width + 64)
    return history + buffers + 8 * signals * per_record
