"""The post's experiment, run over many seeds: data, model, schemes, seeding and training.

The experiment of "the importance of initialization in deep learning", exactly:
scikit-learn's make_moons with 400 training and 100 test samples, noise 0.2; a network
Dense(12, relu) -> Dense(6, relu) -> Dense(1, sigmoid) with cross-entropy; the two hidden layers
drawn by the scheme under study, the output layer by the post's default Initializer() (randn x 1);
plain gradient descent, learning rate 0.01, 15000 full-batch epochs.

Seeding. One integer `seed` gives every number of a study. Run k (k = 0 .. n_seeds - 1) uses
SeedSequence(seed).spawn(n_seeds)[k], whose three children give
    child 0 -> the training set:  make_moons(400, noise=0.2, random_state=<uint32 from child 0>)
    child 1 -> the test set:      make_moons(100, noise=0.2, random_state=<uint32 from child 1>)
    child 2 -> the weights:       NeuralNetwork(seed=<uint64 from child 2>), which spawns one
                                  Generator per layer from it
(an integer "from child c" is child_c.generate_state(1, dtype)[0]). Every scheme of run k trains
on the same data from the same weight seed, so schemes are compared pairwise, and run k is the same
whatever n_seeds is. The integers are stored with each run's results, so any single run can be
retrained by hand:

    >>> runs = seed_plan(seed=0, n_seeds=2)
    >>> X_train, Y_train = moons_data(400, runs[1].train_data_seed)
    >>> model = post_model(POST_SCHEMES["he"].initializer(), seed=runs[1].weights_seed)
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from initlab import checks, environment
from initlab.blocks.initializers import Initializer
from initlab.blocks.layers import Dense
from initlab.engine.model import NeuralNetwork, check_jit_compile, training_path
from initlab.studies.arguments import check_int, split_list
from initlab.studies.schemes import DATA_DEPENDENT, parse_scheme, readable_label
from initlab.sweeps.runner import recorded_work, trained_in
from initlab.version import __version__

N_TRAIN = 400
N_TEST = 100
NOISE = 0.2
LEARNING_RATE = 0.01
EPOCHS = 15000
N_SEEDS = 10
COST_THRESHOLD = 0.3


@dataclass(frozen=True)
class Scheme:
    """How the hidden layers are initialised, and what the post measured for it (if it did).

    A data-dependent scheme (LSUV) sets `initialize`: the model is then built and re-drawn with
    model.initialize(X_train, method=initialize), which initialises every layer, the output
    layer included, from the run's training set.
    """

    name: str  # the identifier on the command line and in the result files
    label: str  # the post's words for it
    make: object  # () -> the `initializer` argument of the hidden Dense layers
    post_train: float | None = None
    post_test: float | None = None
    initialize: str | None = None

    def initializer(self):
        return self.make()


# The post's three schemes and its single-run table (its accuracy was 100 (1 - mean |Y - p|),
# not the fraction of correct predictions, so these are for orientation, not a strict comparison).
POST_SCHEMES = {
    "zeros": Scheme("zeros", readable_label("zeros"), lambda: Initializer(scale=0), 50, 50),
    "random_normal_x10": Scheme(
        "random_normal_x10",
        readable_label("random_normal_x10"),
        lambda: Initializer(scale=10),
        85,
        82,
    ),
    # The built-in "he" is the post's: randn(units, fan_in) * sqrt(2 / fan_in).
    "he": Scheme("he", readable_label("he"), lambda: Initializer("he"), 95, 94),
}


def resolve_schemes(extra=()):
    """The post's three schemes, then each extra scheme once, in order; ValueError if unknown.

    An extra is written as the other study commands write it (initlab.studies.schemes):
    a registered name in Keras's or PyTorch's spelling, `name:value` to set its scale or gain
    (random_normal:0.01), or lsuv; names are separated by spaces or commas. The post's own
    names (zeros, random_normal_x10, he), or another spelling of them (random_normal:10), are
    already there and are not run twice.
    """
    if isinstance(extra, str) or not all(isinstance(item, str) for item in extra):
        raise ValueError(f"schemes must be a list of scheme names, got {extra!r}")
    schemes = dict(POST_SCHEMES)
    # The post's own, however an extra writes them (random_normal:10), do not run twice.
    seen = {parse_scheme(name).identity for name in POST_SCHEMES}
    for parsed in (parse_scheme(text) for text in split_list(extra)):
        # Another spelling of one already there (HeNormal after he_normal) is the same scheme.
        if parsed.label in schemes or parsed.identity in seen:
            continue
        seen.add(parsed.identity)
        data_dependent = parsed.name if parsed.name in DATA_DEPENDENT else None
        schemes[parsed.label] = Scheme(
            parsed.label, parsed.title, parsed.initializer, initialize=data_dependent
        )
    return list(schemes.values())


def post_model(initializer, seed=None):
    """The post's get_model: a 2-12-6-1 ReLU network whose hidden layers `initializer` draws.

    The output layer keeps the post's default initializer, randn x 1.

    >>> model = post_model("he", seed=0)
    >>> [layer.units for layer in model.layers]
    [12, 6, 1]
    """
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=12, activation="relu", initializer=initializer))
    model.add(Dense(units=6, activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    return model


def moons_data(n_samples, random_state, noise=NOISE):
    """scikit-learn's make_moons in the post's layout: X (2, n_samples), Y (1, n_samples)."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return X.T.copy(), y.reshape(1, -1).astype(float)


@dataclass(frozen=True)
class RunSeeds:
    """The integers that fix run `index`: its training set, test set and weights."""

    index: int
    train_data_seed: int
    test_data_seed: int
    weights_seed: int


def seed_plan(seed, n_seeds):
    """Derive every run's seeds from one integer (see the module docstring)."""
    seed = check_int("seed", seed, minimum=0)
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    plan = []
    for index, run in enumerate(np.random.SeedSequence(seed).spawn(n_seeds)):
        train, test, weights = run.spawn(3)
        plan.append(
            RunSeeds(
                index=index,
                train_data_seed=int(train.generate_state(1, np.uint32)[0]),
                test_data_seed=int(test.generate_state(1, np.uint32)[0]),
                weights_seed=int(weights.generate_state(1, np.uint64)[0]),
            )
        )
    return plan


def train_models(
    models, X, Y, epochs, learning_rate=LEARNING_RATE, progress=False, jit_compile="auto"
):
    """Train model k on (X[k], Y[k]) for `epochs` full-batch epochs; return the (epochs, K) costs.

    models : list of K compiled NeuralNetworks of one architecture (trained in place)
    X, Y : sequences of K arrays, (n_features, m) and (n_outputs, m), one data set per model
    progress : show a tqdm bar on stderr
    jit_compile : "auto", True or False, as for NeuralNetwork.fit

    All K models train at once, stacked into one Ensemble (one matrix product per layer for all
    of them); each gets the numbers it would get alone, to floating-point rounding.
    """
    from initlab.tools.ensemble import Ensemble

    ensemble = Ensemble(models)
    data_x, data_y = np.stack(X), np.stack(Y)
    # With a bar, the epochs run in about 100 slices, the bar moving between them. A slice is a
    # fit without callbacks, so the groups of models train their epochs in a row (each group in
    # its own thread with jit_compile); continuing fit slice after slice gives the same bits as
    # one fit.
    step = max(1, epochs // 100) if progress else epochs
    histories = []
    with _progress_bar(progress, total=epochs, unit="epoch") as bar:
        for start in range(0, epochs, step):
            count = min(step, epochs - start)
            histories.append(
                ensemble.fit(
                    data_x,
                    data_y,
                    epochs=count,
                    learning_rate=learning_rate,
                    jit_compile=jit_compile,
                )["loss"]
            )
            bar.update(count)
    return np.concatenate(histories)


@dataclass
class StudyResult:
    """Everything a study measured. Arrays are indexed [scheme, run] (and epoch for costs)."""

    settings: dict
    schemes: list
    runs: list  # RunSeeds, one per run
    costs: np.ndarray  # (n_schemes, n_seeds, epochs): the cost at every epoch
    train_accuracy: np.ndarray  # (n_schemes, n_seeds), percent correct
    test_accuracy: np.ndarray
    data: list = field(repr=False)  # per run: (X_train, Y_train, X_test, Y_test)
    models: list = field(repr=False)  # [scheme][run]: the trained NeuralNetwork
    # Where the runs trained (sweeps.runner.trained_in): a store's may come from elsewhere.
    trained_in: list = field(default_factory=list, repr=False)

    @property
    def final_cost(self):
        """The cost at the last epoch, as the post's log prints it (`Epochs: 14999 - Cost: ...`)."""
        return self.costs[:, :, -1]

    def epoch_below(self, threshold=COST_THRESHOLD):
        """(n_schemes, n_seeds) first epoch whose cost is below `threshold`; -1 where never."""
        below = self.costs < threshold
        return np.where(below.any(axis=-1), below.argmax(axis=-1), -1)


# What a study holds, measured with tracemalloc over run_study with 2 to 20 seeds: 2 to 2.5 MB
# whatever its size, then about 90 kB per run (its model, layers, generators, data sets and its
# share of the stacked training buffers), then every epoch's cost of every run, at most twice
# at once (fit's slices and their concatenation).
BYTES_PER_STUDY = 2_500_000
BYTES_PER_RUN = 100_000


def study_bytes(n_schemes, n_seeds, epochs):
    """About the memory run_study needs (see BYTES_PER_RUN), a little above what it takes.

    >>> study_bytes(3, 10, 15000) / 1e6          # the default study: MB
    12.7
    """
    n_models = n_schemes * n_seeds
    return BYTES_PER_STUDY + n_models * BYTES_PER_RUN + 2 * n_models * epochs * 8


CALIBRATION_EPOCHS = 1000


def study_seconds(n_schemes, n_seeds, epochs, jit_compile="auto"):
    """About the time run_study's training takes here, from a short calibration: 8 of the post's
    models trained side by side for CALIBRATION_EPOCHS epochs (a fraction of a second; fewer
    would time mostly what a fit costs besides the arithmetic, which the compiled path's epochs,
    run many per call, no longer hide), scaled to every run and epoch. Rough: the machine's load
    moves it. `jit_compile` is the study's: the calibration trains on its path (and loads Numba
    only if the study will).
    """
    import time

    from initlab.tools.ensemble import Ensemble

    n_models, sample = n_schemes * n_seeds, min(8, n_schemes * n_seeds)
    X, Y = moons_data(N_TRAIN, 0)
    ensemble = Ensemble([post_model("he", seed=k) for k in range(sample)])
    fit = functools.partial(
        ensemble.fit, X, Y, learning_rate=LEARNING_RATE, jit_compile=jit_compile
    )
    fit(epochs=2)  # allocations, caches
    start = time.perf_counter()
    fit(epochs=CALIBRATION_EPOCHS)
    per_model_epoch = (time.perf_counter() - start) / (CALIBRATION_EPOCHS * sample)
    return per_model_epoch * n_models * epochs


def run_study(
    seed=0, n_seeds=N_SEEDS, epochs=EPOCHS, schemes=(), progress=False, jit_compile="auto"
):
    """Train every scheme (the post's three plus `schemes`) on n_seeds runs; return a StudyResult.

    Here, in this process, every run in one Ensemble (`initlab reproduce` trains the same runs in
    groups on the sweep engine, and gets the same bits: study_items, train_runs, study_result).

    >>> result = run_study(seed=0, n_seeds=2, epochs=10)
    >>> result.train_accuracy.shape          # (schemes, runs)
    (3, 2)
    """
    schemes = resolve_schemes(schemes)
    runs = seed_plan(seed, n_seeds)
    epochs = check_int("epochs", epochs, minimum=1)
    models = []
    # "auto" resolved once, here: the items (and the store's keys) say which path trained.
    jit_compile = check_jit_compile(jit_compile, post_model("he"), n_features=2)
    items = study_items(schemes, runs, epochs, jit_compile)
    records = recorded_work(train_runs, items, progress, models)
    where = trained_in(records)
    return study_result(seed, schemes, runs, epochs, records, jit_compile, models, where)


def study_items(schemes, runs, epochs, jit_compile=False):
    """One item per (scheme, run), scheme-major (item k: scheme k // n_seeds, run k % n_seeds):
    the JSON values a run's numbers depend on, which train_runs trains and the store keys."""
    # Another initlab (or Numba) may train to other bits: its store keys differ.
    numba = environment.installed_version("numba") if jit_compile else None
    return [
        {
            "scheme": scheme.name,
            "train_data_seed": run.train_data_seed,
            "test_data_seed": run.test_data_seed,
            "weights_seed": run.weights_seed,
            "n_train": N_TRAIN,
            "n_test": N_TEST,
            "noise": NOISE,
            "epochs": epochs,
            "learning_rate": LEARNING_RATE,
            "training": "jit" if jit_compile else "numpy",
            "initlab": __version__,
            "numba": numba,
        }
        for scheme in schemes
        for run in runs
    ]


def train_runs(items, progress=False, models=None):
    """Train the runs `items` (study_items of one epochs, learning rate and training) together,
    as one Ensemble; return one record per item: train_accuracy and test_accuracy (percent),
    costs (every epoch's) and weights (the trained model's flat parameters). What a worker of
    `initlab reproduce` runs, on a group; a run's numbers do not depend on its group.

    models : a list to append the trained models to, or None
    """
    settings = {(item["epochs"], item["learning_rate"], item["training"]) for item in items}
    if len(settings) != 1:
        raise ValueError(f"train_runs trains runs of one epochs, rate and training, got {settings}")
    ((epochs, learning_rate, training),) = settings
    schemes = {name: scheme_named(name) for name in dict.fromkeys(i["scheme"] for i in items)}
    data, trained = {}, []
    for item in items:
        seeds = item["train_data_seed"], item["test_data_seed"]
        if seeds not in data:  # the schemes of a run share its data
            data[seeds] = run_data(item)
        scheme = schemes[item["scheme"]]
        model = post_model(scheme.initializer(), seed=item["weights_seed"])
        if scheme.initialize is not None:
            model.initialize(data[seeds][0], method=scheme.initialize)
        trained.append(model)
    runs_data = [data[item["train_data_seed"], item["test_data_seed"]] for item in items]
    costs = train_models(
        trained,
        [run[0] for run in runs_data],
        [run[1] for run in runs_data],
        epochs,
        learning_rate,
        progress=progress,
        jit_compile=training == "jit",
    )
    records = []
    for k, (model, (X_train, Y_train, X_test, Y_test)) in enumerate(zip(trained, runs_data)):
        records.append(
            {
                "train_accuracy": model.evaluate(X_train, Y_train)["accuracy"],
                "test_accuracy": model.evaluate(X_test, Y_test)["accuracy"],
                "costs": costs[:, k].copy(),
                "weights": model.parameters.copy(),
            }
        )
    if models is not None:
        models.extend(trained)
    return records


def check_record(item, record):
    """Raise ValueError, in words, unless `record` is one train_runs could return for `item`:
    run_records' check of what a store holds."""
    for name in ("train_accuracy", "test_accuracy"):
        if not checks.is_real(record.get(name)):
            raise ValueError(f"has {name} {record.get(name)!r}, not a number")
    for name, shape in (("costs", (item["epochs"],)), ("weights", (_weights_size(),))):
        value = record.get(name)
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.shape != shape:
            found = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else value
            raise ValueError(f"has {name} {found}, expected floats of shape {shape}")


@functools.cache
def _weights_size():
    model = post_model("he")
    model.build(2)
    return model.parameters.size


def scheme_named(name):
    """The Scheme of a name resolve_schemes gave (the post's, or an extra as written)."""
    return next(scheme for scheme in resolve_schemes([name]) if scheme.name == name)


def run_data(item):
    """(X_train, Y_train, X_test, Y_test) of a run (a study item, or anything with its seeds)."""
    n_train, n_test = item.get("n_train", N_TRAIN), item.get("n_test", N_TEST)
    noise = item.get("noise", NOISE)
    return moons_data(n_train, item["train_data_seed"], noise) + moons_data(
        n_test, item["test_data_seed"], noise
    )


def trained_model(scheme, weights_seed, weights):
    """A run's model with its trained weights (a record's), to predict with."""
    model = post_model(scheme.initializer(), seed=weights_seed)
    model.build(2)
    model.parameters[...] = weights
    return model


def study_result(
    seed, schemes, runs, epochs, records, jit_compile=False, models=None, trained_in=()
):
    """The StudyResult of a study's records (train_runs', in study_items' order); models: the
    trained models in that order, else rebuilt from the records' weights; trained_in: where the
    records were computed (sweeps.runner.trained_in)."""
    n_seeds = len(runs)
    shape = (len(schemes), n_seeds)
    data = [run_data(vars(run)) for run in runs]
    if models is None:
        models = [
            trained_model(scheme, run.weights_seed, records[s * n_seeds + run.index]["weights"])
            for s, scheme in enumerate(schemes)
            for run in runs
        ]
    settings = {
        "seed": seed,
        "seeds": n_seeds,
        "epochs": epochs,
        "learning_rate": LEARNING_RATE,
        "schemes": [scheme.name for scheme in schemes],
        "data": f"sklearn.datasets.make_moons, {N_TRAIN} train / {N_TEST} test, noise {NOISE}",
        "model": "Dense(12, relu) -> Dense(6, relu) -> Dense(1, sigmoid), cross-entropy; "
        "hidden layers by the scheme, output layer randn x 1",
        "optimizer": "full-batch gradient descent",
        # The two paths agree to rounding, which the chaotic randn x 10 runs can amplify.
        "training": training_path(jit_compile),
    }
    return StudyResult(
        settings,
        schemes,
        runs,
        costs=np.stack([record["costs"] for record in records]).reshape(*shape, -1),
        train_accuracy=np.array([r["train_accuracy"] for r in records], float).reshape(shape),
        test_accuracy=np.array([r["test_accuracy"] for r in records], float).reshape(shape),
        data=data,
        models=[models[s * n_seeds : (s + 1) * n_seeds] for s in range(len(schemes))],
        trained_in=list(trained_in),
    )


def _progress_bar(enabled, total, unit):
    if not enabled:
        # No tqdm at all: even disabled, it makes a multiprocessing lock, whose semaphore a
        # pool worker killed on Ctrl-C would leave to the resource tracker (a warning at exit).
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total, unit=unit, unit_scale=True, desc="training", leave=True, disable=not enabled
    )


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exception):
        return False

    def update(self, count):
        pass
