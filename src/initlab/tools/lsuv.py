"""Initialising a built model on data: LSUV, or a re-draw of every layer by scheme name.

LSUV, layer-sequential unit-variance (Mishkin & Matas 2015, "All you need is a good init",
arXiv:1511.06422):
  1. draw every weight matrix orthonormal (initializers' "orthogonal");
  2. layer by layer, from the input up, on one batch X: while |Var(z) - 1| >= tol and fewer than
     max_iter rounds, W <- W / sqrt(Var(z)), where z = W a + b is the layer's pre-activation and
     Var is taken over all its units and samples.

    >>> from initlab import Dense, NeuralNetwork
    >>> from initlab.blocks.datasets import moons
    >>> X, Y = moons(200, noise=0.2, seed=0)
    >>> model = NeuralNetwork(seed=0)
    >>> model.add(Dense(16, activation="relu")); model.add(Dense(1, activation="sigmoid"))
    >>> report = model.initialize(X, method="lsuv")     # one dict per layer
    >>> [round(layer["variance"], 6) for layer in report]
    [1.0, 1.0]

The same `model.initialize(X, method=name)` re-draws every layer with any registered scheme, so a
study can treat "lsuv" as one more scheme name; it reports the variances that scheme gives on X.

Which output is normalised: the pre-activation z, in every layer, the output layer included.
  - z is linear in W, so with zero biases one rescaling gives Var(z) = 1 exactly; the loop only has
    work to do when biases shift z (PyTorch's Linear default bias, a bias_initializer).
  - A sigmoid (or softmax) output lies in (0, 1): its variance is at most 1/4, so asking it to be 1
    would push the weights until the output saturates. Its logits are what the loss sees (the
    model fuses sigmoid and cross-entropy), and unit-variance logits are what LSUV is after.
  - Hidden layers follow the same rule for consistency, as LSUV-pytorch does when it hooks the
    output of each Linear/Conv module; the nonlinearity's effect on the next layer's input is then
    absorbed by that layer's own rescaling.
"""

import math
import warnings

import numpy as np

from initlab import checks
from initlab.blocks import initializers
from initlab.engine.model import pack_parameters

# The row the scheme table (`initlab inits`, README) shows for LSUV.
FORMULA = "orthogonal; per layer, on a batch, W ← W / √Var(z) until |Var(z) − 1| < tol"


def initialize(model, X, method, rngs, **options):
    """Re-draw every layer of a built `model` by `method`, then report each layer's Var(z) on X.

    method : "lsuv" (options tol=0.1, max_iter=10) or any registered scheme name (options are the
        scheme's parameters, e.g. mode="fan_out"; seed=... too). A scheme becomes every layer's
        initializer and draws from `rngs`, the layers' own streams, so re-drawing by a scheme
        gives the bits that building the model with it gives. LSUV leaves the layers'
        initializers as they were. Biases are drawn again by each layer's rules (zeros unless
        it has a bias_initializer, or the scheme has its own bias).
    X : (n_features, m) array, the batch.
    rngs : one numpy Generator per layer.

    Returns a list with one dict per layer: {"layer" (numbered from 1), "units", "variance",
    "iterations"}, the variance of its pre-activation on X and the number of LSUV rescalings (0
    for a scheme).
    On any error the model is left as it was.
    """
    if not isinstance(method, str):
        raise ValueError(f"method must be 'lsuv' or a scheme name, got {method!r}")
    for index, layer in enumerate(model.layers):
        weights = layer.params.get("weights")
        if weights is None or weights.ndim != 2 or "bias" not in layer.params:
            raise ValueError(
                f"layer {index + 1} ({type(layer).__name__}) has no (units, fan_in) weights and "
                f"bias; initialize handles Dense layers of a single model"
            )
    is_lsuv = method.lower() == "lsuv"
    if is_lsuv:
        tol, max_iter = _check_lsuv_options(**options)
        initializer = initializers.Initializer("orthogonal")
    else:
        initializer = initializers.Initializer(method, **options)

    saved = [(layer, layer.initializer, layer.params, layer.grads) for layer in model.layers]
    saved_flat = (model._params, model._grads)
    try:
        for layer, rng in zip(model.layers, rngs):
            _redraw(layer, initializer, rng, model.dtype)
        model._params, model._grads = pack_parameters(model.layers)
        if is_lsuv:
            # The layers keep their own initializers: LSUV's weights are no scheme's draw.
            # stacklevel: the warning points at the caller of model.initialize.
            return lsuv(model, X, tol=tol, max_iter=max_iter, stacklevel=4)
        for layer in model.layers:
            layer.initializer = initializer
        return [_entry(index, layer, variance, 0)
                for index, (layer, variance) in enumerate(zip(model.layers,
                                                              layer_variances(model, X)))]
    except BaseException:
        for layer, layer_initializer, params, grads in saved:
            layer.initializer, layer.params, layer.grads = layer_initializer, params, grads
        model._params, model._grads = saved_flat
        raise


def lsuv(model, X, tol=0.1, max_iter=10, *, stacklevel=2):
    """Rescale each layer's weights, first to last, until Var(z) on X is 1 within tol.

    Expects the weights already drawn (orthonormal, for LSUV proper: `initialize` does that).
    Changes the weights in place and returns the per-layer report of `initialize`. A layer that
    has not converged after max_iter rounds (biases whose spread alone exceeds the target) is
    reported as it is, with a RuntimeWarning. A layer whose pre-activation is constant on X
    cannot be rescaled: ValueError.
    """
    tol, max_iter = _check_lsuv_options(tol, max_iter)
    report = []
    a = np.asarray(X, dtype=model.dtype)
    for index, layer in enumerate(model.layers):
        weights, bias = layer.params["weights"], layer.params["bias"]
        # The pre-activation, in the output layer too (its logits): see the module docstring.
        z = weights @ a + bias
        variance = _variance(index, z)
        iterations = 0
        while abs(variance - 1.0) >= tol and iterations < max_iter:
            weights *= 1.0 / math.sqrt(variance)  # in place: `weights` is a view the model holds
            z = weights @ a + bias
            variance = _variance(index, z)
            iterations += 1
        if abs(variance - 1.0) >= tol:
            warnings.warn(
                f"LSUV: layer {index + 1} reached Var(z) = {variance:.4g} after {max_iter} rounds, "
                f"not 1 within tol={tol}", RuntimeWarning, stacklevel=stacklevel)
        report.append(_entry(index, layer, variance, iterations))
        a = layer.activation.forward(z)
    return report


def layer_variances(model, X):
    """The variance of every layer's pre-activation z = W a + b on the batch X, first to last."""
    variances = []
    a = np.asarray(X, dtype=model.dtype)
    for layer in model.layers:
        z = layer.params["weights"] @ a + layer.params["bias"]
        variances.append(float(np.var(z)))
        a = layer.activation.forward(z)
    return variances


def _redraw(layer, initializer, rng, dtype):
    """Rebuild `layer`, its weights drawn by `initializer` (its bias_initializer still applies)."""
    kept, layer.initializer = layer.initializer, initializer
    try:
        layer.build(layer.fan_in, rng, dtype=dtype)
    finally:
        layer.initializer = kept


def _variance(index, z):
    variance = float(np.var(z))
    if not math.isfinite(variance) or variance <= 1e-300:
        raise ValueError(
            f"layer {index + 1}'s pre-activation has variance {variance!r} on this batch, so LSUV "
            f"cannot rescale it to 1: are the inputs constant, or every unit of the layer below "
            f"dead?"
        )
    return variance


def _entry(index, layer, variance, iterations):
    # Layers are numbered from 1, as in the papers, the diagnostics and summary().
    return {"layer": index + 1, "units": layer.units, "variance": variance,
            "iterations": iterations}


def _check_lsuv_options(tol=0.1, max_iter=10, **unknown):
    if unknown:
        raise ValueError(f"lsuv takes the options tol and max_iter, got {sorted(unknown)}")
    return checks.positive("tol", tol), checks.integer("max_iter", max_iter, minimum=1)
