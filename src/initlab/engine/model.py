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

import contextlib

import numpy as np

from initlab import checks
from initlab.blocks import initializers, losses, optimizers
from initlab.blocks import layers as layers_module
from initlab.engine import saving, training
from initlab.engine.parameters import pack_parameters
from initlab.engine.saving import FILE_FORMAT, FILE_VERSION

# Inference passes over at most this many samples at a time. The layers keep the buffers of their
# last pass, for the next pass of the same size to reuse (predict, the diagnostics, a layer of
# one's own trained without a fast path); one pass over a large input would make them that large
# (a decision boundary's grid of 60,000 points: 20 MB for the post's network). A pass in parts
# needs buffers of one part only, and releases them after.
INFERENCE_SAMPLES = 8192

# Initialisations that need data, by name: function(model, X, **options) -> one report dict per
# layer (layer_report), run by NeuralNetwork.initialize on a built model, which restores the model
# if it fails. initlab.tools.lsuv registers "lsuv".
DATA_DEPENDENT = {}


def register_data_dependent(name):
    """Decorator: make `function(model, X, **options)` available as model.initialize(X, name)."""

    def decorate(function):
        DATA_DEPENDENT[name.lower()] = function
        return function

    return decorate


def layer_report(number, layer, variance, iterations):
    """One layer's entry in model.initialize's report; layers are numbered from 1."""
    return {"layer": number, "units": layer.units, "variance": variance, "iterations": iterations}


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
        dtype = check_dtype(dtype)
        self.seed = seed
        self.seed_entropy = np.random.SeedSequence(seed).entropy
        self.dtype = np.dtype(dtype)
        self.layers = []
        self.loss = None
        self.optimizer = None
        self.costs = []
        self.history = None
        self.last_fit_path = None  # "NumPy" or "compiled (initlab.fast.jit)" once fitted
        self.learning_rate = None
        self.stop_training = False
        self._shuffle_generator = None  # created on first use; see shuffle_generator
        self.parameters = None  # flat vector of all parameters, once built
        self.gradients = None
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
        loss, optimizer = losses.get(loss), optimizers.get(optimizer)  # both, before either is set
        self.loss, self.optimizer = loss, optimizer
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
        return self.parameters is not None

    def build(self, n_features):
        """Draw every layer's parameters for inputs of n_features, then pack them flat."""
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(Dense(...))")
        init_seeds = np.random.SeedSequence(self.seed_entropy).spawn(len(self.layers) + 1)[1:]
        with self._unbuilt_on_error():
            fan_in = n_features
            for index, (layer, seed_seq) in enumerate(zip(self.layers, init_seeds)):
                # A draw too large for the dtype becomes inf: refused below, not warned about.
                with np.errstate(over="ignore", invalid="ignore"):
                    layer.build(fan_in, np.random.default_rng(seed_seq), dtype=self.dtype)
                _check_representable(index + 1, layer, self.dtype)  # layers count from 1
                fan_in = layer.units
            self.parameters, self.gradients = pack_parameters(self.layers)

    @contextlib.contextmanager
    def _unbuilt_on_error(self):
        """Undo a build if the block fails (a bad initializer, memory): all or nothing."""
        if self.built:
            yield
            return
        # The layers, and the initializers they call (which note each call's shape and rng).
        touched = [
            obj
            for layer in self.layers
            for obj in (
                layer,
                *(
                    value
                    for value in vars(layer).values()
                    if isinstance(value, initializers.Initializer)
                ),
            )
        ]
        saved = [(obj, dict(vars(obj))) for obj in touched]
        try:
            yield
        except BaseException:
            for obj, attributes in saved:
                vars(obj).clear()
                vars(obj).update(attributes)
            self.parameters = self.gradients = None
            raise

    def initialize(self, X, method="lsuv", **options):
        """Re-draw every layer on the batch X: LSUV (the default) or any registered scheme name.

        `model.initialize(X, method="lsuv", tol=0.1, max_iter=10)`: orthonormal weights, then each
        layer's weights rescaled until its pre-activation has variance 1 on X (Mishkin & Matas
        2015; initlab.tools.lsuv). `model.initialize(X, method="he_normal", **params)`: every
        layer re-drawn by that scheme, from the layers' own streams, so it gives the bits that
        building the model with it gives. A data-dependent method registered with
        `register_data_dependent` runs the same way. Builds the model if needed and resets the
        optimizer's state; on any error the model is left as it was. Returns one dict per layer,
        numbered from 1: {"layer", "units", "variance" (of its pre-activation on X),
        "iterations"}.
        """
        if not isinstance(method, str):
            raise ValueError(f"method must be 'lsuv' or a scheme name, got {method!r}")
        X = self.check_features(X)
        run = DATA_DEPENDENT.get(method.lower())
        scheme = None if run else initializers.Initializer(method, **options)
        with self._unbuilt_on_error():  # a model built here is unbuilt again on any error
            if not self.built:
                self.build(X.shape[-2])
            report = self._initialize_built(X, run, scheme, options)
        if self.optimizer is not None:
            self.optimizer.reset()
        return report

    def _initialize_built(self, X, run, scheme, options):
        """initialize's work on a built model; puts the layers back as they were on an error."""
        for number, layer in enumerate(self.layers, start=1):
            weights = layer.params.get("weights")
            if weights is None or weights.ndim != 2 or not hasattr(layer, "preactivation"):
                raise ValueError(
                    f"layer {number} ({type(layer).__name__}) has no (units, fan_in) weights and "
                    f"preactivation; initialize handles Dense layers of a single model"
                )
        saved = [(layer, layer.initializer, layer.params, layer.grads) for layer in self.layers]
        saved_flat = (self.parameters, self.gradients)
        try:
            if run is not None:
                report = run(self, X, **options)
            else:
                self.redraw(scheme)
                report = [
                    layer_report(number, layer, variance, 0)
                    for number, (layer, variance) in enumerate(
                        zip(self.layers, self.preactivation_variances(X)), 1
                    )
                ]
        except BaseException:
            for layer, layer_initializer, params, grads in saved:
                layer.initializer, layer.params, layer.grads = layer_initializer, params, grads
            self.parameters, self.gradients = saved_flat
            raise
        return report

    def redraw(self, initializer, keep_initializers=False):
        """Draw every layer's weights again with `initializer` (a scheme name or Initializer),
        from the streams build() gives the layers; biases by each layer's own rules.

        keep_initializers : leave each layer's `initializer` as it was (a data-dependent method
            draws a starting point that is no scheme's draw), else it becomes `initializer`.
        """
        initializer = initializers.get(initializer)
        for layer, rng in zip(self.layers, self.layer_generators(), strict=True):
            if isinstance(layer.bias_initializer, initializers.FunctionNotSaved):
                # The function that drew a loaded layer's biases is not in its file: the new
                # scheme's own biases are drawn instead, as for a layer built without one.
                layer.bias_initializer = None
            kept, layer.initializer = layer.initializer, initializer
            try:
                layer.build(layer.fan_in, rng, dtype=self.dtype)
            finally:
                if keep_initializers:
                    layer.initializer = kept
        self.parameters, self.gradients = pack_parameters(self.layers)

    def preactivation_variances(self, X):
        """The variance of every layer's pre-activation z = W a + b on the batch X, in order."""
        variances = []
        a = np.asarray(X, dtype=self.dtype)
        for layer in self.layers:
            z = layer.preactivation(a)
            variances.append(float(np.var(z)))
            a = layer.activation.forward(z)
        return variances

    def layer_generators(self):
        # The streams build() gives the layers' initializers: child k + 1 for layer k.
        seeds = np.random.SeedSequence(self.seed_entropy).spawn(len(self.layers) + 1)[1:]
        return [np.random.default_rng(seed) for seed in seeds]

    def shuffle_generator(self):
        # One stream for the model's whole life (child 0 of its seed), so a second fit continues
        # the minibatch order where the first stopped: fit(10) twice equals fit(20).
        if self._shuffle_generator is None:
            stream = np.random.SeedSequence(self.seed_entropy).spawn(1)[0]
            self._shuffle_generator = np.random.default_rng(stream)
        return self._shuffle_generator

    # --- training ----------------------------------------------------------------------------
    def fit(
        self,
        X,
        Y,
        epochs=1000,
        learning_rate=None,
        print_log=False,
        batch_size=None,
        log_every=1000,
        shuffle=True,
        callbacks=(),
        jit_compile="auto",
    ):
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
        jit_compile : "auto", True or False
            True runs each step as one compiled kernel (initlab.fast.jit; needs Numba), equal to
            the NumPy path to rounding; a model the kernel does not cover raises ValueError
            saying why, before anything changes. False runs the NumPy path, the reference.
            "auto" (the default) compiles where Numba is installed and the kernel covers the
            model, and runs NumPy otherwise; `last_fit_path` says which ran.

        Returns {"loss": array of the cost at every epoch (the mean over its minibatches)}.
        """
        self.check_compiled()
        print_log, shuffle = checks.flag("print_log", print_log), checks.flag("shuffle", shuffle)
        callbacks = checks.callbacks(callbacks)
        X, Y, epochs, learning_rate, batch_size, log_every = check_fit_arguments(
            self.check_data, X, Y, epochs, learning_rate, batch_size, log_every, layers=self.layers
        )
        jit_compile = check_jit_compile(jit_compile, self, X.shape[-2])
        # Everything is checked. Allocate everything the fit needs (the parameters of a model
        # not yet built, the training buffers, the history) before anything changes, and put
        # back what the allocations touched if one fails (out of memory): all or nothing.
        loop, history = self._allocate_fit(X, Y, epochs, batch_size, shuffle, jit_compile)
        # From here on the model changes.
        self.last_fit_path = training_path(jit_compile)
        if learning_rate is not None:
            self.optimizer.learning_rate = learning_rate
        self.learning_rate = self.optimizer.learning_rate
        self.costs = []

        def make_run_epoch():  # after on_train_begin, which may have rebound a layer's arrays
            if training.is_packed(self.layers, self.parameters, self.gradients):
                return loop.run_epoch
            return self.training_loop(
                X, Y, batch_size, shuffle, [self.shuffle_generator()], jit_compile
            ).run_epoch

        self.history = {
            "loss": training.run_epochs(
                make_run_epoch,
                epochs,
                log_every,
                self,
                self.costs,
                callbacks,
                print_log,
                history=history,
            )
        }
        return self.history

    def _allocate_fit(self, X, Y, epochs, batch_size, shuffle, jit_compile):
        """(training loop, empty history) for a fit, the model built first if it is not; on any
        failure the model, its optimizer and its shuffling stream are left as they were."""
        optimizer_state = dict(vars(self.optimizer))
        shuffle_generator = self._shuffle_generator
        flat = (self.parameters, self.gradients)
        try:
            with self._unbuilt_on_error():
                if not self.built:
                    self.build(X.shape[-2])
                loop = self.training_loop(
                    X, Y, batch_size, shuffle, [self.shuffle_generator()], jit_compile
                )
                history = np.empty(epochs)
        except BaseException:
            vars(self.optimizer).clear()
            vars(self.optimizer).update(optimizer_state)
            self._shuffle_generator = shuffle_generator
            if flat[0] is not None:  # training_loop may have packed rebound arrays anew
                self.parameters, self.gradients = flat
            raise
        return loop, history

    def training_loop(self, X, Y, batch_size, shuffle, rngs, jit_compile=False):
        """A TrainingLoop over this model's buffers; `rngs` order the minibatches (one, or one
        per stacked model)."""
        if not training.is_packed(self.layers, self.parameters, self.gradients):
            # A layer's arrays were rebound (layer.params[name] = array): pack them again, or
            # the optimizer's update of the flat vector would never reach them.
            self.parameters, self.gradients = pack_parameters(self.layers)
        return training.TrainingLoop(
            self.layers,
            self.loss,
            self.optimizer,
            self.parameters,
            self.gradients,
            X,
            Y,
            batch_size,
            shuffle,
            rngs,
            jit_compile,
        )

    def loss_and_gradient(self, Y, output):
        if self.layers[-1].emits_logits:
            return self.loss.from_logits(Y, output)
        return self.loss(Y, output), self.loss.gradient(Y, output)

    # --- inference ---------------------------------------------------------------------------
    def predict(self, X):
        """The output layer's values: probabilities of shape (n_outputs, m) for sigmoid/softmax."""
        X = self.check_features(X)
        if not self.built:
            self.build(X.shape[-2])
        return self.predict_from_output(self.output(X))

    __call__ = predict

    def output(self, X):
        """The output layer's values before predict_from_output, INFERENCE_SAMPLES at a time."""
        m = X.shape[-1]
        if m <= INFERENCE_SAMPLES:
            return self._forward(X)
        parts = [
            self._forward(X[..., start : start + INFERENCE_SAMPLES])
            for start in range(0, m, INFERENCE_SAMPLES)
        ]
        # The last part's buffers fit no pass likely to come: a model kept after a large predict
        # (a decision boundary's grid) would hold them for nothing.
        self.release_buffers()
        return np.concatenate(parts, axis=-1)

    def release_buffers(self):
        """Forget every layer's buffers and cache of the last pass (Layer.release_buffers)."""
        for layer in self.layers:
            layer.release_buffers()

    def _forward(self, X):
        a = X
        for layer in self.layers:
            a = layer.forward(a)
        return a.copy()  # the layers' buffers are reused by the next pass

    def predict_from_output(self, output):
        last = self.layers[-1]
        return last.activation.forward(output) if last.emits_logits else output

    def evaluate(self, X, Y):
        """{'accuracy': percent of correct thresholded predictions, 'loss': the mean cost}.

        Thresholds: p > 0.5 for 0/1 targets (each output separately), argmax for one-hot targets
        with a softmax output. Regression targets (not 0/1) get no accuracy.
        """
        self.check_compiled()
        X, Y = self.check_data(X, Y)
        if not self.built:
            self.build(X.shape[-2])
        cost, accuracy = score_output(self, Y, self.output(X))
        result = {}
        if accuracy is not None:
            result["accuracy"] = accuracy
        result["loss"] = _to_python(cost)
        return result

    # --- checks ------------------------------------------------------------------------------
    def check_compiled(self):
        if self.loss is None:
            raise ValueError("the model is not compiled; call model.compile(loss=...) first")
        if not self.layers:
            raise ValueError("the model has no layers; add some with model.add(Dense(...))")

    def check_features(self, X):
        X = as_data("X", X, self.dtype, ndim=2)
        expected = self.layers[0].fan_in if self.layers else None
        check_feature_count(X, expected, "the model was")
        return X

    def check_data(self, X, Y):
        X = self.check_features(X)
        Y = as_data("Y", Y, self.dtype, ndim=X.ndim)
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
        for number, layer in enumerate(self.layers, start=1):
            init = layer.initializer
            init = "—" if init is None else getattr(init, "name", type(init).__name__)
            rows.append(
                (
                    f"{type(layer).__name__} {number}",
                    f"({layer.units}, m)",
                    layer.activation.name,
                    str(init),
                    str(layer.count_params()) if layer.built else "unbuilt",
                )
            )
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        # No trailing spaces: the last column is padded by nothing.
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        total = sum(layer.count_params() for layer in self.layers)
        loss = self.loss.name if self.loss else "not compiled"
        text = "\n".join(
            [rule, lines[0], rule, *lines[1:], rule, f"Total params: {total}    Loss: {loss}"]
        )
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
            "shuffle_state": (
                self._shuffle_generator.bit_generator.state
                if self._shuffle_generator is not None
                else None
            ),
        }

    def save(self, path):
        """Write weights, the optimizer's state and a JSON config to `path` (an .npz), atomically.

        With the state (momentum's velocity, Adam's moments and step count) and the place in the
        shuffle stream, a loaded model trains on exactly as the saved one would have: fit(30),
        save, load, fit(30) gives the bits of fit(60).

        The file is written beside its destination and renamed over it only once complete, so an
        existing file is never left half-written. No pickle is written or read. The format is
        documented in initlab.engine.saving (and the README).
        """
        saving.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by `save`. Anything else raises saving.ModelFileError (a
        ValueError) naming the file and what is wrong, before anything is built; nothing is
        unpickled. Files saved before the optimizer's state was (the same version 1, without it)
        load with a fresh state, as they always did.
        """
        return saving.load(path, cls)


def score_output(model, Y, output):
    """(cost, accuracy percent or None) of a model's raw output layer values for targets Y.

    Shared by NeuralNetwork.evaluate and Ensemble.evaluate; `model` supplies the loss and the
    output layer (whether it emits logits, and its activation).
    """
    last = model.layers[-1]
    if last.emits_logits:
        cost = model.loss.from_logits(Y, output)[0]
        probabilities = model.predict_from_output(output)
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


def as_data(name, value, dtype, ndim):
    array = checks.real_array(name, value, dtype)
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


def check_feature_count(X, expected, built):
    """ValueError unless X has `expected` rows (when the layers are built, i.e. it is not None)."""
    if expected is None or X.shape[-2] == expected:
        return
    # Suggest the transpose only where it would fit: a sample-major X has the features last.
    hint = (
        " Data are laid out as (n_features, m): did you mean X.T?"
        if X.shape[-1] == expected
        else ""
    )
    raise ValueError(
        f"X must have {expected} features (rows), as {built} built with; got shape {X.shape}.{hint}"
    )


def check_jit_compile(jit_compile, model, n_features):
    """fit's `jit_compile` resolved to a bool: True needs a model the compiled kernel covers
    (else ValueError saying why); "auto" is True exactly where it would be."""
    if isinstance(jit_compile, str) and jit_compile == "auto":
        from initlab.fast import jit  # imports Numba, if installed: only when fitting

        try:
            jit.check_supported(model.layers, model.loss, n_features)
        except jit.Unsupported:
            return False
        return True
    if not isinstance(jit_compile, (bool, np.bool_)):
        raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
    if jit_compile:
        from initlab.fast import jit  # imports Numba: only on request

        jit.check_supported(model.layers, model.loss, n_features)
    return bool(jit_compile)


def training_path(jit_compile):
    """How a fit trained, in words results record: the compiled kernel or NumPy."""
    return "compiled (initlab.fast.jit)" if jit_compile else "NumPy"


def check_fit_arguments(
    check_data, X, Y, epochs, learning_rate, batch_size, log_every, layers=None, n_models=1
):
    """fit's checks, shared by NeuralNetwork and Ensemble; returns the cleaned values.

    batch_size comes back capped at the number of samples (None stays None: full batch). With
    `layers`, the memory the fit needs (training_bytes) is checked against what the machine has.
    """
    epochs = checks.integer("epochs", epochs, minimum=1)
    log_every = checks.integer("log_every", log_every, minimum=1)
    if learning_rate is not None:
        learning_rate = checks.positive("learning_rate", learning_rate)
    X, Y = check_data(X, Y)
    if batch_size is not None:
        batch_size = min(checks.integer("batch_size", batch_size, minimum=1), X.shape[-1])
    if layers is not None:
        history, buffers = training_bytes(
            _widths(layers, X.shape[-2]),
            X.shape[-2],
            X.shape[-1],
            batch_size,
            epochs,
            n_models,
            X.dtype.itemsize,
            data_copies=X.shape[0] if X.ndim == 3 else 1,
        )
        checks.memory(
            f"fit with epochs={epochs}" + (f" and batch_size={batch_size}" if batch_size else ""),
            history + buffers,
            "use fewer epochs (the cost of every epoch is kept)"
            if history > buffers
            else "use a smaller batch_size, fewer samples or smaller layers",
        )
    return X, Y, epochs, learning_rate, batch_size, log_every


def _widths(layers, n_features):
    """Each layer's output size: its `units`, or (a layer that learns it when built, such as an
    elementwise one) the size of its input."""
    widths, width = [], n_features
    for layer in layers:
        units = getattr(layer, "units", None)
        width = units if isinstance(units, (int, np.integer)) else width
        widths.append(width)
    return widths


def training_bytes(units, n_features, m, batch_size, epochs, n_models=1, itemsize=8, data_copies=1):
    """(history, buffers): about the bytes a fit keeps for every epoch's cost, and what its
    training loop allocates, for `n_models` stacked models of layers with `units`: parameters,
    gradients and optimizer state (five flat vectors), every layer's batch buffers, and
    sample-major copies of the data (`data_copies` data sets of m samples).

        >>> training_bytes([12, 6, 1], 2, 400, None, 15000)   # the post's model and fit
        (120000, 315240)
    """
    batch = batch_size or m
    sizes = [n_features, *units]
    n_params = sum(n * (fan_in + 1) for fan_in, n in zip(sizes, sizes[1:]))
    # Per layer: its output with a ones row, z, dL/dz and the loss's scratch.
    per_batch = batch * (n_features + 1 + 4 * sum(n + 1 for n in units))
    data = 2 * data_copies * m * (n_features + units[-1])
    return epochs * n_models * 8, (n_models * (5 * n_params + per_batch) + data) * itemsize


def check_dtype(dtype):
    """A model's dtype: float32 or float64, given as a name, a type or a np.dtype."""
    try:
        resolved = np.dtype(dtype) if dtype is not None else None
    except (TypeError, ValueError):
        resolved = None
    if resolved not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def _check_representable(number, layer, dtype):
    """ValueError if a freshly drawn layer (numbered from 1) holds inf or nan: a scale its dtype
    cannot hold, or an initializer that returned nan."""
    for name, value in layer.params.items():
        if not np.all(np.isfinite(value)):
            drew = (
                f"layer {number}'s initializer {getattr(layer, 'initializer', None)!r} drew {name}"
            )
            if np.isnan(value).any():
                raise ValueError(f"{drew} that hold nan; expected finite numbers")
            largest = np.finfo(dtype).max
            wider = " or dtype='float64'" if dtype != np.float64 else ""
            raise ValueError(
                f"{drew} beyond the largest number of {dtype.name}, {largest:.3g}; expected "
                f"finite numbers: use a smaller scale{wider}"
            )
