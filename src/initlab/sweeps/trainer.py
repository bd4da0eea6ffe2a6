"""Train a group of a sweep's runs together, checkpointing long ones: what a worker executes.

`train_group(runs, checkpoints, checkpoint_seconds)` builds each run's data and model from its
settings and seeds, stacks the models into one Ensemble (they share an architecture:
Run.architecture) and trains them in slices of epochs. After a slice, once checkpoint_seconds
have passed since the last checkpoint, every model is saved with NeuralNetwork.save (weights,
optimizer state and place in the shuffle stream, bit exact) beside the costs so far, so a killed
worker loses at most that much of a run. A run that finds a checkpoint continues from it.

Numbers do not depend on the group: an Ensemble gives each model the bits it gets in any other
Ensemble (matmul runs one product per model; every other operation is elementwise or a reduction
along the model's own axis), and fit continued slice after slice gives the bits of one fit. So a
run is the same whatever backend, group or interruption it went through.

    >>> from initlab.sweeps.spec import parse_spec, plan_runs
    >>> runs = plan_runs(parse_spec("[train]\\nepochs = 3\\n[sweep]\\nseeds = 2"))
    >>> [len(result.costs) for result in train_group(runs)]
    [3, 3]
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from initlab import environment
from initlab.blocks import datasets
from initlab.blocks.layers import Dense
from initlab.engine.model import INFERENCE_SAMPLES, NeuralNetwork, training_bytes
from initlab.sweeps.spec import DATA_DEPENDENT, parse_scheme, scheme_initializer
from initlab.tools.ensemble import Ensemble

# A group trains in at least this many slices, so that checkpoints can be taken between them.
SLICES = 50
CHECKPOINT_SECONDS = 60.0


@dataclass
class RunResult:
    """What one run measured; costs holds the training cost at every epoch (float64)."""

    key: str
    train_accuracy: float
    test_accuracy: float
    final_loss: float
    seconds: float
    costs: np.ndarray
    environment: dict


def make_data(run):
    """(X_train, Y_train, X_test, Y_test) of a run, from its settings and data seeds."""
    s = run.settings
    name = s["data.name"]
    if name == "digits":
        # One seeded split (from the training seed), then the first data.train / data.test.
        X_train, Y_train, X_test, Y_test = datasets.digits(seed=run.train_data_seed)
        n_train, n_test = s["data.train"], s["data.test"]
        return X_train[:, :n_train], Y_train[:, :n_train], X_test[:, :n_test], Y_test[:, :n_test]
    draw = getattr(datasets, name)
    return draw(s["data.train"], noise=s["data.noise"], seed=run.train_data_seed) + draw(
        s["data.test"], noise=s["data.noise"], seed=run.test_data_seed
    )


def group_bytes(runs):
    """About the memory train_group(runs) takes in its worker: every run's data, the
    Ensemble's training (engine.model.training_bytes: parameters, gradients, optimizer state,
    batch buffers, sample-major copies of the data) and every run's costs, for the runs'
    largest settings."""
    s = runs[0].settings
    digits = s["data.name"] == "digits"
    n_features, n_outputs = (
        (datasets.DIGITS_FEATURES, datasets.DIGITS_CLASSES) if digits else (2, 1)
    )
    train = max(run.settings["data.train"] for run in runs)
    test = max(run.settings["data.test"] for run in runs)
    data = len(runs) * (train + test) * (n_features + n_outputs) * 8
    # The batch buffers are the larger of training's and of the accuracies' inference, which
    # runs over up to INFERENCE_SAMPLES samples at a time.
    batch = max(s["train.batch_size"] or train, min(max(train, test), INFERENCE_SAMPLES))
    history, buffers = training_bytes(
        [*s["model.hidden"], n_outputs],
        n_features,
        train,
        batch,
        s["train.epochs"],
        n_models=len(runs),
        data_copies=len(runs),
    )
    # The costs twice: the Ensemble's history, and each run's result.
    return data + 2 * history + buffers


def make_model(run, X_train, n_outputs):
    """The run's compiled, built network: hidden layers by its scheme, LSUV applied if asked."""
    model = network(run, n_outputs)
    model.build(X_train.shape[0])
    name = parse_scheme(run.settings["model.scheme"])[0]
    if name in DATA_DEPENDENT:
        model.initialize(X_train, method=name)
    return model


def networks_per_kernel(runs):
    """One network (compiled, not built) per training kernel that `runs` need: a kernel serves
    every run of one hidden activation and one kind of output (a sigmoid unit, or a softmax over
    any number of classes), whatever the sizes."""
    n_outputs = {}  # by data set
    models = {}
    for run in runs:
        name = run.settings["data.name"]
        if name not in n_outputs:
            n_outputs[name] = make_data(run)[1].shape[0]
        key = (run.settings["model.activation"], n_outputs[name] == 1)
        if key not in models:
            models[key] = network(run, n_outputs[name])
    return list(models.values())


def network(run, n_outputs):
    """The run's network, compiled and not built: its layers, their schemes, loss and optimizer."""
    s = run.settings
    scheme = s["model.scheme"]
    output_scheme = scheme if s["model.output_scheme"] == "same" else s["model.output_scheme"]
    model = NeuralNetwork(seed=run.weights_seed)
    for width in s["model.hidden"]:
        model.add(Dense(width, s["model.activation"], initializer=scheme_initializer(scheme)))
    binary = n_outputs == 1
    model.add(
        Dense(
            n_outputs,
            "sigmoid" if binary else "softmax",
            initializer=scheme_initializer(output_scheme),
        )
    )
    model.compile(
        loss="crossentropy" if binary else "categorical_crossentropy",
        optimizer=s["train.optimizer"],
    )
    return model


def train_group(runs, checkpoints=None, checkpoint_seconds=CHECKPOINT_SECONDS):
    """Train runs of one architecture together; return one RunResult per run, in order.

    runs : list of spec.Run with equal Run.architecture()
    checkpoints : a directory for checkpoints (shared with the process that stores results),
        or None for none
    """
    if len({run.architecture() for run in runs}) != 1:
        raise ValueError("train_group needs runs of one architecture (Run.architecture)")
    data = [make_data(run) for run in runs]
    # Models resumed from the same epoch train together; fresh ones start at epoch 0.
    states = [_load_checkpoint(checkpoints, run) for run in runs]
    results = [None] * len(runs)
    for start in sorted({state[0] for state in states}):
        members = [i for i, state in enumerate(states) if state[0] == start]
        started = time.perf_counter()
        with np.errstate(all="ignore"):  # exploding schemes overflow: their nan is a result
            models = [
                states[i][1] or make_model(runs[i], data[i][0], data[i][1].shape[0])
                for i in members
            ]
            costs, path = _train(
                models,
                [runs[i] for i in members],
                [data[i] for i in members],
                start,
                [states[i][2] for i in members],
                checkpoints,
                checkpoint_seconds,
            )
        seconds = (time.perf_counter() - started) / len(members)  # this sitting's share
        for i, model, run_costs in zip(members, models, costs):
            X_train, Y_train, X_test, Y_test = data[i]
            with np.errstate(all="ignore"):
                train_accuracy = model.evaluate(X_train, Y_train)["accuracy"]
                test_accuracy = model.evaluate(X_test, Y_test)["accuracy"]
            results[i] = RunResult(
                runs[i].key,
                float(train_accuracy),
                float(test_accuracy),
                float(run_costs[-1]),
                seconds,
                run_costs,
                {**environment.summary(), "training": path},
            )
    return results


def _train(models, runs, data, start, done, checkpoints, checkpoint_seconds):
    """Train from epoch `start` to the end; return each model's costs of every epoch, and the
    path that trained them (NumPy or compiled: Ensemble.last_fit_path)."""
    settings = runs[0].settings
    epochs, batch_size = settings["train.epochs"], settings["train.batch_size"] or None
    ensemble = Ensemble(models)
    X = np.stack([d[0] for d in data])
    Y = np.stack([d[1] for d in data])
    step = max(1, epochs // SLICES)
    history = [np.stack(done, axis=1)] if start else []
    last_checkpoint = time.monotonic()
    for epoch in range(start, epochs, step):
        count = min(step, epochs - epoch)
        history.append(
            ensemble.fit(
                X,
                Y,
                epochs=count,
                batch_size=batch_size,
                learning_rate=settings["train.learning_rate"],
            )["loss"]
        )
        reached = epoch + count
        if (
            checkpoints is not None
            and reached < epochs
            and time.monotonic() - last_checkpoint >= checkpoint_seconds
        ):
            costs = np.concatenate(history)
            for k, (model, run) in enumerate(zip(models, runs)):
                _save_checkpoint(checkpoints, run, model, costs[:, k], reached)
            last_checkpoint = time.monotonic()
    costs = np.concatenate(history).astype(np.float64)
    return [costs[:, k].copy() for k in range(len(models))], ensemble.last_fit_path


# --- checkpoints --------------------------------------------------------------------------------
# A run's checkpoint at epoch e is two files: <key>.e<e>.costs.npy, then <key>.e<e>.npz (the
# model). Each is written atomically, the costs first, so a model file means a complete pair.


def checkpoint_files(checkpoints, key):
    """The files of every checkpoint of run `key` in the directory (any epoch)."""
    if checkpoints is None or not os.path.isdir(checkpoints):
        return []
    return [
        os.path.join(checkpoints, name)
        for name in os.listdir(checkpoints)
        if name.startswith(key + ".e")
    ]


def _save_checkpoint(checkpoints, run, model, costs, epoch):
    os.makedirs(checkpoints, exist_ok=True)
    stem = os.path.join(checkpoints, f"{run.key}.e{epoch}")
    old = checkpoint_files(checkpoints, run.key)
    tmp = f"{stem}.{os.getpid()}.tmp.npy"
    np.save(tmp, np.asarray(costs, dtype=np.float64))
    os.replace(tmp, stem + ".costs.npy")
    model.save(stem + ".npz")
    for path in old:
        if not path.startswith(stem + "."):
            _remove(path)


def _load_checkpoint(checkpoints, run):
    """(epoch, model, costs so far) of the run's latest complete checkpoint, or (0, None, None)."""
    epochs = []
    for path in checkpoint_files(checkpoints, run.key):
        name = os.path.basename(path)
        if name.endswith(".npz"):
            try:
                epochs.append(int(name[len(run.key) + 2 : -len(".npz")]))
            except ValueError:
                continue
    for epoch in sorted(epochs, reverse=True):
        stem = os.path.join(checkpoints, f"{run.key}.e{epoch}")
        try:
            model = NeuralNetwork.load(stem + ".npz")
            costs = np.load(stem + ".costs.npy", allow_pickle=False)
        except (OSError, ValueError):
            continue  # damaged: an older one, or a fresh start
        if costs.shape == (epoch,) and epoch < run.settings["train.epochs"]:
            return epoch, model, costs
    return 0, None, None


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
