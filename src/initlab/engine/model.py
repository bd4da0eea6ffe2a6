"""NeuralNetwork: the post's model API, with gradients from one forward pass and a fast loop.

    model = NeuralNetwork(seed=0)
    model.add(Dense(units=12, activation="relu", initializer="he"))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    model.fit(X, Y, learning_rate=0.01, epochs=15000)      # X (n_features, m), Y (n_outputs, m)
    model.evaluate(X, Y)                                   # {'accuracy': ..., 'loss': ...}

One epoch (full batch by default): every layer's forward pass, the loss and its gradient, every
layer's backward pass, and only then one update of all parameters at once. Parameters and gradients
live in two flat vectors that the layers' arrays are views into, so the update is a few vector
operations, and every buffer is allocated once per fit (training.py holds the loop).
"""

import json
import os
import tempfile
import zipfile

import numpy as np

from initlab import checks
from initlab.blocks import initializers, losses, optimizers
from initlab.blocks import layers as layers_module
from initlab.engine import training

FILE_FORMAT = "initlab.NeuralNetwork"
FILE_VERSION = 1


class NeuralNetwork:
    """A stack of layers trained by gradient descent on data laid out as (features, samples).

    Parameters
    ----------
    layers : list of Layer, optional
        Layers to add, in order; more can be added with `add`.
    seed : int or None
        Seeds every draw: layer k's initializer receives a Generator spawned from
        SeedSequence(seed), and so does minibatch shuffling. None draws fresh entropy once, kept
        in `seed_entropy` (and saved), so even an unseeded run can be repeated.
    dtype : "float64" (default) or "float32"
    """

    def __init__(self, layers=None, seed=None, dtype="float64"):
        seed = checks.integer("seed", seed, minimum=0, optional=True)
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.seed = seed
        self.seed_entropy = np.random.SeedSequence(seed).entropy
        self.dtype = np.dtype(dtype)
        self.layers = []
        self.loss = None
        self.optimizer = None
        self.costs = []
        self.history = None
        self.learning_rate = None
        self.stop_training = False
        self._shuffle_generator = None  # created on first use; see _shuffle_rng
        self._params = None  # flat vector of all parameters, once built
        self._grads = None
        for layer in layers or ():
            self.add(layer)

    # --- construction ------------------------------------------------------------------------
    def add(self, layer):
        if not isinstance(layer, layers_module.Layer):
            raise ValueError(f"layer must be a Layer such as Dense(...), got {layer!r}")
        if self.built:
            raise ValueError("cannot add a layer to a model that is already built")
        self.layers.append(layer)
        self._link_output()

    def compile(self, loss="crossentropy", optimizer=None):
        """Choose the loss and the optimizer ("sgd", the post's plain gradient descent, default)."""
        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        self._link_output()

    def _link_output(self):
        # Fuse the output activation into the loss where the pair has an exact logit form.
        for layer in self.layers:
            layer.emits_logits = False
        if self.layers and self.loss is not None:
            output = self.layers[-1]
            output.emits_logits = output.activation.name == self.loss.output_activation

    @property
    def built(self):
        return self._params is not None

    def build(self, n_features):
        """Draw every layer's parameters for inputs of n_features, then pack them flat."""
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(Dense(...))")
        init_seeds = np.random.SeedSequence(self.seed_entropy).spawn(len(self.layers) + 1)[1:]
        fan_in = n_features
        for layer, seed_seq in zip(self.layers, init_seeds):
            layer.build(fan_in, np.random.default_rng(seed_seq), dtype=self.dtype)
            fan_in = layer.units
        self._params, self._grads = pack_parameters(self.layers)

    def initialize(self, X, method="lsuv", **options):
        """Re-draw every layer on the batch X: LSUV (the default) or any registered scheme name.

        `model.initialize(X, method="lsuv", tol=0.1, max_iter=10)`: orthonormal weights, then each
        layer's weights rescaled until its pre-activation has variance 1 on X (Mishkin & Matas
        2015). `model.initialize(X, method="he_normal", **params)`: every layer re-drawn by that
        scheme. Builds the model if needed and resets the optimizer's state. Returns one dict per
        layer: {"layer", "units", "variance" (of its pre-activation on X), "iterations"}.
        See initlab.tools.lsuv.
        """
        from initlab.tools import lsuv  # lsuv imports this module

        X = self._check_features(X)
        if not self.built:
            self.build(X.shape[-2])
        report = lsuv.initialize(self, X, method, self._layer_rngs(), **options)
        if self.optimizer is not None:
            self.optimizer.reset()
        return report

    def _layer_rngs(self):
        # The streams build() gives the layers' initializers: child k + 1 for layer k.
        seeds = np.random.SeedSequence(self.seed_entropy).spawn(len(self.layers) + 1)[1:]
        return [np.random.default_rng(seed) for seed in seeds]

    def _shuffle_rng(self):
        # One stream for the model's whole life (child 0 of its seed), so a second fit continues
        # the minibatch order where the first stopped: fit(10) twice equals fit(20).
        if self._shuffle_generator is None:
            stream = np.random.SeedSequence(self.seed_entropy).spawn(1)[0]
            self._shuffle_generator = np.random.default_rng(stream)
        return self._shuffle_generator

    # --- training ----------------------------------------------------------------------------
    def fit(self, X, Y, epochs=1000, learning_rate=None, print_log=False, batch_size=None,
            log_every=1000, shuffle=True, callbacks=(), jit_compile=False):
        """Train, continuing from the current weights; return the per-epoch history.

        learning_rate : float or None
            None keeps the optimizer's own rate (0.01 for the default gradient descent).
        batch_size : int or None
            None trains on the full batch every epoch, as the post does.
        log_every : int
            `costs` records the cost at epoch 0, every log_every epochs and the last epoch, and
            print_log=True prints `Epochs: {i} - Cost: {cost}` at those epochs.
        callbacks : objects with any of on_train_begin(model), on_epoch_end(model, epoch, cost),
            on_train_end(model). Setting model.stop_training = True ends training after the epoch.
        jit_compile : bool
            Run each step as one compiled kernel (initlab.fast.jit; needs Numba) instead of NumPy
            calls: 2-3x faster for small Dense networks, equal to rounding, after about 5 s of
            compiling on the first fit of a process. A model the kernel does not cover raises
            ValueError saying why, before anything changes.

        Returns {"loss": array of the cost at every epoch (the mean over its minibatches)}.
        """
        self._check_compiled()
        X, Y, epochs, learning_rate, batch_size, log_every = check_fit_arguments(
            self._check_data, X, Y, epochs, learning_rate, batch_size, log_every)
        jit_compile = check_jit_compile(jit_compile, self, X.shape[-2])
        # Everything is checked: from here on the model changes.
        if not self.built:
            self.build(X.shape[-2])
        if learning_rate is not None:
            self.optimizer.learning_rate = learning_rate
        self.learning_rate = self.optimizer.learning_rate
        self.history = {"loss": self._train(X, Y, epochs, batch_size, log_every, shuffle,
                                            callbacks, print_log, jit_compile)}
        return self.history

    def _train(self, X, Y, epochs, batch_size, log_every, shuffle, callbacks, print_log,
               jit_compile=False):
        """fit's epochs on checked data (training.run_epochs); returns the history."""
        def make_run_epoch():  # after on_train_begin, which may change the weights
            return self._training_loop(X, Y, batch_size, shuffle, [self._shuffle_rng()],
                                       jit_compile).run_epoch

        self.costs = []
        return training.run_epochs(make_run_epoch, epochs, log_every, self, self.costs,
                                   callbacks, print_log)

    def _training_loop(self, X, Y, batch_size, shuffle, rngs, jit_compile=False):
        """A TrainingLoop over this model's buffers; `rngs` order the minibatches (one, or one
        per stacked model)."""
        if not training.is_packed(self.layers, self._params, self._grads):
            # A layer's arrays were rebound (layer.params[name] = array): pack them again, or
            # the optimizer's update of the flat vector would never reach them.
            self._params, self._grads = pack_parameters(self.layers)
        return training.TrainingLoop(self.layers, self.loss, self.optimizer, self._params,
                                     self._grads, X, Y, batch_size, shuffle, rngs, jit_compile)

    def _loss_and_grad(self, Y, output):
        if self.layers[-1].emits_logits:
            return self.loss.from_logits(Y, output)
        return self.loss(Y, output), self.loss.gradient(Y, output)

    # --- inference ---------------------------------------------------------------------------
    def predict(self, X):
        """The output layer's values: probabilities of shape (n_outputs, m) for sigmoid/softmax."""
        X = self._check_features(X)
        if not self.built:
            self.build(X.shape[-2])
        return self._activate(self._forward(X))

    __call__ = predict

    def _forward(self, X):
        a = X
        for layer in self.layers:
            a = layer.forward(a)
        return a.copy()  # the layers' buffers are reused by the next pass

    def _activate(self, output):
        last = self.layers[-1]
        return last.activation.forward(output) if last.emits_logits else output

    def evaluate(self, X, Y):
        """{'accuracy': percent of correct thresholded predictions, 'loss': the mean cost}.

        Thresholds: p > 0.5 for 0/1 targets (each output separately), argmax for one-hot targets
        with a softmax output. Regression targets (not 0/1) get no accuracy.
        """
        self._check_compiled()
        X, Y = self._check_data(X, Y)
        if not self.built:
            self.build(X.shape[-2])
        cost, accuracy = score_output(self, Y, self._forward(X))
        result = {}
        if accuracy is not None:
            result["accuracy"] = accuracy
        result["loss"] = _to_python(cost)
        return result

    # --- checks ------------------------------------------------------------------------------
    def _check_compiled(self):
        if self.loss is None:
            raise ValueError("the model is not compiled; call model.compile(loss=...) first")
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(Dense(...))")

    def _check_features(self, X):
        X = _as_data("X", X, self.dtype, ndim=2)
        expected = self.layers[0].fan_in if self.layers else None
        _check_feature_count(X, expected, "the model was")
        return X

    def _check_data(self, X, Y):
        X = self._check_features(X)
        Y = _as_data("Y", Y, self.dtype, ndim=X.ndim)
        if Y.shape[-1] != X.shape[-1]:
            raise ValueError(
                f"Y must have as many samples (columns) as X: X has {X.shape[-1]}, Y has shape "
                f"{Y.shape}"
            )
        n_outputs = self.layers[-1].units
        wrong_rows = f"Y must have {n_outputs} rows, one per output unit, got shape {Y.shape}"
        # The shape first: a wrong row count explains more than a complaint about the values.
        # A single row may still be class indices, which categorical cross-entropy encodes.
        if Y.shape[-2] not in (1, n_outputs):
            raise ValueError(wrong_rows)
        Y = self.loss.prepare_targets(Y, n_outputs)
        if Y.shape[-2] != n_outputs:
            raise ValueError(wrong_rows)
        return X, Y

    # --- reporting ---------------------------------------------------------------------------
    def summary(self):
        """Print (and return) a table of layers, output shapes and parameter counts."""
        rows = [("Layer", "Output shape", "Activation", "Initializer", "Params")]
        for i, layer in enumerate(self.layers, start=1):  # from 1, as the diagnostics number them
            init = getattr(layer.initializer, "method", type(layer.initializer).__name__)
            rows.append((f"{type(layer).__name__} {i}", f"({layer.units}, m)",
                         layer.activation.name, str(init),
                         str(layer.count_params()) if layer.built else "unbuilt"))
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
        rule = "-" * len(lines[0])
        total = sum(layer.count_params() for layer in self.layers)
        loss = self.loss.name if self.loss else "not compiled"
        text = "\n".join([rule, lines[0], rule, *lines[1:], rule,
                          f"Total params: {total}    Loss: {loss}"])
        print(text)
        return text

    def __repr__(self):
        return f"NeuralNetwork(layers={self.layers!r}, seed={self.seed!r})"

    # --- persistence -------------------------------------------------------------------------
    def get_config(self):
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "seed": self.seed,
            "seed_entropy": str(self.seed_entropy),
            "dtype": self.dtype.name,
            "layers": [layer.get_config() for layer in self.layers],
            "loss": self.loss.get_config() if self.loss else None,
            "optimizer": self.optimizer.get_config() if self.optimizer else None,
            "learning_rate": self.learning_rate,
            # Plain integers, so a loaded model goes on shuffling where the saved one would have.
            "shuffle_state": (self._shuffle_generator.bit_generator.state
                              if self._shuffle_generator is not None else None),
        }

    def save(self, path):
        """Write weights, the optimizer's state and a JSON config to `path` (an .npz), atomically.

        With the state (momentum's velocity, Adam's moments and step count) and the place in the
        shuffle stream, a loaded model trains on exactly as the saved one would have: fit(30),
        save, load, fit(30) gives the bits of fit(60).

        The file is written beside its destination and renamed over it only once complete, so an
        existing file is never left half-written. No pickle is written or read.
        """
        if not self.built:
            raise ValueError("the model has no weights yet; fit (or predict) once before saving")
        path = os.fspath(path)
        arrays = {f"{i}.{name}": value for i, layer in enumerate(self.layers)
                  for name, value in layer.params.items()}
        config = self.get_config()
        config["optimizer_state"], state_arrays = self._optimizer_state()
        arrays.update(state_arrays)
        arrays["config"] = np.array(json.dumps(config))
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".initlab-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def _optimizer_state(self):
        """(config entry, arrays) of what the optimizer carries from step to step, for `save`.

        The moments (Momentum's velocity, Adam's m and v) become arrays "optimizer.0", ...,
        laid out as the flat parameter vector (pack_parameters' order: a change of that layout
        needs a new FILE_VERSION); Adam's step count goes into the config. A state equal to a
        fresh one (a model never trained, plain SGD) is not written: (None, {}).
        Files stay version 1: a reader from before ignores both (it reads only the layers'
        "<i>.<name>" arrays and the config keys it knows) and loads a fresh state, as it did.
        """
        optimizer = self.optimizer
        if optimizer is None or not optimizer.has_state(self._params):
            return None, {}
        moments = optimizer.moments(self._params)
        iterations = getattr(optimizer, "iterations", None)
        if not iterations and not any(moment.any() for moment in moments):
            return None, {}
        if iterations is not None:
            iterations = int(iterations)  # for JSON, whatever integer type set it
        return ({"moments": len(moments), "iterations": iterations},
                {f"optimizer.{k}": moment for k, moment in enumerate(moments)})

    @classmethod
    def load(cls, path):
        """Read a model written by `save`. Anything else raises ValueError; nothing is unpickled.

        Files saved before the optimizer's state was (the same version 1, without it) load with
        a fresh state, as they always did.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                config = json.loads(str(archive["config"]))
                arrays = {name: archive[name] for name in archive.files if name != "config"}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"{path!r} is not an initlab model file, or it is truncated ({error})"
            ) from None
        if not isinstance(config, dict) or config.get("format") != FILE_FORMAT:
            raise ValueError(f"{path!r} is not an initlab model file (no initlab config inside)")
        # 1 only: not True or 1.0, which compare equal to it.
        if type(config.get("version")) is not int or config["version"] != FILE_VERSION:
            raise ValueError(
                f"{path!r} was written by file format version {config.get('version')!r}; "
                f"this initlab reads version {FILE_VERSION}"
            )
        return cls._from_config(config, arrays, path)

    @classmethod
    def _from_config(cls, config, arrays, path):
        model = cls(seed=config["seed"], dtype=config["dtype"])
        model.seed_entropy = int(config["seed_entropy"])
        try:
            for i, layer_config in enumerate(config["layers"]):
                layer_config = dict(layer_config)
                layer_class = layers_module.LAYERS[layer_config.pop("class")]
                for key in ("initializer", "bias_initializer"):
                    # A function initializer cannot be rebuilt from its name: None (the default)
                    # takes its place; the weights themselves are loaded below.
                    init = layer_config.get(key)
                    if key in layer_config:
                        layer_config[key] = (initializers.get(init) if isinstance(init, dict)
                                             and "method" in init else None)
                layer = layer_class(**layer_config)
                layer.params = {name.split(".", 1)[1]: value.astype(model.dtype)
                                for name, value in arrays.items()
                                if name.split(".", 1)[0] == str(i)}
                layer.grads = {name: np.zeros_like(v) for name, v in layer.params.items()}
                model.add(layer)
            if config["loss"] is not None:
                model.compile(loss=config["loss"], optimizer=config["optimizer"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path!r} holds an invalid initlab config ({error})") from None
        model.learning_rate = config.get("learning_rate")
        if config.get("shuffle_state") is not None:
            try:
                model._shuffle_rng().bit_generator.state = config["shuffle_state"]
            except (TypeError, ValueError, KeyError) as error:
                raise ValueError(f"{path!r} holds an invalid shuffle state ({error})") from None
        model._params, model._grads = pack_parameters(model.layers)
        model._restore_optimizer_state(config.get("optimizer_state"), arrays, path)
        return model

    def _restore_optimizer_state(self, state, arrays, path):
        """Put back what `_optimizer_state` saved, once all of it is checked; None (as in files
        written before the state was saved) leaves the optimizer fresh."""
        optimizer = self.optimizer
        found = sorted(name for name in arrays if name.split(".", 1)[0] == "optimizer")
        if state is not None and not isinstance(state, dict):
            raise ValueError(f"{path!r}: optimizer_state must be null or "
                             f"{{'moments': n, 'iterations': t}}, got {state!r}")
        n_moments, iterations = 0, None
        if state is not None:
            if optimizer is None:
                raise ValueError(f"{path!r} holds optimizer state but no optimizer")
            n_moments, iterations = state.get("moments"), state.get("iterations")
            if type(n_moments) is not int or n_moments != optimizer.n_moments:
                raise ValueError(f"{path!r}: its optimizer state has {n_moments!r} moments; "
                                 f"{optimizer.name} carries {optimizer.n_moments}")
            if not hasattr(optimizer, "iterations"):
                if iterations is not None:
                    raise ValueError(f"{path!r}: {optimizer.name} keeps no step count, got "
                                     f"{iterations!r}")
            elif type(iterations) is not int or iterations < 0:
                raise ValueError(f"{path!r}: the optimizer's step count must be an integer >= 0, "
                                 f"got {iterations!r}")
        expected = [f"optimizer.{k}" for k in range(n_moments)]
        if found != expected:
            raise ValueError(f"{path!r} holds optimizer state arrays {found}; expected {expected}")
        for name in expected:
            array = arrays[name]
            if array.shape != self._params.shape or array.dtype != self._params.dtype:
                raise ValueError(
                    f"{path!r}: optimizer state array {name!r} has shape {array.shape} and dtype "
                    f"{array.dtype}; expected shape {self._params.shape} and dtype "
                    f"{self._params.dtype}, like the model's {self._params.size} parameters"
                )
        if state is None:
            return
        # Everything is checked: only now does the optimizer change.
        for moment, name in zip(optimizer.moments(self._params), expected, strict=True):
            np.copyto(moment, arrays[name])
        if iterations is not None:
            optimizer.iterations = iterations  # after moments(), which made Adam's count 0


def pack_parameters(layers):
    """Move every layer's parameters (and gradients) into one flat vector each, as views.

    Returns (params, grads). Each layer packs its own slice (`Layer.pack`): its arrays keep their
    shapes, including any leading ensemble axis, and a Dense layer packs [W | b] as one block.
    """
    sizes = [layer.count_params() for layer in layers]
    dtype = next(value.dtype for layer in layers for value in layer.params.values())
    params, grads = np.empty(sum(sizes), dtype), np.zeros(sum(sizes), dtype)
    offset = 0
    for layer, size in zip(layers, sizes, strict=True):
        layer.pack(params[offset:offset + size], grads[offset:offset + size])
        offset += size
    return params, grads


def score_output(model, Y, output):
    """(cost, accuracy percent or None) of a model's raw output layer values for targets Y.

    Shared by NeuralNetwork.evaluate and Ensemble.evaluate; `model` supplies the loss and the
    output layer (whether it emits logits, and its activation).
    """
    last = model.layers[-1]
    if last.emits_logits:
        cost = model.loss.from_logits(Y, output)[0]
        probabilities = model._activate(output)
    else:
        probabilities = output
        cost = model.loss(Y, output)
    return cost, accuracy_percent(Y, probabilities, last.activation.name)


def accuracy_percent(Y, probabilities, activation_name):
    """Percent of correct predictions, per model; None when targets are not class labels."""
    is_labels = np.all((Y == 0) | (Y == 1))
    if not is_labels:
        return None
    if activation_name == "softmax" and Y.shape[-2] > 1:
        correct = probabilities.argmax(axis=-2) == Y.argmax(axis=-2)
        return _to_python(100.0 * correct.mean(axis=-1))
    correct = (probabilities > 0.5) == (Y == 1)
    return _to_python(100.0 * correct.mean(axis=(-2, -1)))


def _to_python(value):
    value = np.asarray(value, dtype=float)
    return float(value) if value.ndim == 0 else value


def _as_data(name, value, dtype, ndim):
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from None
    if array.ndim != ndim:
        rows = "n_features" if name == "X" else "n_outputs"
        hint = ""
        if array.ndim == 1:
            hint = f"; for one row of m values use np.reshape({name}, (1, -1))"
        raise ValueError(
            f"{name} must be a {ndim}-D array laid out as ({rows}, m), got shape {array.shape}"
            f"{hint}"
        )
    if array.shape[-1] < 1:
        raise ValueError(f"{name} has no samples (columns): shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains nan or inf")
    return array


def _check_feature_count(X, expected, built):
    """ValueError unless X has `expected` rows (when the layers are built, i.e. it is not None)."""
    if expected is None or X.shape[-2] == expected:
        return
    # Suggest the transpose only where it would fit: a sample-major X has the features last.
    hint = (" Data are laid out as (n_features, m): did you mean X.T?"
            if X.shape[-1] == expected else "")
    raise ValueError(f"X must have {expected} features (rows), as {built} built with; got shape "
                     f"{X.shape}.{hint}")


def check_jit_compile(jit_compile, model, n_features):
    """fit's `jit_compile`: a bool, and if True, a model the compiled kernel covers."""
    if not isinstance(jit_compile, (bool, np.bool_)):
        raise ValueError(f"jit_compile must be True or False, got {jit_compile!r}")
    if jit_compile:
        from initlab.fast import jit  # imports Numba: only on request

        jit.check_supported(model.layers, model.loss, n_features)
    return bool(jit_compile)


def check_fit_arguments(check_data, X, Y, epochs, learning_rate, batch_size, log_every):
    """fit's checks, shared by NeuralNetwork and Ensemble; returns the cleaned values.

    batch_size comes back capped at the number of samples (None stays None: full batch).
    """
    epochs = checks.integer("epochs", epochs, minimum=1)
    log_every = checks.integer("log_every", log_every, minimum=1)
    if learning_rate is not None:
        learning_rate = checks.positive("learning_rate", learning_rate)
    X, Y = check_data(X, Y)
    if batch_size is not None:
        batch_size = min(checks.integer("batch_size", batch_size, minimum=1), X.shape[-1])
    return X, Y, epochs, learning_rate, batch_size, log_every
