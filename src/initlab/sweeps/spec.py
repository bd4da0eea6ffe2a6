"""A sweep's spec: a TOML file that names a grid of training runs, checked whole before any runs.

    [data]                       # moons, circles, spirals, xor, gaussians, digits
    name = "moons"
    train = 400
    test = 100
    noise = 0.2
    [model]
    hidden = [12, 6]
    activation = "relu"
    [train]
    epochs = 15000
    learning_rate = 0.01
    optimizer = "sgd"
    [sweep]                      # every combination of the axes is one configuration
    scheme = ["zeros", "random_normal:10", "he"]
    seeds = 10                   # runs of each configuration
    seed = 0                     # the root seed every run derives from
    "train.learning_rate" = [0.1, 0.01]     # any setting may be an axis, by its dotted name

Every setting has a default (SETTINGS); a setting is fixed in its section or an axis in [sweep],
not both. `[sweep] scheme` is short for `"model.scheme"`. A scheme is written as the study
commands write it: a registered initializer name, `name:value` (its scale, else its gain:
random_normal:10 is the post's randn x 10) or `lsuv`. The hidden layers use the scheme; the
output layer uses `model.output_scheme` (default the post's randn x 1; "same" for the scheme).

Seeding. Run k (k = 0 .. seeds - 1) of every configuration uses
SeedSequence(seed).spawn(seeds)[k], whose children 0, 1 and 2 give the training set's, the
test set's and the weights' integer seeds, as `initlab reproduce` does: so run k is the same
whatever the grid around it, and whatever `seeds` is (spawn's k-th child does not depend on how
many are spawned). A run's key hashes its settings, the root seed and k.

    >>> spec = parse_spec('[sweep]\\nscheme = ["he", "zeros"]\\nseeds = 2\\n[train]\\nepochs = 5')
    >>> [run.settings["model.scheme"] for run in plan_runs(spec)]
    ['he', 'he', 'zeros', 'zeros']
"""

import difflib
import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass

import numpy as np

from initlab import checks
from initlab.blocks import activations, initializers, optimizers
from initlab.blocks.datasets import DIGITS_TEST, DIGITS_TRAIN
from initlab.engine.model import DATA_DEPENDENT
from initlab.engine.schemes import split_scheme

DATASETS = ("moons", "circles", "spirals", "xor", "gaussians", "digits")


def _one_of(key, value, names):
    """value if it is one of names; else one ValueError naming key, listing names and
    suggesting the closest."""
    if isinstance(value, str) and value in names:
        return value
    close = difflib.get_close_matches(value, names, n=3) if isinstance(value, str) else []
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"{key} must be one of {list(names)}, got {value!r}{hint}")


def hidden_activations():
    """Every registered elementwise activation, a user's included (softmax is an output's)."""
    return [name for name, cls in activations.ACTIVATIONS.items() if cls().elementwise]


def _dataset(key, value):
    return _one_of(key, value, list(DATASETS))


# The noise's standard deviation, against data of a scale near 1: far past this the points are
# all noise (and past about 1e154 their squares overflow).
MAX_NOISE = 100.0


def _noise(key, value):
    noise = checks.number(key, value, minimum=0)
    if noise > MAX_NOISE:
        raise ValueError(f"{key} must be a number in [0, {MAX_NOISE:g}], got {value!r}")
    return noise


def _hidden(key, value):
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"{key} must be a non-empty list of layer widths such as [12, 6], got {value!r}"
        )
    return [
        checks.bounded_integer(f"{key}[{i}]", width, 1, checks.MAX_WIDTH)
        for i, width in enumerate(value)
    ]


def _activation(key, value):
    return _one_of(key, value, hidden_activations())


def _optimizer(key, value):
    value = value.lower() if isinstance(value, str) else value
    return _one_of(key, value, sorted(optimizers.OPTIMIZERS))


def _scheme(key, value):
    parse_scheme(value, key)
    return value.strip()


def _output_scheme(key, value):
    return value if value == "same" else _scheme(key, value)


@dataclass(frozen=True)
class Setting:
    default: object
    check: object  # (dotted key, value) -> the clean value, or ValueError
    help: str


SETTINGS = {
    "data.name": Setting("moons", _dataset, f"one of {', '.join(DATASETS)}"),
    "data.train": Setting(
        400, lambda k, v: checks.bounded_integer(k, v, 2, checks.MAX_SAMPLES), "training samples"
    ),
    "data.test": Setting(
        100, lambda k, v: checks.bounded_integer(k, v, 1, checks.MAX_SAMPLES), "test samples"
    ),
    "data.noise": Setting(0.2, _noise, "noise (moons, circles, spirals, xor, gaussians)"),
    "model.hidden": Setting([12, 6], _hidden, "hidden layer widths"),
    "model.activation": Setting("relu", _activation, "hidden activation"),
    "model.scheme": Setting("he", _scheme, "the hidden layers' initialisation"),
    "model.output_scheme": Setting(
        "random_normal", _output_scheme, "the output layer's initialisation, or 'same'"
    ),
    "train.epochs": Setting(
        15000, lambda k, v: checks.bounded_integer(k, v, 1, checks.MAX_EPOCHS), "epochs"
    ),
    "train.learning_rate": Setting(0.01, lambda k, v: checks.positive(k, v), "learning rate"),
    "train.optimizer": Setting("sgd", _optimizer, "sgd, momentum or adam"),
    "train.batch_size": Setting(
        0, lambda k, v: checks.integer(k, v, minimum=0), "minibatch size; 0 for full batch"
    ),
}
SECTIONS = ("data", "model", "train", "sweep")
SWEEP_KEYS = ("seeds", "seed", "scheme")


@dataclass(frozen=True)
class Spec:
    """A checked spec: the fixed settings, the axes in order, the number of runs and root seed."""

    fixed: dict  # dotted key -> value, for every setting that is not an axis
    axes: dict  # dotted key -> list of values, in the order the spec gives them
    seeds: int
    seed: int

    def configurations(self):
        """Every combination of the axes (the first axis varies slowest), as full settings."""
        combos = itertools.product(*self.axes.values())
        return [{**self.fixed, **dict(zip(self.axes, combo))} for combo in combos]

    def to_json(self):
        # Not sorted: the axes keep their order, which is the order of tables and figures.
        return json.dumps(
            {"fixed": self.fixed, "axes": self.axes, "seeds": self.seeds, "seed": self.seed}
        )

    @classmethod
    def from_json(cls, text):
        document = json.loads(text)
        return cls(document["fixed"], document["axes"], document["seeds"], document["seed"])


@dataclass(frozen=True)
class Run:
    """Run `index` of one configuration, with the integers its data and weights derive from."""

    key: str
    settings: dict
    index: int
    root_seed: int
    train_data_seed: int
    test_data_seed: int
    weights_seed: int

    def architecture(self):
        """What the runs trained together in one Ensemble must share (all but scheme, noise,
        test size and seeds)."""
        s = self.settings
        return (
            s["data.name"],
            s["data.train"],
            tuple(s["model.hidden"]),
            s["model.activation"],
            s["train.optimizer"],
            s["train.epochs"],
            s["train.learning_rate"],
            s["train.batch_size"],
        )


def load_spec(path):
    """Read and check a spec file; ValueError (naming the file) if it is not a valid spec."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode()
    except OSError as error:
        raise ValueError(f"spec {path!r} cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"spec {path!r} is not UTF-8 text") from None
    try:
        return parse_spec(text)
    except ValueError as error:
        raise ValueError(f"spec {path!r}: {error}") from None


def parse_spec(text):
    """Check a spec's TOML text completely and return a Spec; ValueError names key and value."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"not valid TOML ({error})") from None
    for section, body in document.items():
        if section not in SECTIONS:
            raise ValueError(f"unknown section [{section}]; expected one of {list(SECTIONS)}")
        if not isinstance(body, dict):
            raise ValueError(f"{section} must be a [{section}] section, got {body!r}")
    fixed = {}
    for section in SECTIONS[:-1]:
        for name, value in document.get(section, {}).items():
            key = f"{section}.{name}"
            if key not in SETTINGS:
                known = [k.split(".", 1)[1] for k in SETTINGS if k.startswith(section + ".")]
                raise ValueError(f"unknown key {key!r}; [{section}] takes {known}")
            fixed[key] = SETTINGS[key].check(key, value)
    sweep = dict(document.get("sweep", {}))
    seeds = checks.bounded_integer("sweep.seeds", sweep.pop("seeds", 1), 1, checks.MAX_SEEDS)
    seed = checks.integer("sweep.seed", sweep.pop("seed", 0), minimum=0)
    if "scheme" in sweep:
        if "model.scheme" in sweep:
            raise ValueError("sweep.scheme and sweep.'model.scheme' are the same axis; give one")
        # Renamed in place: the axes keep the order the spec gives them.
        sweep = {
            ("model.scheme" if key == "scheme" else key): value for key, value in sweep.items()
        }
    axes = {}
    for key, values in sweep.items():
        label = "sweep.scheme" if key == "model.scheme" else f"sweep.{key!r}"
        if key not in SETTINGS:
            raise ValueError(
                f"unknown key {label}; [sweep] takes {list(SWEEP_KEYS)} and any "
                f"setting by its dotted name: {list(SETTINGS)}"
            )
        if key in fixed:
            raise ValueError(
                f"{key!r} is both fixed ({fixed[key]!r}) and an axis in [sweep]; "
                f"give it in one place"
            )
        if key == "model.scheme" and isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values:
            raise ValueError(f"axis {label} must be a non-empty list of values, got {values!r}")
        clean = [SETTINGS[key].check(f"{label}[{i}]", value) for i, value in enumerate(values)]
        repeated = [value for i, value in enumerate(clean) if value in clean[:i]]
        if repeated:
            raise ValueError(f"axis {label} lists {repeated[0]!r} more than once")
        axes[key] = clean
    for key, setting in SETTINGS.items():
        if key not in axes:
            fixed.setdefault(key, setting.default)
    spec = Spec(fixed=dict(sorted(fixed.items())), axes=axes, seeds=seeds, seed=seed)
    for settings in spec.configurations():
        _check_configuration(settings)
    return spec


def _check_configuration(settings):
    """The checks that involve several settings, for one configuration."""
    if settings["data.name"] == "digits":
        for key, most in (("data.train", DIGITS_TRAIN), ("data.test", DIGITS_TEST)):
            if settings[key] > most:
                raise ValueError(
                    f"{key} must be at most {most} for digits (its split holds "
                    f"{DIGITS_TRAIN} training and {DIGITS_TEST} test samples), "
                    f"got {settings[key]}"
                )
    if settings["train.batch_size"] > settings["data.train"]:
        raise ValueError(
            f"train.batch_size must be at most data.train "
            f"({settings['data.train']}), got {settings['train.batch_size']}"
        )


def parse_scheme(text, key="scheme"):
    """(initializer name, multiplier parameter or None, value or None) of `name` or
    `name:value`, as the study commands read schemes; ValueError naming `key` if unknown."""
    return split_scheme(text, key)


def scheme_initializer(text):
    """A fresh Initializer for one layer from a scheme's text (LSUV: its orthogonal start)."""
    name, parameter, value = parse_scheme(text)
    if name in DATA_DEPENDENT:
        return initializers.Initializer("orthogonal")
    return initializers.Initializer(name, **({parameter: value} if parameter else {}))


def run_key(settings, root_seed, index):
    """The hex SHA-256 (first 24 digits) of a run's settings, root seed and index."""
    text = json.dumps({"settings": settings, "seed": root_seed, "run": index}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def plan_runs(spec):
    """Every run of the spec: configuration after configuration, runs 0 .. seeds - 1 of each."""
    children = np.random.SeedSequence(spec.seed).spawn(spec.seeds)
    seeds = []
    for child in children:
        train, test, weights = child.spawn(3)
        seeds.append(
            (
                int(train.generate_state(1, np.uint32)[0]),
                int(test.generate_state(1, np.uint32)[0]),
                int(weights.generate_state(1, np.uint64)[0]),
            )
        )
    return [
        Run(run_key(settings, spec.seed, k), settings, k, spec.seed, *seeds[k])
        for settings in spec.configurations()
        for k in range(spec.seeds)
    ]
