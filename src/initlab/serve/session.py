"""One browser tab's experiment: its data, K seeds trained at once, the numbers each frame shows.

A Session holds no web code: the app (initlab.serve.app) calls it from a worker thread and sends
what it returns as JSON. It builds the data set and K = settings.seeds models of one architecture,
model k from seed k + 1 (seeds 1 .. K), stacks them in an initlab Ensemble, and trains them in
slices of epochs (`train`). After each slice `frame` measures, at the current weights:

- per seed, the training and test cost and accuracy (Ensemble.evaluate), and across seeds their
  median and min-max band: the page's curves and read-outs;
- the decision boundary of the shown seed: its predicted probability on a GRID x GRID grid over
  the data, as integers 0..255 (p x 255, rounded), the precision a canvas draws;
- the shown seed's per-layer signals (initlab.tools.diagnostics: one forward and backward pass on
  the training set, nothing trained): histograms of every layer's activations a and of the
  back-propagated gradients dL/dz, and their standard deviations against depth.

The shown seed is the one whose training cost is the median across seeds (the lower median for
an even K), so that with many seeds the boundary and histograms are a typical run, not the best.

    >>> from initlab.serve.settings import parse_settings
    >>> session = Session(parse_settings({"scheme": "zeros"}))
    >>> session.train(10)
    10
    >>> round(session.frame()["loss"], 4)       # zeros keep p = 0.5 everywhere: ln 2
    0.6931
"""

import numpy as np

from initlab import Dense, NeuralNetwork
from initlab.blocks import datasets
from initlab.studies.arguments import kernels_to_compile
from initlab.studies.schemes import parse_scheme
from initlab.tools import diagnostics, theory
from initlab.tools.ensemble import Ensemble

GRID = 64  # the decision boundary's grid: GRID x GRID probabilities
BINS = 24  # histogram bins per layer and signal
MARGIN = 0.5  # the boundary's view extends the data's range by this on each side
CRITICAL = 1e-3  # |chi1 - 1| within this is the edge of chaos


class Session:
    """The models, data and history of one tab; see the module docstring.

    Parameters
    ----------
    settings : initlab.serve.settings.Settings, already checked.

    Attributes
    ----------
    epoch : int, the epochs trained so far.
    """

    def __init__(self, settings):
        self.settings = settings
        self.epoch = 0
        self.X_train, self.Y_train = _dataset(settings, settings.train_size, stream=0)
        self.X_test, self.Y_test = _dataset(settings, settings.test_size, stream=1)
        self.models = [
            _build_model(settings, seed, self.X_train) for seed in range(1, settings.seeds + 1)
        ]
        self.ensemble = Ensemble(self.models)
        self.grid, self.extent = _grid(self.X_train, self.X_test)
        self.theory = theory_prediction(settings, self.models[0])

    @property
    def finished(self):
        return self.epoch >= self.settings.max_epochs

    def train(self, epochs):
        """Train every seed up to `epochs` more epochs (never past max_epochs); return how many."""
        epochs = min(int(epochs), self.settings.max_epochs - self.epoch)
        if epochs <= 0:
            return 0
        s = self.settings
        # Stopping at any epoch and going on gives the same numbers as one long fit: the models
        # keep their weights, optimizer state and minibatch order between fits.
        with np.errstate(over="ignore", invalid="ignore"):
            self.ensemble.fit(
                self.X_train,
                self.Y_train,
                epochs=epochs,
                learning_rate=s.learning_rate,
                batch_size=s.batch_size,
                log_every=epochs,
            )
        self.epoch += epochs
        return epochs

    def start(self):
        """What the page needs once per experiment: the settings, the points, the grid's extent."""
        return {
            "settings": self.settings.as_dict(),
            "seeds": list(range(1, self.settings.seeds + 1)),
            "train": _points(self.X_train, self.Y_train),
            "test": _points(self.X_test, self.Y_test),
            "extent": self.extent,
            "grid": GRID,
            "theory": self.theory,
            # The first training compiles the models' kernel (a minute or so, once per machine):
            # the page says so, for the wait would otherwise look like a hang.
            "compiling": kernels_to_compile(self.models[:1]) > 0,
        }

    def frame(self):
        """The numbers of the current weights (see the module docstring), JSON-ready."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            train = self.ensemble.evaluate(self.X_train, self.Y_train)
            test = self.ensemble.evaluate(self.X_test, self.Y_test)
        shown = _median_index(train["loss"])
        model = self.models[shown]
        point = {
            "epoch": self.epoch,
            "train_loss": _band(train["loss"]),
            "test_loss": _band(test["loss"]),
            "train_accuracy": _band(train["accuracy"]),
            "test_accuracy": _band(test["accuracy"]),
        }
        with np.errstate(over="ignore", invalid="ignore"):
            probabilities = model.predict(self.grid)[0]
        return {
            "epoch": self.epoch,
            "finished": self.finished,
            "loss": point["train_loss"][1],
            "test_loss": point["test_loss"][1],
            "train_accuracy": point["train_accuracy"][1],
            "test_accuracy": point["test_accuracy"][1],
            "point": point,
            "per_seed": {
                "train_loss": _floats(train["loss"]),
                "test_loss": _floats(test["loss"]),
                "train_accuracy": _floats(train["accuracy"]),
                "test_accuracy": _floats(test["accuracy"]),
            },
            "shown_seed": shown + 1,
            "boundary": _quantised(probabilities),
            "layers": self.layers(model),
        }

    def layers(self, model):
        """Per layer of `model`: standard deviations and histograms of a and dL/dz."""
        with np.errstate(over="ignore", invalid="ignore"):
            signals = diagnostics.layer_signals(model, self.X_train, self.Y_train)
        records = diagnostics.summarise(model, signals)
        return [
            {
                "layer": record.layer,
                "units": record.units,
                "activation": record.activation,
                "activation_std": _float(record.activation_std),
                "gradient_std": _float(record.preactivation_grad_std),
                "dead_fraction": record.dead_fraction,
                "saturated_fraction": record.saturated_fraction,
                "activation_histogram": histogram(signal["activation"]),
                "gradient_histogram": histogram(signal["preactivation_grad"]),
            }
            for record, signal in zip(records, signals, strict=True)
        ]


def histogram(values, bins=BINS):
    """{"low", "high", "counts"}: counts of the finite values in `bins` equal bins over their range.

    All values equal (zeros' activations) give one bin of width 1 around them, as np.histogram
    does; non-finite values (a diverged run) are counted in "non_finite", not binned.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"low": 0.0, "high": 0.0, "counts": [], "non_finite": int(values.size)}
    counts, edges = np.histogram(finite, bins=bins)
    return {
        "low": float(edges[0]),
        "high": float(edges[-1]),
        "counts": counts.tolist(),
        "non_finite": int(values.size - finite.size),
    }


def theory_prediction(settings, model):
    """The mean-field prediction for the drawn hidden layers, or None where there is none.

    The one place the explorer reaches for initlab.tools.theory. Mean-field theory (Poole et al.
    2016, Schoenholz et al. 2017) describes a deep network whose weights have variance
    sigma_w^2 / fan_in and whose biases have variance sigma_b^2: chi1 < 1 is the ordered phase
    (signals and gradients vanish with depth), chi1 > 1 the chaotic one (they explode). sigma_w^2
    and sigma_b^2 are read off the model's drawn hidden layers (fan_in Var(W), Var(b), pooled),
    so any scheme, scale or gain gets its prediction.
    """
    hidden = model.layers[:-1]
    weights = [layer.params["weights"] for layer in hidden]
    # Pooled over the layers' weights, so a wide layer's estimate counts more than a narrow one's.
    weight_variance = float(
        sum(w.var() * w.shape[1] * w.size for w in weights) / sum(w.size for w in weights)
    )
    bias_variance = float(np.mean([layer.params["bias"].var() for layer in hidden]))
    chi1 = float(theory.chi1(settings.activation, weight_variance, bias_variance))
    phase = "order" if chi1 < 1 - CRITICAL else "chaos" if chi1 > 1 + CRITICAL else "critical"
    return {
        "chi1": chi1,
        "phase": phase,
        "weight_variance": weight_variance,
        "bias_variance": bias_variance,
    }


# --- building ----------------------------------------------------------------------------------


def _dataset(settings, n_samples, stream):
    """The training (stream 0) or test (stream 1) set, each from its own child of data_seed."""
    seed = np.random.SeedSequence(settings.data_seed).spawn(2)[stream]
    make = getattr(datasets, settings.dataset)
    return make(n_samples, noise=settings.noise, seed=seed)


def _build_model(settings, seed, X_train):
    """One compiled and built model: the hidden layers by their schemes, the output layer by
    output_scheme, then LSUV over every layer if the scheme is data-dependent."""
    model = NeuralNetwork(seed=seed)
    for units, scheme in zip(settings.hidden, settings.hidden_schemes(), strict=True):
        model.add(
            Dense(units=units, activation=settings.activation, initializer=scheme.initializer())
        )
    model.add(
        Dense(
            units=1,
            activation="sigmoid",
            initializer=parse_scheme(settings.output_scheme).initializer(),
        )
    )
    model.compile(
        loss="crossentropy",
        optimizer={"name": settings.optimizer, "learning_rate": settings.learning_rate},
    )
    model.build(X_train.shape[0])
    if settings.data_dependent:
        with np.errstate(over="ignore", invalid="ignore"):
            model.initialize(X_train, method=settings.scheme)
    return model


def _grid(*point_sets):
    """The boundary's GRID x GRID points (2, GRID**2), row by row from the top, and its extent."""
    points = np.concatenate(point_sets, axis=1)
    finite = points[:, np.isfinite(points).all(axis=0)]
    low = finite.min(axis=1) - MARGIN
    high = finite.max(axis=1) + MARGIN
    xs = np.linspace(low[0], high[0], GRID)
    ys = np.linspace(high[1], low[1], GRID)  # the canvas's first row is the top
    gx, gy = np.meshgrid(xs, ys)
    extent = {"x0": float(low[0]), "x1": float(high[0]), "y0": float(low[1]), "y1": float(high[1])}
    return np.vstack([gx.ravel(), gy.ravel()]), extent


# --- summaries ---------------------------------------------------------------------------------


def _median_index(values):
    """The index of the lower median of values (nan sorts last), so a single seed is itself."""
    order = np.argsort(np.nan_to_num(values, nan=np.inf), kind="stable")
    return int(order[(len(values) - 1) // 2])


def _band(values):
    """[min, median, max] of the per-seed values, None for non-finite ones."""
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return [None, None, None]
        values = finite
    return [float(values.min()), float(np.median(values)), float(values.max())]


def _float(value):
    """A JSON-ready float: None for nan and infinities, which JSON cannot hold."""
    return float(value) if value is not None and np.isfinite(value) else None


def _floats(values):
    return [_float(value) for value in np.asarray(values, dtype=np.float64)]


def _quantised(probabilities):
    """Probabilities as integers 0..255 (nan as 128, undecided)."""
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=0.5)
    return np.rint(np.clip(p, 0, 1) * 255).astype(int).tolist()


def _points(X, Y):
    return {
        "x": np.round(X[0], 4).tolist(),
        "y": np.round(X[1], 4).tolist(),
        "label": Y[0].astype(int).tolist(),
    }
