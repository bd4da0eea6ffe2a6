"""Ensemble: K models of one architecture trained at once, stacked on a leading axis.

Each layer of the K models becomes one layer whose parameters have a leading axis of K, e.g. a
Dense weight of shape (K, units, fan_in). The layer code is the same: np.matmul broadcasts over
leading axes, so one product per layer trains all K models, and the loss returns one cost per
model.

    from initlab.ensemble import Ensemble
    models = [post_model(init, seed=s) for s in range(64)]   # compiled NeuralNetworks
    ens = Ensemble(models)
    history = ens.fit(X, Y, epochs=15000, learning_rate=0.01)
    history["loss"]        # (epochs, K)
    ens.evaluate(X, Y)     # {"accuracy": (K,), "loss": (K,)}
    ens.models[3]          # the fourth model, holding its trained weights

Training the K models at once gives the same numbers, to floating-point rounding, as training
each one alone with the same seed: each model is built exactly as NeuralNetwork builds itself
(its own seed), and with minibatches each model draws its own order from its own seed.

The models stay the reference: every fit and predict copies their current weights into the stack
first, and fit writes the trained weights (and each model's history and costs) back. Optimizer
state (momentum, Adam's moments) lives in the ensemble's own optimizer, from one fit to the next.
"""

import copy

import numpy as np

from initlab import model as model_module
from initlab import optimizers
from initlab.model import NeuralNetwork


class Ensemble:
    """Trains K compiled NeuralNetworks of one architecture at once.

    Parameters
    ----------
    models : sequence of NeuralNetwork
        Compiled, with the same layer types, sizes and activations, the same loss, optimizer and
        dtype. Initializers and seeds may differ. Unbuilt models are built, each from its own
        seed, when the ensemble first sees data; built ones (after LSUV, say) keep their weights.

    Attributes
    ----------
    models : list of NeuralNetwork, trained in place.
    costs : list of (K,) arrays: the costs at epoch 0, every log_every epochs and the last epoch.
    history : {"loss": (epochs, K) array} of the last fit.
    stop_training : set True from a callback to stop after the current epoch.
    """

    def __init__(self, models):
        if isinstance(models, NeuralNetwork) or not isinstance(models, (list, tuple)):
            raise ValueError(
                f"models must be a list of compiled NeuralNetworks, got {type(models).__name__}")
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one NeuralNetwork, got an empty list")
        for k, model in enumerate(models):
            _check_compatible(k, model, models[0])
            for j in range(k):
                if models[j] is model:
                    raise ValueError(f"models[{k}] is the same object as models[{j}]; "
                                     f"an ensemble needs K distinct models")
        self.models = models
        self.costs = []
        self.history = None
        self.learning_rate = None
        self.stop_training = False
        self._stack = None  # one NeuralNetwork whose parameters carry the leading axis K

    @property
    def n_models(self):
        return len(self.models)

    # --- training ----------------------------------------------------------------------------
    def fit(self, X, Y, epochs=1000, learning_rate=None, log_every=1000, batch_size=None,
            callbacks=()):
        """Train all K models at once, continuing from their current weights.

        X : (n_features, m), shared by every model, or (K, n_features, m), one data set each.
        Y : (n_outputs, m) or (K, n_outputs, m), likewise.
        learning_rate : None keeps the optimizer's own rate (0.01 for gradient descent).
        callbacks : objects with any of on_train_begin(ensemble), on_epoch_end(ensemble, epoch,
            costs) with costs a (K,) array, on_train_end(ensemble).
        Returns {"loss": (epochs, K) array}: each model's cost at every epoch.
        """
        epochs = model_module._check_int("epochs", epochs, minimum=1)
        log_every = model_module._check_int("log_every", log_every, minimum=1)
        if learning_rate is not None:
            learning_rate = optimizers._check_rate(learning_rate)
        X, Y = self._check_data(X, Y)
        m = X.shape[-1]
        if batch_size is not None:
            batch_size = min(model_module._check_int("batch_size", batch_size, minimum=1), m)
        # Everything is checked: from here on the models change.
        stack = self._stacked(X.shape[-2])
        if learning_rate is not None:
            stack.optimizer.learning_rate = learning_rate
        self.learning_rate = stack.optimizer.learning_rate
        try:
            history = stack._train(
                X, Y, epochs, batch_size, log_every, shuffle=True, callbacks=callbacks,
                owner=self, rngs=[model._shuffle_rng() for model in self.models],
                cost_shape=(self.n_models,))["loss"]
        finally:
            self._write_back()
        self.costs = stack.costs
        self.history = {"loss": history}
        for k, model in enumerate(self.models):
            model.history = {"loss": history[:, k].copy()}
            model.costs = [cost[k] for cost in self.costs]
            model.learning_rate = self.learning_rate
        return self.history

    # --- inference ---------------------------------------------------------------------------
    def predict(self, X):
        """Every model's output layer values: (K, n_outputs, m) for X (n_features, m)."""
        X = self._check_features(X)
        stack = self._stacked(X.shape[-2])
        return stack._activate(stack._forward(X))

    def evaluate(self, X, Y):
        """{"accuracy": (K,) percent correct, "loss": (K,) mean cost}, as NeuralNetwork.evaluate
        reports them for each model."""
        X, Y = self._check_data(X, Y)
        stack = self._stacked(X.shape[-2])
        output = stack._forward(X)
        last = stack.layers[-1]
        if last.emits_logits:
            cost = stack.loss.from_logits(Y, output)[0]
            probabilities = stack._activate(output)
        else:
            probabilities = output
            cost = stack.loss(Y, output)
        result = {}
        accuracy = model_module.accuracy_percent(Y, probabilities, last.activation.name)
        if accuracy is not None:
            result["accuracy"] = _per_model(accuracy, self.n_models)
        result["loss"] = _per_model(cost, self.n_models)
        return result

    # --- stacking ----------------------------------------------------------------------------
    def _stacked(self, n_features):
        """The stacked model, holding a copy of every model's current weights."""
        for model in self.models:
            if not model.built:
                model.build(n_features)
        if self._stack is None:
            self._stack = _stack_models(self.models)
        else:
            for i, layer in enumerate(self._stack.layers):
                for name, value in layer.params.items():
                    value[...] = np.stack([model.layers[i].params[name] for model in self.models])
        return self._stack

    def _write_back(self):
        for i, layer in enumerate(self._stack.layers):
            for name, value in layer.params.items():
                for k, model in enumerate(self.models):
                    model.layers[i].params[name][...] = value[k]

    # --- checks ------------------------------------------------------------------------------
    def _check_features(self, X):
        reference = self.models[0]
        X = _as_stacked_data("X", X, reference.dtype, self.n_models, "n_features")
        built = [model.layers[0].fan_in for model in self.models if model.layers[0].fan_in]
        fan_in = built[0] if built else None
        if fan_in is not None and X.shape[-2] != fan_in:
            raise ValueError(
                f"X must have {fan_in} features (rows), as the models were built with; got shape "
                f"{X.shape}. Data are laid out as (n_features, m): did you mean X.T?"
            )
        return X

    def _check_data(self, X, Y):
        X = self._check_features(X)
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
            raise ValueError(f"Y must have {n_outputs} rows, one per output unit, got shape "
                             f"{Y.shape}")
        return X, Y

    def __repr__(self):
        return f"Ensemble(K={self.n_models}, models[0]={self.models[0]!r})"


def _stack_models(models):
    """One NeuralNetwork whose layers hold the K models' parameters stacked on a leading axis."""
    reference = models[0]
    stack = NeuralNetwork(dtype=reference.dtype)
    for i, layer in enumerate(reference.layers):
        stacked = copy.deepcopy(layer)
        stacked.cache = None
        stacked.params = {name: np.stack([model.layers[i].params[name] for model in models])
                          for name in layer.params}
        stacked.grads = {name: np.zeros_like(value) for name, value in stacked.params.items()}
        stack.add(stacked)
    # A fresh optimizer of the same settings: its state (momentum, moments) is per element, so
    # on the stacked vector it is exactly K independent states.
    stack.compile(loss=copy.deepcopy(reference.loss),
                  optimizer=optimizers.get(reference.optimizer.get_config()))
    stack._params, stack._grads = model_module.pack_parameters(stack.layers)
    return stack


def _check_compatible(k, model, reference):
    """Raise ValueError naming models[k] and what differs from models[0]."""
    where = f"models[{k}]"
    if not isinstance(model, NeuralNetwork):
        raise ValueError(f"{where} must be a NeuralNetwork, got {type(model).__name__}")
    if model.loss is None or not model.layers:
        raise ValueError(f"{where} is not compiled (or has no layers): build each model with "
                         f"add(...) and compile(...) before making an Ensemble")

    def differ(what, ours, theirs):
        raise ValueError(f"{where} differs from models[0]: {what} is {ours!r}, "
                         f"models[0] has {theirs!r}; an ensemble needs one architecture")

    if model.dtype != reference.dtype:
        differ("dtype", model.dtype.name, reference.dtype.name)
    if len(model.layers) != len(reference.layers):
        differ("the number of layers", len(model.layers), len(reference.layers))
    for i, (layer, ref) in enumerate(zip(model.layers, reference.layers, strict=True)):
        if type(layer) is not type(ref):
            differ(f"layer {i}'s type", type(layer).__name__, type(ref).__name__)
        for attribute in ("units", "fan_in"):
            ours, theirs = getattr(layer, attribute, None), getattr(ref, attribute, None)
            if ours != theirs and ours is not None and theirs is not None:
                differ(f"layer {i}'s {attribute}", ours, theirs)
        activation, ref_activation = getattr(layer, "activation", None), getattr(
            ref, "activation", None)
        if activation is not None and activation.get_config() != ref_activation.get_config():
            differ(f"layer {i}'s activation", activation.get_config(), ref_activation.get_config())
    if model.loss.get_config() != reference.loss.get_config():
        differ("the loss", model.loss.get_config(), reference.loss.get_config())
    if model.optimizer.get_config() != reference.optimizer.get_config():
        differ("the optimizer", model.optimizer.get_config(), reference.optimizer.get_config())


def _as_stacked_data(name, value, dtype, n_models, rows):
    """A 2-D array shared by all models, or a 3-D one with one slice per model."""
    ndim = np.ndim(value)
    if ndim not in (2, 3):
        raise ValueError(
            f"{name} must be ({rows}, m), shared by every model, or (K, {rows}, m) with "
            f"K = {n_models}, one slice per model; got shape {np.shape(value)}"
        )
    array = model_module._as_data(name, value, dtype, ndim=ndim)
    if ndim == 3 and array.shape[0] != n_models:
        raise ValueError(
            f"{name} of shape {array.shape} holds {array.shape[0]} data sets, but the ensemble "
            f"has K = {n_models} models; pass ({rows}, m) to share one data set"
        )
    return array


def _per_model(value, n_models):
    return np.broadcast_to(np.asarray(value, dtype=float), (n_models,)).copy()
