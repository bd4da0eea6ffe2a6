"""Which (depth, σ_w²) train: Schoenholz et al.'s experiment at this machine's scale.

For each depth, networks of that many tanh layers of `width` units (Gaussian weights of variance
σ_w² / fan_in, biases of variance σ_b², as the theory assumes; softmax output drawn the same way)
are trained together as one Ensemble on scikit-learn's digits for a fixed budget of SGD epochs,
one per σ_w² and seed, then tested. Beside each cell is the theory's prediction: networks train
when depth <= DEPTH_MULTIPLE · ξ_c (Schoenholz et al. 2017, §6: "the maximum trainable depth is
about 6 ξ_c"), ξ_c from initlab.tools.theory.depth_scales.

    >>> rows = trainability(depths=(2,), weight_variances=(1.0,), seeds=(0,), width=8, epochs=1)
    >>> sorted(rows[0])[:3]
    ['activation', 'bias_variance', 'depth']

A plain function for now: the sweeps engine will run it as a grid that resumes and spreads.

Reference: S. Schoenholz et al., "Deep information propagation", ICLR 2017, figures 5 and 6.
"""

import math

import numpy as np

from initlab import checks
from initlab.tools import theory

DEFAULT_DEPTHS = (5, 10, 20, 40)
DEFAULT_WEIGHT_VARIANCES = (0.5, 1.0, 1.76, 3.0, 6.0)
# Schoenholz et al. (2017), figure 6 and §6: networks train up to about 6 ξ_c layers.
DEPTH_MULTIPLE = 6


def trainability(
    activation="tanh",
    bias_variance=0.05,
    depths=DEFAULT_DEPTHS,
    weight_variances=DEFAULT_WEIGHT_VARIANCES,
    seeds=(0, 1),
    width=64,
    epochs=5,
    learning_rate=0.05,
    batch_size=32,
    data_seed=0,
):
    """Train the grid depth x σ_w² x seed on digits; one row per network.

    Each row: activation, bias_variance, depth, weight_variance, seed, test_accuracy (percent),
    train_loss (the last epoch's), xi_c, predicted_max_depth (DEPTH_MULTIPLE · ξ_c) and
    predicted_trainable (depth <= predicted_max_depth).
    """
    from initlab.blocks.datasets import digits
    from initlab.tools.ensemble import Ensemble

    depths = [checks.integer("depths", depth, minimum=1) for depth in depths]
    weight_variances = [checks.number("weight_variances", wv, minimum=0) for wv in weight_variances]
    seeds = [checks.integer("seeds", seed, minimum=0) for seed in seeds]
    bias_variance = checks.number("bias_variance", bias_variance, minimum=0)
    width = checks.integer("width", width, minimum=1)
    epochs = checks.integer("epochs", epochs, minimum=1)
    learning_rate = checks.positive("learning_rate", learning_rate)
    if not (depths and weight_variances and seeds):
        raise ValueError("depths, weight_variances and seeds must each list at least one value")
    xi_c = np.atleast_1d(theory.depth_scales(activation, weight_variances, bias_variance)[1])
    X_train, Y_train, X_test, Y_test = digits(seed=data_seed)
    rows = []
    for depth in depths:
        cells = [
            (wv, xi, seed) for wv, xi in zip(weight_variances, xi_c, strict=True) for seed in seeds
        ]
        ensemble = Ensemble(
            [
                _network(
                    activation,
                    wv,
                    bias_variance,
                    depth,
                    width,
                    seed,
                    X_train.shape[0],
                    Y_train.shape[0],
                )
                for wv, _, seed in cells
            ]
        )
        # Chaotic and far-ordered networks may overflow on purpose: their nan is a result.
        with np.errstate(all="ignore"):
            history = ensemble.fit(
                X_train, Y_train, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size
            )
            accuracy = ensemble.evaluate(X_test, Y_test)["accuracy"]
        for k, (wv, xi, seed) in enumerate(cells):
            predicted = DEPTH_MULTIPLE * float(xi)
            rows.append(
                {
                    "activation": activation,
                    "bias_variance": bias_variance,
                    "depth": depth,
                    "weight_variance": wv,
                    "seed": seed,
                    "test_accuracy": float(accuracy[k]),
                    "train_loss": float(history["loss"][-1, k]),
                    "xi_c": float(xi),
                    "predicted_max_depth": predicted,
                    "predicted_trainable": bool(depth <= predicted),
                }
            )
    return rows


def _network(activation, weight_variance, bias_variance, depth, width, seed, n_inputs, n_outputs):
    from initlab.blocks.initializers import Initializer
    from initlab.blocks.layers import Dense
    from initlab.engine.model import NeuralNetwork

    model = NeuralNetwork(seed=seed)
    fan_in = n_inputs
    for units, layer_activation in [(width, activation)] * depth + [(n_outputs, "softmax")]:
        model.add(
            Dense(
                units,
                activation=layer_activation,
                initializer=Initializer(
                    "random_normal", stddev=math.sqrt(weight_variance / fan_in)
                ),
                bias_initializer=Initializer("random_normal", stddev=math.sqrt(bias_variance)),
            )
        )
        fan_in = units
    model.compile(loss="categorical_crossentropy")
    return model
