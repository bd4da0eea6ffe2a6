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

`model.initialize(X, method=name)` also re-draws every layer with any registered scheme, so a study
can treat "lsuv" as one more scheme name; it reports the variances that scheme gives on X. LSUV
is one data-dependent initialisation registered with the engine (register_data_dependent); a user
can register their own the same way.

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
from initlab.engine import model as model_module

# The row the scheme table (`initlab inits`, README) shows for LSUV.
FORMULA = "orthogonal; per layer, on a batch, W ← W / √Var(z) until |Var(z) − 1| < tol"


@model_module.register_data_dependent("lsuv")
def initialize(model, X, **options):
    """LSUV on a built `model` and the batch X: orthonormal weights, then `lsuv`.

    Run by model.initialize(X, method="lsuv", tol=..., max_iter=...), which restores the model
    on any error. The layers keep their own initializers: LSUV's weights are no scheme's draw.
    Biases are drawn again by each layer's rules (zeros unless it has a bias_initializer).
    """
    tol, max_iter = _check_lsuv_options(**options)  # tol=0.1, max_iter=10
    model.redraw("orthogonal", keep_initializers=True)
    # stacklevel: the warning points at the caller of model.initialize.
    return lsuv(model, X, tol=tol, max_iter=max_iter, stacklevel=5)


def lsuv(model, X, tol=0.1, max_iter=10, *, stacklevel=2):
    """Rescale each layer's weights, first to last, until Var(z) on X is 1 within tol.

    Expects the weights already drawn (orthonormal, for LSUV proper: `initialize` does that).
    Changes the weights in place and returns the per-layer report of model.initialize. A layer
    that has not converged after max_iter rounds (biases whose spread alone exceeds the target)
    is reported as it is, with a RuntimeWarning. A layer whose pre-activation is constant on X
    cannot be rescaled: ValueError.
    """
    tol, max_iter = _check_lsuv_options(tol, max_iter)
    report = []
    a = np.asarray(X, dtype=model.dtype)
    for number, layer in enumerate(model.layers, start=1):
        weights = layer.params["weights"]
        # The pre-activation, in the output layer too (its logits): see the module docstring.
        z = layer.preactivation(a)
        variance = _variance(number, z)
        iterations = 0
        while abs(variance - 1.0) >= tol and iterations < max_iter:
            weights *= 1.0 / math.sqrt(variance)  # in place: `weights` is a view the model holds
            z = layer.preactivation(a)
            variance = _variance(number, z)
            iterations += 1
        if abs(variance - 1.0) >= tol:
            warnings.warn(
                f"LSUV: layer {number} reached Var(z) = {variance:.4g} after {max_iter} rounds, "
                f"not 1 within tol={tol}",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        report.append(model_module.layer_report(number, layer, variance, iterations))
        a = layer.activation.forward(z)
    return report


def _variance(number, z):
    variance = float(np.var(z))
    if not math.isfinite(variance) or variance <= 1e-300:
        raise ValueError(
            f"layer {number}'s pre-activation has variance {variance!r} on this batch, so LSUV "
            f"cannot rescale it to 1: are the inputs constant, or every unit of the layer below "
            f"dead?"
        )
    return variance


def _check_lsuv_options(tol=0.1, max_iter=10, **unknown):
    if unknown:
        raise ValueError(f"lsuv takes the options tol and max_iter, got {sorted(unknown)}")
    return checks.positive("tol", tol), checks.integer("max_iter", max_iter, minimum=1)
