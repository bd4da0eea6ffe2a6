"""The explorer's settings: every value a page sends, checked on the server before it is used.

A page sends its settings as one JSON object. `parse_settings` turns it into a frozen `Settings`
or raises ValueError naming the field, echoing the value and saying what was expected; nothing is
built before every field has passed. Fields that are absent take the post's experiment:
moons (400 training and 100 test points, noise 0.2), Dense 12 relu, Dense 6 relu, Dense 1 sigmoid,
He for the hidden layers and randn x 1 for the output layer, plain gradient descent at 0.01 on
the full batch, one seed.

Sizes are bounded so that no page can ask the server for unbounded work or memory: at most
MAX_LAYERS hidden layers of MAX_UNITS units, MAX_SEEDS seeds, MAX_POINTS training (and test)
points, and seeds x training points x hidden units at most MAX_WORK.

    >>> settings = parse_settings({"scheme": "zeros", "seeds": 4})
    >>> settings.hidden, settings.scheme_label, settings.seeds
    ((12, 6), 'zeros', 4)
    >>> parse_settings({"seeds": 64})
    Traceback (most recent call last):
    ...
    ValueError: seeds must be an integer from 1 to 32, got 64
"""

from dataclasses import asdict, dataclass

from initlab import checks
from initlab.blocks import activations, optimizers
from initlab.studies.schemes import DATA_DEPENDENT, available_schemes, parse_scheme

MAX_LAYERS = 8
MAX_UNITS = 256
MAX_SEEDS = 32
MAX_POINTS = 5000
MIN_POINTS = 10
MAX_NOISE = 2.0
MAX_LEARNING_RATE = 10.0
MAX_SCHEME_VALUE = 1000.0
MAX_EPOCHS_PER_SECOND = 100_000
MAX_EPOCHS = 1_000_000
MAX_DATA_SEED = 2**32 - 1
# seeds x training points x hidden units: each bound alone allows 32 x 5000 x 2048 = 3.3e8
# numbers per layer buffer, about 13 GB of buffers and minutes an epoch. 2**24 keeps a session
# under about 1 GB and a few seconds an epoch (1 seed, 5000 points, 8 x 256 units just fit;
# the post's network takes 32 seeds of 5000 points).
MAX_WORK = 2**24

DATASETS = ("moons", "circles", "spirals", "xor", "gaussians")
# Hidden-layer activations: every registered one except softmax, which belongs to an output.
HIDDEN_ACTIVATIONS = tuple(sorted(name for name in activations.ACTIVATIONS if name != "softmax"))
# Each optimizer once, by its own name (the registry also holds aliases such as "gd").
OPTIMIZERS = tuple(sorted({kind.name for kind in optimizers.OPTIMIZERS.values()}))


@dataclass(frozen=True)
class Settings:
    """One checked set of the explorer's settings (see the module docstring for the defaults).

    scheme_value is the scheme's scale or gain (`name:value`), or None for its own default;
    layer_schemes holds one scheme text per hidden layer, or is empty for `scheme` everywhere;
    batch_size None is the full batch.
    """

    dataset: str = "moons"
    noise: float = 0.2
    train_size: int = 400
    test_size: int = 100
    data_seed: int = 0
    hidden: tuple = (12, 6)
    activation: str = "relu"
    scheme: str = "he"
    scheme_value: float | None = None
    layer_schemes: tuple = ()
    output_scheme: str = "random_normal"
    learning_rate: float = 0.01
    optimizer: str = "sgd"
    batch_size: int | None = None
    epochs_per_second: int = 1000
    max_epochs: int = 15000
    seeds: int = 1

    @property
    def scheme_label(self):
        """The hidden layers' scheme as the study commands write it: `he`, `random_normal:10`."""
        if self.scheme_value is None:
            return self.scheme
        return f"{self.scheme}:{_shortest(self.scheme_value)}"

    @property
    def data_dependent(self):
        """Whether the scheme is re-drawn from the data (LSUV): model.initialize(X, method)."""
        return self.scheme in DATA_DEPENDENT

    def hidden_schemes(self):
        """The parsed scheme of each hidden layer (initlab.studies.schemes.Scheme)."""
        texts = self.layer_schemes or (self.scheme_label,) * len(self.hidden)
        return [parse_scheme(text) for text in texts]

    def as_dict(self):
        """JSON-ready: what the page shows and puts in its URL."""
        values = asdict(self)
        values["hidden"] = ",".join(str(units) for units in self.hidden)
        values["layer_schemes"] = ",".join(self.layer_schemes)
        return values


FIELDS = tuple(Settings.__dataclass_fields__)


def parse_settings(values, base=None):
    """Check a page's settings and return a Settings; ValueError naming the first bad field.

    values : dict of field -> value, as JSON decodes it (numbers as int or float, texts as str).
        Absent fields keep `base`'s values (the post's experiment when base is None). Unknown
        fields are refused, so a typo is never silently ignored.
    """
    if not isinstance(values, dict):
        raise ValueError(f"settings must be an object of field: value, got {_show(values)}")
    unknown = sorted(str(key) for key in values if key not in FIELDS)
    if unknown:
        raise ValueError(f"settings has unknown fields {unknown}; known fields: {list(FIELDS)}")
    merged = asdict(base or Settings())
    merged.update(values)
    hidden = _hidden(merged["hidden"])
    train_size = _integer("train_size", merged["train_size"], MIN_POINTS, MAX_POINTS)
    scheme, scheme_value = _scheme(merged["scheme"], merged["scheme_value"])
    settings = Settings(
        dataset=_choice("dataset", merged["dataset"], DATASETS),
        noise=_number("noise", merged["noise"], 0.0, MAX_NOISE),
        train_size=train_size,
        test_size=_integer("test_size", merged["test_size"], MIN_POINTS, MAX_POINTS),
        data_seed=_integer("data_seed", merged["data_seed"], 0, MAX_DATA_SEED),
        hidden=hidden,
        activation=_choice("activation", merged["activation"], HIDDEN_ACTIVATIONS),
        scheme=scheme,
        scheme_value=scheme_value,
        layer_schemes=_layer_schemes(merged["layer_schemes"], len(hidden)),
        output_scheme=_plain_scheme("output_scheme", merged["output_scheme"]),
        learning_rate=_rate(merged["learning_rate"]),
        optimizer=_choice("optimizer", merged["optimizer"], OPTIMIZERS),
        batch_size=_batch_size(merged["batch_size"], train_size),
        epochs_per_second=_integer(
            "epochs_per_second", merged["epochs_per_second"], 1, MAX_EPOCHS_PER_SECOND
        ),
        max_epochs=_integer("max_epochs", merged["max_epochs"], 1, MAX_EPOCHS),
        seeds=_integer("seeds", merged["seeds"], 1, MAX_SEEDS),
    )
    settings.hidden_schemes()  # each scheme's own checks (a gain's range, say), before any use
    work = settings.seeds * settings.train_size * sum(settings.hidden)
    if work > MAX_WORK:
        raise ValueError(
            f"seeds x train_size x hidden units must be at most {MAX_WORK} (memory and time grow "
            f"with it), got {settings.seeds} x {settings.train_size} x {sum(settings.hidden)} = "
            f"{work}: use fewer seeds, points or units"
        )
    return settings


def _shortest(value):
    """The shortest text that reads back as value: 10.0 -> '10', 0.1 -> '0.1'."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _show(value):
    """repr of a value from a page, shortened: a page may send a megabyte of text."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(name, value, minimum, maximum):
    if isinstance(value, str):
        value = _from_text(value, int)
    try:
        integer = checks.integer(name, value, minimum=minimum)
    except ValueError:
        integer = None
    if integer is not None and integer <= maximum:
        return integer
    raise ValueError(f"{name} must be an integer from {minimum} to {maximum}, got {_show(value)}")


def _number(name, value, minimum, maximum, strict=False):
    if isinstance(value, str):
        value = _from_text(value, float)
    try:
        number = checks.number(name, value, minimum=minimum, strict=strict)
    except ValueError:
        number = None
    if number is not None and number <= maximum:
        return number
    bound = f"> {minimum} and <= {maximum}" if strict else f"from {minimum} to {maximum}"
    raise ValueError(f"{name} must be a number {bound}, got {_show(value)}")


def _from_text(text, kind):
    """A number written as text (a URL's query holds text), else the text unchanged."""
    try:
        return kind(text.strip())
    except ValueError:
        return text


def _rate(value):
    return _number("learning_rate", value, 0.0, MAX_LEARNING_RATE, strict=True)


def _choice(name, value, options):
    if isinstance(value, str) and value in options:
        return value
    raise ValueError(f"{name} must be one of {list(options)}, got {_show(value)}")


def _hidden(value):
    """Hidden layer sizes from "12,6" or [12, 6]: 1 to MAX_LAYERS sizes of 1 to MAX_UNITS."""
    expected = f"1 to {MAX_LAYERS} layer sizes from 1 to {MAX_UNITS}, comma-separated (e.g. '12,6')"
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")] if value.strip() else []
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = None
    if not parts or len(parts) > MAX_LAYERS:
        raise ValueError(f"hidden must be {expected}, got {_show(value)}")
    try:
        return tuple(_integer("hidden", part, 1, MAX_UNITS) for part in parts)
    except ValueError:
        raise ValueError(f"hidden must be {expected}, got {_show(value)}") from None


def _scheme(name, value):
    """The hidden layers' scheme name and its optional scale or gain."""
    name = _choice("scheme", name, available_schemes())
    if value is None or value == "":
        return name, None
    value = _number("scheme_value", value, 0.0, MAX_SCHEME_VALUE)
    try:
        parse_scheme(f"{name}:{_shortest(value)}")
    except ValueError as error:
        raise ValueError(f"scheme_value: {error}") from None
    return name, value


def _plain_scheme(name, text):
    """One scheme text, `name` or `name:value`, that is not data-dependent."""
    if not isinstance(text, str) or len(text) > 100:
        raise ValueError(
            f"{name} must be a scheme such as 'he' or 'random_normal:0.01', got {_show(text)}"
        )
    try:
        scheme = parse_scheme(text)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    if scheme.name in DATA_DEPENDENT:
        raise ValueError(
            f"{name}: {scheme.name} initialises the whole model from the data; "
            f"choose it as the scheme, not for one layer"
        )
    return scheme.label


def _layer_schemes(value, n_layers):
    """One scheme per hidden layer from "he,orthogonal:2" or a list; empty for none."""
    if (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, (list, tuple)) and not value)
    ):
        return ()
    if isinstance(value, str):
        texts = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)) and len(value) <= MAX_LAYERS:
        texts = list(value)
    else:
        texts = None
    if texts is None or len(texts) != n_layers:
        raise ValueError(
            f"layer_schemes must list one scheme per hidden layer ({n_layers}), "
            f"comma-separated, or be empty; got {_show(value)}"
        )
    return tuple(_plain_scheme(f"layer_schemes[{i}]", text) for i, text in enumerate(texts))


def _batch_size(value, train_size):
    """None (or "" or "full") for the full batch, else 1 to train_size samples."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "full")):
        return None
    try:
        return _integer("batch_size", value, 1, train_size)
    except ValueError:
        raise ValueError(
            f"batch_size must be empty for the full batch or an integer from 1 to "
            f"train_size ({train_size}), got {_show(value)}"
        ) from None
