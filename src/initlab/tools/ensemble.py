"""Ensemble: K models of one architecture trained at once, stacked on a leading axis.

Each layer of the K models becomes one layer whose parameters have a leading axis of K, e.g. a
Dense weight of shape (K, units, fan_in). The layer code is the same: np.matmul broadcasts over
leading axes, so one product per layer trains all K models, and the loss returns one cost per
model. The models are stacked in groups whose buffers fit in a few MB (16 of the post's models
in float64), so that the buffers stay in the CPU's caches; without callbacks each group trains
all its epochs in a row. Groups change the speed, never the numbers.

What it costs: np.matmul runs a stacked product as one BLAS call per model, and a call costs
1 to 2 µs here whatever its size, so K stacked models save NumPy's per-call overhead of the
elementwise work but not of the products: for the post's model K = 64 take about 37 (float32)
to 54 (float64) times one model's time, against 64 to 72 one by one (benchmarks/README.md).

    >>> from initlab import Dense, NeuralNetwork
    >>> from initlab.blocks.datasets import moons
    >>> from initlab.tools.ensemble import Ensemble
    >>> X, Y = moons(400, noise=0.2, seed=1)
    >>> def post_model(seed):                     # any compiled NeuralNetwork of one architecture
    ...     model = NeuralNetwork(seed=seed)
    ...     model.add(Dense(12, activation="relu", initializer="he"))
    ...     model.add(Dense(6, activation="relu", initializer="he"))
    ...     model.add(Dense(1, activation="sigmoid"))
    ...     model.compile(loss="crossentropy")
    ...     return model
    >>> ens = Ensemble([post_model(seed) for seed in range(8)])
    >>> history = ens.fit(X, Y, epochs=100, learning_rate=0.01)
    >>> history["loss"].shape                      # (epochs, K)
    (100, 8)
    >>> ens.evaluate(X, Y)["accuracy"].shape       # {"accuracy": (K,), "loss": (K,)}
    (8,)
    >>> trained = ens.models[3]                    # the fourth model, with its trained weights

Training the K models at once gives the same numbers, to floating-point rounding, as training
each one alone with the same seed: each model is built exactly as NeuralNetwork builds itself
(its own seed), and with minibatches each model draws its own order from its own seed.

The models stay the reference: every fit and predict copies their current weights into the
stacks first, and fit writes the trained weights (and each model's history and costs) back. So
does fit with each model's optimizer state (momentum, Adam's moments and step count): a model
trained in an ensemble continues alone, or in another ensemble, exactly as if it had been
trained alone all along. During a fit the stacks hold the weights being trained: predict and
evaluate from a callback see them, and the models get them when fit ends (or is interrupted).
"""

import concurrent.futures
import copy
import functools
import threading

import numpy as np

from initlab import checks
from initlab.blocks import optimizers
from initlab.blocks.initializers import Initializer
from initlab.engine import model as model_module
from initlab.engine import training
from initlab.engine.model import NeuralNetwork
from initlab.engine.parameters import pack_parameters


class Ensemble:
    """Trains K compiled NeuralNetworks of one architecture at once.

    Parameters
    ----------
    models : sequence of NeuralNetwork
        Compiled, with the same layer types, sizes and activations, the same loss, optimizer and
        dtype. Initializers, seeds and learning rates may differ (fit trains all at one rate).
        Unbuilt models are built, each from its own seed, when the ensemble first sees data;
        built ones (after LSUV, say) keep their weights.

    Attributes
    ----------
    models : list of NeuralNetwork, trained in place (weights and optimizer state).
    costs : list of (K,) arrays: the costs at epoch 0, every log_every epochs and the last epoch.
    history : {"loss": (epochs, K) array} of the last fit.
    stop_training : set True from a callback to stop after the current epoch.
    """

    def __init__(self, models):
        if isinstance(models, NeuralNetwork) or not isinstance(models, (list, tuple)):
            raise ValueError(
                f"models must be a list of compiled NeuralNetworks, got {type(models).__name__}"
            )
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one NeuralNetwork, got an empty list")
        for k, model in enumerate(models):
            _check_compatible(k, model, models[0])
            for j in range(k):
                if models[j] is model:
                    raise ValueError(
                        f"models[{k}] is the same object as models[{j}]; "
                        f"an ensemble needs K distinct models"
                    )
        _check_own_optimizers(models)
        self.models = models
        self.costs = []
        self.history = None
        self.last_fit_path = None  # "NumPy" or "compiled (initlab.fast.jit)" once fitted
        self.learning_rate = None
        self.stop_training = False
        # Groups of models: (slice of self.models, a NeuralNetwork whose parameters carry a
        # leading axis over that slice), made when the ensemble first sees data.
        self._groups = None
        self._weights_in_stacks = False  # whether this fit's stacks hold the live weights
        self._state_in_stacks = False  # whether the stacks hold the models' optimizer state
        self._state_slots = {}  # stack -> _slots(stack, its models), made on first use

    @property
    def n_models(self):
        return len(self.models)

    # --- training ----------------------------------------------------------------------------
    def fit(
        self,
        X,
        Y,
        epochs=1000,
        learning_rate=None,
        log_every=1000,
        batch_size=None,
        callbacks=(),
        jit_compile="auto",
    ):
        """Train all K models at once, continuing from their current weights.

        X : (n_features, m), shared by every model, or (K, n_features, m), one data set each.
        Y : (n_outputs, m) or (K, n_outputs, m), likewise.
        learning_rate : None keeps the models' own rate, which must then be one rate for all K;
            either way every model's optimizer keeps the rate used, as after NeuralNetwork.fit.
        callbacks : objects with any of on_train_begin(ensemble), on_epoch_end(ensemble, epoch,
            costs) with costs a (K,) array, on_train_end(ensemble).
        jit_compile : "auto", True or False, as for NeuralNetwork.fit: True runs each step as one
            compiled kernel (initlab.fast.jit; needs Numba), equal to the NumPy path to
            rounding; "auto" (the default) does so where Numba is installed and the kernel
            covers the models. Compiled and without callbacks, the models are split into one
            group per core (numba.config.NUMBA_NUM_THREADS), each trained in its own thread.
        Returns {"loss": (epochs, K) array}: each model's cost at every epoch.
        """
        callbacks = checks.callbacks(callbacks)
        X, Y, epochs, learning_rate, batch_size, log_every = model_module.check_fit_arguments(
            self.check_data,
            X,
            Y,
            epochs,
            learning_rate,
            batch_size,
            log_every,
            layers=self.models[0].layers,
            n_models=self.n_models,
        )
        jit_compile = model_module.check_jit_compile(jit_compile, self.models[0], X.shape[-2])
        learning_rate = self._check_learning_rate(learning_rate)
        threads = 1
        if jit_compile and not callbacks:
            from initlab.fast import jit

            threads = min(jit.thread_count(), self.n_models)
        # Everything is checked. Until the first epoch has run, a failure (an allocation: the
        # stacks, the training buffers, the history) puts everything back: all or nothing.
        restore = _restorer(self)
        started = []  # holds True once an epoch has run
        try:
            history = self._fit(
                X,
                Y,
                epochs,
                learning_rate,
                log_every,
                batch_size,
                callbacks,
                jit_compile,
                threads,
                started,
            )
        except BaseException:
            if not started:
                restore()
            raise
        self.history = {"loss": history}
        self.last_fit_path = model_module.training_path(jit_compile)
        for k, model in enumerate(self.models):
            model.history = {"loss": history[:, k].copy()}
            model.costs = [cost[k] for cost in self.costs]
        return self.history

    def _fit(
        self,
        X,
        Y,
        epochs,
        learning_rate,
        log_every,
        batch_size,
        callbacks,
        jit_compile,
        threads,
        started,
    ):
        """fit's work on checked arguments; returns the (epochs, K) history. `started` gets
        True appended when the first epoch begins."""
        m = X.shape[-1]
        K = self.n_models
        # Every allocation that does not wait for the callbacks comes first: the history, then
        # the stacks (the models are built there if they are not).
        history = np.empty((epochs, K))
        groups = self._stacked(X.shape[-2], batch_size or m, jit_compile, threads)
        for _, stack in groups:
            stack.optimizer.learning_rate = learning_rate
        for model in self.models:  # as NeuralNetwork.fit leaves a model: at the rate it trained
            model.optimizer.learning_rate = model.learning_rate = learning_rate
        self.learning_rate = learning_rate

        def run_epoch_of(part, stack):
            # Each model draws its minibatch order from its own seed, as it does alone.
            run_epoch = stack.training_loop(
                _part(X, part, K),
                _part(Y, part, K),
                batch_size,
                shuffle=True,
                rngs=[model.shuffle_generator() for model in self.models[part]],
                jit_compile=jit_compile,
            ).run_epoch

            return training.before_each(run_epoch, lambda: started.append(True))

        try:
            if callbacks:
                # The callbacks see all K costs every epoch, so the groups take turns each epoch.
                def make_run_epoch():  # after on_train_begin, which may change the weights
                    self._sync_to_groups()
                    self._gather_optimizer_state()
                    runs = [run_epoch_of(part, stack) for part, stack in groups]
                    return lambda: np.concatenate([run() for run in runs])

                self.costs = []
                history = training.run_epochs(
                    make_run_epoch,
                    epochs,
                    log_every,
                    self,
                    self.costs,
                    callbacks,
                    cost_shape=(K,),
                    history=history,
                )
            else:
                # Nothing looks between epochs: each group trains all its epochs in a row,
                # while its buffers stay in the CPU's caches.
                self._sync_to_groups()
                self._gather_optimizer_state()
                group_costs = [[] for _ in groups]
                stop = threading.Event()  # set when another group failed or fit was interrupted

                def unless_stopped():
                    if stop.is_set():
                        raise _Stopped

                def bound_run_epoch(index):
                    part, stack = groups[index]
                    return training.before_each(run_epoch_of(part, stack), unless_stopped)

                def train(index, make_run_epoch):
                    part = groups[index][0]
                    return training.run_epochs(
                        make_run_epoch,
                        epochs,
                        log_every,
                        self,
                        group_costs[index],
                        cost_shape=(part.stop - part.start,),
                        history=history[:, part],
                    )

                # Each group writes its columns of the history.
                if threads > 1:
                    # The compiled kernel releases the GIL: one group per core, side by side.
                    # Their steps are bound here, in the calling thread, because binding may
                    # compile a kernel: Ctrl-C reaches this thread at once, while a group's
                    # thread would see the stop only once its compilation had ended.
                    run_epochs = [bound_run_epoch(index) for index in range(len(groups))]
                    _in_threads(
                        lambda index: train(index, lambda: run_epochs[index]), len(groups), stop
                    )
                else:
                    # One group at a time, each bound when its turn comes: only one holds its
                    # training buffers (NumPy's groups are many, each sized to the CPU's caches).
                    for index in range(len(groups)):
                        train(index, functools.partial(bound_run_epoch, index))
                self.costs = [np.concatenate(costs) for costs in zip(*group_costs, strict=True)]
        finally:
            self._write_back()
            self._write_back_optimizer_state()
        return history

    # --- inference ---------------------------------------------------------------------------
    def predict(self, X):
        """Every model's output layer values: (K, n_outputs, m) for X (n_features, m)."""
        X = self.check_features(X)
        return self.output(X, activate=True)

    def evaluate(self, X, Y):
        """{"accuracy": (K,) percent correct, "loss": (K,) mean cost}, as NeuralNetwork.evaluate
        reports them for each model."""
        X, Y = self.check_data(X, Y)
        output = self.output(X)  # first: it makes the groups
        cost, accuracy = model_module.score_output(self._groups[0][1], Y, output)
        result = {}
        if accuracy is not None:
            result["accuracy"] = _per_model(accuracy, self.n_models)
        result["loss"] = _per_model(cost, self.n_models)
        return result

    # --- stacking ----------------------------------------------------------------------------
    def output(self, X, activate=False):
        """(K, n_outputs, m): the output layer of every model, logits where the loss fuses them."""
        groups = self._stacked(X.shape[-2])
        if not self._weights_in_stacks:
            # Inside fit (from a callback) the stacks hold the weights being trained, and the
            # models get them only at the end: copying the models in would undo the training.
            self._copy_to_groups()
        outputs = []
        for part, stack in groups:
            output = stack.output(_part(X, part, self.n_models))
            outputs.append(stack.predict_from_output(output) if activate else output)
        return np.concatenate(outputs)

    def _stacked(self, n_features, m=None, jit_compile=False, threads=1):
        """The groups of stacked models, made (and the models built) on first use.

        For NumPy their size suits batches of m samples: the first fit's; the post's 400 if
        predict or evaluate come first. The compiled kernel works one model at a time, so it
        takes one group per thread. Groups set the speed, never the numbers: the models hold
        the weights and optimizer state between fits, so the groups may be made again.
        """
        for model in self.models:
            if not model.built:
                model.build(n_features)
        if self._groups is not None and jit_compile and len(self._groups) != threads:
            self._groups, self._state_slots = None, {}
        if self._groups is None:
            size = _group_size(self.models[0], m or 400)
            count = threads if jit_compile else -(-self.n_models // size)
            bounds = np.linspace(0, self.n_models, count + 1).round().astype(int)
            parts = [
                slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
            ]
            self._groups = [(part, _stack_models(self.models[part])) for part in parts]
        return self._groups

    def _sync_to_groups(self):
        """Copy every model's current weights into the stacks, as fit begins training.

        From here until _write_back the stacks hold the live weights.
        """
        self._copy_to_groups()
        self._weights_in_stacks = True

    def _copy_to_groups(self):
        """Copy every model's current weights into the stacks: the models are the reference."""
        for part, stack in self._groups:
            models = self.models[part]
            for i, layer in enumerate(stack.layers):
                for name, value in layer.params.items():
                    value[...] = np.stack([model.layers[i].params[name] for model in models])

    def _write_back(self):
        """Copy the stacks' weights back into the models.

        Only after _sync_to_groups in the same fit: a fit that failed before it (in a callback's
        on_train_begin, say) must not overwrite the models with stale stacks.
        """
        if not self._weights_in_stacks:
            return
        self._weights_in_stacks = False
        for part, stack in self._groups:
            for i, layer in enumerate(stack.layers):
                for name, value in layer.params.items():
                    for k, model in enumerate(self.models[part]):
                        model.layers[i].params[name][...] = value[k]

    # --- optimizer state: the models are the reference ---------------------------------------
    def _gather_optimizer_state(self):
        """Copy every model's optimizer state into its stack's optimizer, as fit begins.

        A model that has none yet (never trained, or reset) starts from zeros, as it would alone.
        """
        for part, stack in self._groups:
            models = self.models[part]
            if stack.optimizer.n_moments == 0:
                continue  # plain SGD carries nothing from one step to the next
            if isinstance(stack.optimizer, optimizers.Adam) and not isinstance(
                stack.optimizer, _StackedAdam
            ):
                stack.optimizer = _StackedAdam(stack.optimizer.get_config())
            in_stack, own = self._slots_of(stack, models)
            owns = [model.optimizer.moments(model.parameters) for model in models]
            for i, moment in enumerate(stack.optimizer.moments(stack.parameters)):
                moment[in_stack] = np.take_along_axis(np.stack([o[i] for o in owns]), own, axis=1)
            if isinstance(stack.optimizer, _StackedAdam):
                # Read after moments(), which gives a model without state a fresh count (0).
                stack.optimizer.set_step_counts(
                    [model.optimizer.iterations for model in models], in_stack
                )
        self._state_in_stacks = True

    def _write_back_optimizer_state(self):
        """Copy each model's part of the stacks' optimizer state back into its own optimizer.

        Only after _gather_optimizer_state in the same fit: a fit that failed before it (in a
        callback's on_train_begin, say) must not overwrite the models' state with stale stacks.
        """
        if not self._state_in_stacks:
            return
        self._state_in_stacks = False
        for part, stack in self._groups:
            models = self.models[part]
            if stack.optimizer.n_moments == 0:
                continue
            in_stack, own = self._slots_of(stack, models)
            for i, moment in enumerate(stack.optimizer.moments(stack.parameters)):
                values = moment[in_stack]
                for k, model in enumerate(models):
                    model.optimizer.moments(model.parameters)[i][own[k]] = values[k]
            if isinstance(stack.optimizer, _StackedAdam):
                for model, count in zip(models, stack.optimizer.step_counts(), strict=True):
                    model.optimizer.iterations = count

    def _slots_of(self, stack, models):
        # A layout never changes once the models are built (layers can no longer be added, and
        # packing again keeps the order), so it is worked out once per stack.
        if stack not in self._state_slots:
            self._state_slots[stack] = _slots(stack, models)
        return self._state_slots[stack]

    # --- checks ------------------------------------------------------------------------------
    def check_features(self, X):
        reference = self.models[0]
        X = _as_stacked_data("X", X, reference.dtype, self.n_models, "n_features")
        built = [model.layers[0].fan_in for model in self.models if model.layers[0].fan_in]
        fan_in = built[0] if built else None
        model_module.check_feature_count(X, fan_in, "the models were")
        return X

    def _check_learning_rate(self, learning_rate):
        """The rate fit trains at: learning_rate, else the models' one rate."""
        if learning_rate is not None:
            return learning_rate
        # A model fitted alone at another rate still has one architecture; which rate the
        # ensemble trains at is then the user's choice, never a silent pick of models[0]'s.
        rate = self.models[0].optimizer.learning_rate
        for k, model in enumerate(self.models):
            if model.optimizer.learning_rate != rate:
                raise ValueError(
                    f"learning_rate is None but the models' rates differ: models[{k}] has "
                    f"{model.optimizer.learning_rate!r}, models[0] has {rate!r}; pass "
                    f"learning_rate= to fit to train all {self.n_models} models at one rate"
                )
        return rate

    def check_data(self, X, Y):
        X = self.check_features(X)
        reference = self.models[0]
        Y = _as_stacked_data("Y", Y, reference.dtype, self.n_models, "n_outputs")
        if Y.shape[-1] != X.shape[-1]:
            raise ValueError(
                f"Y must have as many samples (columns) as X: X has {X.shape[-1]}, Y has shape "
                f"{Y.shape}"
            )
        n_outputs = reference.layers[-1].units
        Y = reference.loss.prepare_targets(Y, n_outputs)
        if Y.shape[-2] != n_outputs:
            raise ValueError(
                f"Y must have {n_outputs} rows, one per output unit, got shape {Y.shape}"
            )
        return X, Y

    def __repr__(self):
        return f"Ensemble(K={self.n_models}, models[0]={self.models[0]!r})"


# Stacked buffers beyond a few MB fall out of the CPU's caches. Measured here, groups of 15 to 30
# of the post's models ran 3% to 25% faster than one stack of 64 (the gain moves with the
# machine's load); much smaller groups are slower, as each group costs its own NumPy calls.
GROUP_BYTES = 4 * 2**20


class _Stopped(Exception):
    """Raised in a group's thread to end its training early (see _in_threads)."""


def _in_threads(train, count, stop):
    """[train(0), ..., train(count - 1)], each in its own thread.

    If one raises, or the caller is interrupted (Ctrl-C), `stop` is set and the others end after
    their current epoch, so the error arrives at once instead of after every epoch has run; the
    caller's `finally` then writes back the weights each group reached.
    """
    pool = concurrent.futures.ThreadPoolExecutor(count)
    try:
        futures = [pool.submit(train, index) for index in range(count)]
        # Returns as soon as one raises. It wakes every 0.1 s because Ctrl-C may be delivered
        # to a worker thread, and Python runs the handler only when the main thread runs.
        while True:
            done, running = concurrent.futures.wait(
                futures, timeout=0.1, return_when=concurrent.futures.FIRST_EXCEPTION
            )
            if not running or any(future.exception() is not None for future in done):
                break
        errors = [future.exception() for future in futures if future.done()]
        error = next((e for e in errors if e is not None and not isinstance(e, _Stopped)), None)
        if error is not None:
            raise error
        return [future.result() for future in futures]
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)


def _group_size(model, m):
    """How many models to stack in one group, for batches of m samples."""
    # Per model and sample, a layer keeps about four arrays of `units` numbers (z, a, dL/da and
    # scratch); the loss a few more.
    numbers = 4 * sum(getattr(layer, "units", 1) or 1 for layer in model.layers) + 8
    return max(1, GROUP_BYTES // (numbers * m * model.dtype.itemsize))


def _part(data, part, n_models):
    """The slice of stacked data (K, rows, m) for a group; shared data (rows, m) as it is."""
    return data[part] if data.ndim == 3 else data


def _stack_models(models):
    """One NeuralNetwork whose layers hold the K models' parameters stacked on a leading axis."""
    reference = models[0]
    stack = NeuralNetwork(dtype=reference.dtype)
    for i, layer in enumerate(reference.layers):
        stacked = copy.deepcopy(layer)
        stacked.release_buffers()  # the model's last pass, of another shape than the stack's
        stacked.params = {
            name: np.stack([model.layers[i].params[name] for model in models])
            for name in layer.params
        }
        stacked.grads = {name: np.zeros_like(value) for name, value in stacked.params.items()}
        stack.add(stacked)
    # A fresh optimizer of the same settings: its state (momentum, moments) is per element, so
    # on the stacked vector it is exactly K independent states (fit fills them from the models:
    # _gather_optimizer_state).
    stack.compile(
        loss=copy.deepcopy(reference.loss),
        optimizer=optimizers.get(reference.optimizer.get_config()),
    )
    stack.parameters, stack.gradients = pack_parameters(stack.layers)
    return stack


# --- optimizer state ---------------------------------------------------------------------------
# An optimizer's moments hold one number per parameter, laid out as its flat parameter vector. The
# stack's vector is layer-major with K models inside each layer ((K, units, fan_in + 1) for a
# Dense layer), a model's own vector is its layers in a row, so a model's moments are not one
# slice of the stack's: they are mapped as the weights are, parameter array by parameter array.


def _slots(stack, models):
    """(in_stack, own), two (K, n) int arrays: for each model of the stack, where each of its n
    parameters lies in the stack's flat vector and in its own, number for number."""
    for model in models:
        if not training.is_packed(model.layers, model.parameters, model.gradients):
            # A layer's arrays were rebound: pack them again, as the model's own fit would (in
            # the same order, so its optimizer state still lines up).
            model.parameters, model.gradients = pack_parameters(model.layers)
    names = [(i, name) for i, layer in enumerate(stack.layers) for name in layer.params]
    in_stack = _positions(stack.parameters, [stack.layers[i].params[name] for i, name in names])
    in_stack = np.concatenate([view.reshape(len(models), -1) for view in in_stack], axis=1)
    own = np.stack(
        [
            np.concatenate(
                [
                    view.ravel()
                    for view in _positions(
                        model.parameters, [model.layers[i].params[name] for i, name in names]
                    )
                ]
            )
            for model in models
        ]
    )
    return in_stack, own


def _positions(params, views):
    """For views into the flat `params`, arrays of the same shapes: each number's position."""
    # Integers of the parameters' size, so that the views' strides (in bytes) apply to them.
    index = np.arange(params.size, dtype=f"i{params.itemsize}")
    start = params.__array_interface__["data"][0]
    return [
        np.ndarray(
            view.shape,
            index.dtype,
            buffer=index,
            strides=view.strides,
            offset=view.__array_interface__["data"][0] - start,
        )
        for view in views
    ]


class _StackedAdam(optimizers.Adam):
    """Adam over K stacked models, each with its own step count t in the bias corrections.

    Counts differ when models that trained apart meet in one stack: a fresh model beside trained
    ones, models fit alone for different lengths, or a new ensemble (its groups cut elsewhere)
    after one was interrupted between groups. A user expects each model to train as it would
    alone, which is the ensemble's promise, so each keeps its own t rather than the fit raising:
    refusing would make Adam the one optimizer that cannot mix fresh and trained models. Equal
    counts (the common case) take Adam's own scalar step, unchanged.
    """

    def __init__(self, config):
        super().__init__(**{key: value for key, value in config.items() if key != "name"})
        self._offsets = [0]  # model k's count is iterations + _offsets[k]
        self._per_model = False  # whether the counts differ

    def set_step_counts(self, counts, in_stack):
        """Give the stack's model k the step count counts[k]; in_stack from _slots."""
        self.iterations = counts[0]
        self._offsets = [count - counts[0] for count in counts]
        self._per_model = any(self._offsets)
        if self._per_model:
            # The model each number of the flat vector belongs to, and room for the corrections.
            self._model_of = np.empty(in_stack.size, np.intp)
            self._model_of[in_stack] = np.arange(len(counts))[:, None]
            self._step_size = np.empty(in_stack.size, self._state[0].dtype)
            self._bias_2 = np.empty_like(self._step_size)

    def step_counts(self):
        return [self.iterations + offset for offset in self._offsets]

    def _step(self, params, grads, m, v, scratch):
        if not self._per_model:
            return super()._step(params, grads, m, v, scratch)
        self.iterations += 1
        counts = [self.iterations + offset for offset in self._offsets]
        # Each model's corrections in Python floats, as Adam computes them alone, then spread
        # over its parameters: the same numbers, bit for bit.
        step_size = [self.learning_rate / (1 - self.beta_1**t) for t in counts]
        bias_2 = [1 - self.beta_2**t for t in counts]
        np.take(np.array(step_size, params.dtype), self._model_of, out=self._step_size)
        np.take(np.array(bias_2, params.dtype), self._model_of, out=self._bias_2)
        self._update(params, grads, m, v, scratch, self._step_size, self._bias_2)


def _check_own_optimizers(models):
    """ValueError if two models share a stateful optimizer object: it can hold one model's state
    (momentum, moments), and fit writes each model's state back into its own optimizer."""
    for k, model in enumerate(models):
        if model.optimizer.n_moments == 0:
            continue  # plain SGD keeps nothing between steps: sharing it is harmless
        for j in range(k):
            if models[j].optimizer is model.optimizer:
                raise ValueError(
                    f"models[{k}] shares its optimizer object with models[{j}] "
                    f"({model.optimizer!r}); an optimizer holds one model's state: compile each "
                    f"model with its own, e.g. optimizer={model.optimizer.get_config()!r}"
                )


def _check_compatible(k, model, reference):
    """Raise ValueError naming models[k] and what differs from models[0]."""
    where = f"models[{k}]"
    if not isinstance(model, NeuralNetwork):
        raise ValueError(f"{where} must be a NeuralNetwork, got {type(model).__name__}")
    if model.loss is None or not model.layers:
        raise ValueError(
            f"{where} is not compiled (or has no layers): build each model with "
            f"add(...) and compile(...) before making an Ensemble"
        )

    def differ(what, ours, theirs):
        raise ValueError(
            f"{where} differs from models[0]: {what} is {ours!r}, "
            f"models[0] has {theirs!r}; an ensemble needs one architecture"
        )

    if model.dtype != reference.dtype:
        differ("dtype", model.dtype.name, reference.dtype.name)
    if len(model.layers) != len(reference.layers):
        differ("the number of layers", len(model.layers), len(reference.layers))
    # Layers are numbered from 1, as summary() and the diagnostics number them.
    for i, (layer, ref) in enumerate(zip(model.layers, reference.layers, strict=True), start=1):
        if type(layer) is not type(ref):
            differ(f"layer {i}'s type", type(layer).__name__, type(ref).__name__)
        for attribute in ("units", "fan_in"):
            ours, theirs = getattr(layer, attribute, None), getattr(ref, attribute, None)
            if ours != theirs and ours is not None and theirs is not None:
                differ(f"layer {i}'s {attribute}", ours, theirs)
        activation, ref_activation = (
            getattr(layer, "activation", None),
            getattr(ref, "activation", None),
        )
        if activation is not None and activation.get_config() != ref_activation.get_config():
            differ(f"layer {i}'s activation", activation.get_config(), ref_activation.get_config())
    if model.loss.get_config() != reference.loss.get_config():
        differ("the loss", model.loss.get_config(), reference.loss.get_config())
    # The learning rate is fit's to set (one for all K), not part of the architecture.
    ours, theirs = (_without_rate(net.optimizer.get_config()) for net in (model, reference))
    if ours != theirs:
        differ("the optimizer", ours, theirs)


def _without_rate(config):
    return {key: value for key, value in config.items() if key != "learning_rate"}


def _as_stacked_data(name, value, dtype, n_models, rows):
    """A 2-D array shared by all models, or a 3-D one with one slice per model."""
    ndim = np.ndim(value)
    if ndim not in (2, 3):
        raise ValueError(
            f"{name} must be ({rows}, m), shared by every model, or (K, {rows}, m) with "
            f"K = {n_models}, one slice per model; got shape {np.shape(value)}"
        )
    array = model_module.as_data(name, value, dtype, ndim=ndim)
    if ndim == 3 and array.shape[0] != n_models:
        raise ValueError(
            f"{name} of shape {array.shape} holds {array.shape[0]} data sets, but the ensemble "
            f"has K = {n_models} models; pass ({rows}, m) to share one data set"
        )
    return array


def _per_model(value, n_models):
    return np.broadcast_to(np.asarray(value, dtype=float), (n_models,)).copy()


def _restorer(ensemble):
    """A function that puts back, as they are now, the attributes of the ensemble, its models,
    their optimizers and layers, and the layers' initializers (which building changes): what a
    fit changes before its first epoch. Arrays are restored by reference: up to the first epoch
    a fit writes into them only the values they already hold."""
    objects = [ensemble]
    for model in ensemble.models:
        objects += [model, model.optimizer]
        for layer in model.layers:
            objects.append(layer)
            objects += [v for v in vars(layer).values() if isinstance(v, Initializer)]
    saved = [(obj, dict(vars(obj))) for obj in objects]

    def restore():
        for obj, attributes in saved:
            vars(obj).clear()
            vars(obj).update(attributes)

    return restore
