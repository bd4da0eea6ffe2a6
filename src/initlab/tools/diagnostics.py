"""Per-layer signal diagnostics: why an initialisation fails, measured layer by layer.

One diagnostic pass runs the model's own layers forward on a batch, the loss, and the layers
backward, exactly as a training step does, but never calls the optimizer: the weights, the
optimizer's state and the model's gradient vector are as they were afterwards. For each layer it
keeps (copies: the layers reuse their buffers from pass to pass)

    z = W a_prev + b          pre-activation            (units, m)
    a = f(z)                  activation                (units, m)
    dL/da, dL/dz, dL/dW       back-propagated gradients (units, m), (units, m), (units, fan_in)

and summarises them as plain records (`LayerRecord`): mean and standard deviation over all entries
(units x samples, pooled as Glorot & Bengio pool a layer), the std of the gradients, and

- dead_fraction (activations that define `dead`: relu, leaky_relu): the fraction of units in
  their dead region (relu: a = 0; leaky_relu: z <= 0) for every sample of the batch. A dead relu
  unit passes no gradient back for this batch, so its weights do not move; a leaky one passes
  only its small slope. zero_fraction: the fraction of all (unit, sample) values in that region.
- saturated_fraction (activations with asymptotes: tanh, sigmoid, softplus, elu, selu): the
  fraction of units saturated for every sample, and
  saturated_value_fraction, the fraction of all (unit, sample) activations that are saturated.
  An activation is saturated when it lies within 0.01 of an asymptote: |tanh(z)| > 0.99, or
  sigmoid(z) outside [0.01, 0.99]. Glorot & Bengio (2010, figures 2-4) read saturation off
  activations pinned at the asymptotes (sigmoid top layer at 0, tanh layers at +-1) without a
  number; 0.01 is chosen because there the local slope f'(z) is below 0.02 (tanh, 2% of its
  maximum 1) or below 0.0099 (sigmoid, 4% of its maximum 0.25): the unit passes back almost none
  of the gradient it receives. That is |z| > 2.65 for tanh and |z| > 4.60 for sigmoid.

    >>> import numpy as np
    >>> from initlab import Dense, NeuralNetwork
    >>> model = NeuralNetwork(seed=0)
    >>> for _ in range(3):
    ...     model.add(Dense(units=16, activation="relu", initializer="he"))
    >>> model.add(Dense(units=1, activation="sigmoid", initializer="he"))
    >>> model.compile(loss="crossentropy")
    >>> X = np.random.default_rng(0).normal(size=(8, 100))
    >>> Y = (X[:1] > 0).astype(float)
    >>> records = measure(model, X, Y)
    >>> [r.layer for r in records], records[0].activation
    ([1, 2, 3, 4], 'relu')

During training, `SignalRecorder(X, Y, epochs=[0, 10, 100])` passed to fit(callbacks=[...])
records the same per-layer statistics after the chosen epochs.

References: X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward
neural networks", AISTATS 2010; K. He et al., "Delving deep into rectifiers", ICCV 2015.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from initlab import checks
from initlab.blocks.layers import Dense
from initlab.engine.model import INFERENCE_SAMPLES

# An activation within this distance of one of its asymptotes (Activation.asymptotes) is
# saturated (see the module docstring).
SATURATION_MARGIN = 0.01


@dataclass(frozen=True)
class LayerRecord:
    """One layer's signal statistics from one diagnostic pass.

    layer counts from 1 (the first layer after the input), as the papers do. Statistics that do
    not apply are None: dead fractions for non-rectifiers, saturation for non-saturating
    activations, and activation_grad_std for an output layer whose loss takes its logits (the
    fused softmax/sigmoid cross-entropy never forms dL/dp). epoch is None at initialisation, else
    the fit epoch (counted from 0) after whose update the pass ran.
    """

    layer: int
    units: int
    activation: str
    preactivation_mean: float
    preactivation_std: float
    activation_mean: float
    activation_std: float
    activation_grad_std: float | None
    preactivation_grad_std: float
    weight_std: float
    weight_grad_std: float
    dead_fraction: float | None
    zero_fraction: float | None
    saturated_fraction: float | None
    saturated_value_fraction: float | None
    epoch: int | None = None

    def as_dict(self):
        """The record as a plain dict (JSON-ready apart from non-finite floats)."""
        return dataclasses.asdict(self)


FIELDS = tuple(field.name for field in dataclasses.fields(LayerRecord))


def layer_signals(model, X, Y):
    """Run one forward and backward pass on (X, Y) and return every layer's signals, copied.

    Returns a list with one dict per layer: "preactivation" z, "activation" a (for an output
    layer that emits logits, the probabilities the model would predict), "activation_grad" dL/da
    (None when the loss takes the logits), "preactivation_grad" dL/dz and "weight_grad" dL/dW.
    Shapes: X (n_features, m); z, a and their gradients (units, m); dL/dW (units, fan_in).
    An unbuilt model is built first (its initial weights are drawn), as predict does.
    """
    X, Y = _check_model_and_data(model, X, Y)
    saved_grads = model.gradients.copy()
    try:
        return _forward_backward(model, X, Y)
    finally:
        # The backward pass wrote into the model's gradient vector: put back what was there.
        model.gradients[...] = saved_grads
        if X.shape[-1] > INFERENCE_SAMPLES:
            # Buffers of X's size, larger than any pass of predict: the signals are copies.
            model.release_buffers()


def _forward_backward(model, X, Y):
    signals = []
    a = X
    for layer in model.layers:
        a = layer.forward(a)
        z = layer.cache[1]
        activation = model.predict_from_output(a) if layer.emits_logits else a
        signals.append({"preactivation": z.copy(), "activation": np.array(activation, copy=True)})
    with np.errstate(over="ignore", invalid="ignore"):
        _, grad = model.loss_and_gradient(Y, a)
    for index in range(len(model.layers) - 1, -1, -1):
        layer, signal = model.layers[index], signals[index]
        if layer.emits_logits:
            signal["activation_grad"] = None
            signal["preactivation_grad"] = np.array(grad, copy=True)
        else:
            signal["activation_grad"] = np.array(grad, copy=True)
            # Computed apart from the layer, which may overwrite `grad` with dL/dz in place.
            signal["preactivation_grad"] = layer.activation.backward(
                signal["preactivation"], signal["activation"], signal["activation_grad"].copy()
            )
        with np.errstate(over="ignore", invalid="ignore"):
            grad = layer.backward(grad, need_input_grad=index > 0)
        signal["weight_grad"] = layer.grads["weights"].copy()
    return signals


def measure(model, X, Y, epoch=None):
    """Per-layer statistics of one diagnostic pass on (X, Y): a list of `LayerRecord`.

    Nothing is trained: weights, optimizer state and gradient vector are left bit-identical.
    X is (n_features, m) and Y (n_outputs, m), as for fit. See the module docstring.
    """
    return summarise(model, layer_signals(model, X, Y), epoch=epoch)


def summarise(model, signals, epoch=None):
    """The `LayerRecord`s of signals that `layer_signals(model, ...)` returned."""
    pairs = zip(model.layers, signals, strict=True)
    return [
        _record(position, layer, signal, epoch)
        for position, (layer, signal) in enumerate(pairs, start=1)
    ]


def _record(position, layer, signal, epoch):
    activation = layer.activation
    z, a = signal["preactivation"], signal["activation"]
    dead = zero = saturated = saturated_values = None
    # What counts as dead or saturated is the activation's own fact (activations.py).
    off = None if layer.emits_logits else activation.is_dead(z, a)
    if off is not None:
        dead, zero = _fraction(off.all(axis=-1)), _fraction(off)
    if activation.asymptotes:
        pinned = np.zeros(a.shape, bool)
        for asymptote in activation.asymptotes:
            pinned |= np.abs(a - asymptote) < SATURATION_MARGIN
        saturated, saturated_values = _fraction(pinned.all(axis=-1)), _fraction(pinned)
    return LayerRecord(
        layer=position,
        units=layer.units,
        activation=activation.name,
        preactivation_mean=_mean(z),
        preactivation_std=_std(z),
        activation_mean=_mean(a),
        activation_std=_std(a),
        activation_grad_std=None
        if signal["activation_grad"] is None
        else _std(signal["activation_grad"]),
        preactivation_grad_std=_std(signal["preactivation_grad"]),
        weight_std=_std(layer.params["weights"]),
        weight_grad_std=_std(signal["weight_grad"]),
        dead_fraction=dead,
        zero_fraction=zero,
        saturated_fraction=saturated,
        saturated_value_fraction=saturated_values,
        epoch=epoch,
    )


def _mean(values):
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean(values, dtype=np.float64))


def _std(values):
    # Population std (ddof=0) over every entry; overflow to inf is a finding, not an error.
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.std(values, dtype=np.float64))


def _fraction(mask):
    return float(np.count_nonzero(mask) / mask.size)


class SignalRecorder:
    """A fit callback that runs `measure` on a fixed batch after each chosen epoch.

    Parameters
    ----------
    X, Y : arrays (n_features, m) and (n_outputs, m)
        The batch to measure on (a fixed batch, so epochs are comparable).
    epochs : iterable of int >= 0
        fit's epoch indices (from 0, as model.costs counts them) after whose update to measure.
        Epochs that training never reaches are simply not recorded.

    After fit, `records` holds the LayerRecords of every measured epoch, in order, each with its
    `epoch`, and `recorded_epochs` the epochs measured. The passes do not change training: a fit
    with the recorder gives bit-identical weights to one without.

    Example
    -------
    >>> import numpy as np
    >>> from initlab import Dense, NeuralNetwork
    >>> model = NeuralNetwork(seed=0, layers=[Dense(8, "tanh"), Dense(1, "sigmoid")])
    >>> model.compile(loss="crossentropy")
    >>> X = np.random.default_rng(0).normal(size=(2, 50)); Y = (X[:1] > 0) * 1.0
    >>> recorder = SignalRecorder(X, Y, epochs=[0, 4])
    >>> _ = model.fit(X, Y, epochs=5, callbacks=[recorder])
    >>> recorder.recorded_epochs
    [0, 4]
    """

    def __init__(self, X, Y, epochs):
        self.epochs = _check_epochs(epochs)
        self.X, self.Y = X, Y
        self.records = []
        self.recorded_epochs = []

    def on_train_begin(self, model):
        # Bad data fails here, before the first epoch, rather than after it.
        _check_model_and_data(model, self.X, self.Y)

    def on_epoch_end(self, model, epoch, cost):
        if epoch in self.epochs:
            self.records.extend(measure(model, self.X, self.Y, epoch=epoch))
            self.recorded_epochs.append(epoch)

    def __repr__(self):
        return f"SignalRecorder(epochs={sorted(self.epochs)!r})"


def _check_epochs(epochs):
    try:
        values = [] if isinstance(epochs, str) else list(epochs)
    except TypeError:
        values = []
    if not values:
        raise ValueError(f"epochs must be a non-empty list of integers >= 0, got {epochs!r}")
    return frozenset(checks.integer(f"epochs[{i}]", e, minimum=0) for i, e in enumerate(values))


def _check_model_and_data(model, X, Y):
    model.check_compiled()
    for layer in model.layers:
        if not isinstance(layer, Dense):
            raise ValueError(f"diagnostics measure Dense layers only, got {layer!r}")
    X, Y = model.check_data(X, Y)
    if not model.built:
        model.build(X.shape[-2])
    if any(layer.params["weights"].ndim != 2 for layer in model.layers):
        raise ValueError(
            "diagnostics measure a single model; this one stacks an ensemble of "
            "models (weights with a leading axis): measure one member at a time"
        )
    return X, Y
