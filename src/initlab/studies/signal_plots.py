"""Figures of per-layer signals: std per layer, Glorot & Bengio-style histograms, the deep study.

All figures use matplotlib's Agg backend and are written to files (never shown), so they work
on a machine without a display.

- plot_signal_std: the standard deviation per layer of the forward signal (activations) and of
  the backward signals (dL/da, dL/dW), one line per scheme, on a log scale: a straight line is a
  constant factor per layer, flat is what He and Glorot aim for.
- plot_histograms: per-layer histograms of activations and back-propagated gradients, one row
  per scheme, one curve per layer, in the style of Glorot & Bengio (2010), figures 6 and 7.
- plot_signal_std_over_training: the same std profile at each recorded epoch.
- plot_deep: the deep study's test accuracy and per-layer variance factors against depth.

    >>> import tempfile, os
    >>> from initlab.tools.diagnostics import measure
    >>> from initlab.studies.schemes import deep_mlp, parse_scheme
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(4, 30)); Y = np.eye(2)[:, np.arange(30) % 2]
    >>> model = deep_mlp(parse_scheme("he"), depth=3, width=8, n_inputs=4, n_outputs=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "std.png")
    >>> plot_signal_std({"he": measure(model, X, Y)[:-1]}, path, title="3 relu layers")
    >>> os.path.getsize(path) > 0
    True
"""

import numpy as np

from initlab.blocks import activations
from initlab.studies import output

# What each std panel shows: record field, axis label.
STD_PANELS = (
    ("activation_std", "std of activations a (forward)"),
    ("activation_grad_std", "std of dL/da (backward)"),
    ("weight_grad_std", "std of dL/dW"),
)
HISTOGRAM_PANELS = (
    ("activation", "activations a"),
    ("activation_grad", "back-propagated gradients dL/da"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _positive(values):
    # Zero or non-finite values cannot be drawn on a log axis: leave gaps there.
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    values[~np.isfinite(values) | (values <= 0)] = np.nan
    return values


def plot_signal_std(records_by_scheme, path, title=""):
    """One panel per signal (STD_PANELS), std against layer, one line per scheme; saved at path.

    records_by_scheme : {label: list of LayerRecord}, e.g. the hidden layers of measure(...).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(STD_PANELS), figsize=(5 * len(STD_PANELS), 4),
                             constrained_layout=True)
    for ax, (field, label) in zip(axes, STD_PANELS, strict=True):
        for scheme, records in records_by_scheme.items():
            layers = [record.layer for record in records]
            ax.plot(layers, _positive([getattr(r, field) for r in records]), marker="o",
                    markersize=3, label=scheme)
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)


def plot_signal_std_over_training(records_by_scheme, path, field="activation_std", title=""):
    """One panel per scheme: the std profile (field) at each recorded epoch; saved at path.

    records_by_scheme : {label: list of LayerRecord with their `epoch` set (None: at init)}.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = len(records_by_scheme)
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.8), squeeze=False,
                             constrained_layout=True)
    for ax, (scheme, records) in zip(axes[0], records_by_scheme.items(), strict=True):
        epochs = sorted({r.epoch for r in records}, key=lambda e: -1 if e is None else e)
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(epochs)))
        for epoch, color in zip(epochs, colors, strict=True):
            chosen = [r for r in records if r.epoch == epoch]
            ax.plot([r.layer for r in chosen], _positive([getattr(r, field) for r in chosen]),
                    color=color, marker="o", markersize=3,
                    label="init" if epoch is None else f"epoch {epoch}")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(scheme)
        ax.set_xlabel("layer")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(field)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)


def shown_layers(n_layers, at_most=5):
    """Up to `at_most` layer indices (0-based) spread evenly from the first to the last."""
    if n_layers <= at_most:
        return list(range(n_layers))
    return sorted({int(round(i)) for i in np.linspace(0, n_layers - 1, at_most)})


def plot_histograms(signals_by_scheme, path, activation="", at_most=5, bins=60, title=""):
    """Glorot & Bengio-style normalised histograms per layer: a row per scheme; saved at path.

    signals_by_scheme : {label: list of per-layer signal dicts from layer_signals(...)}, hidden
    layers only. Each row shows activations and dL/da, with one curve for each of up to
    `at_most` layers spread over the depth. Each panel shares one x range (the 99.5th percentile
    of |value| over its layers), so a layer whose signal vanished is a spike at 0 and one that
    exploded runs off the range: the scale change is what the figure shows. For rectifiers, exact
    zeros (inactive units) are left out of the activation histograms, where they would be a
    single bar swamping the rest; the dead and zero fractions in the table count them.
    """
    plt = _pyplot()
    n = len(signals_by_scheme)
    fig, axes = plt.subplots(n, len(HISTOGRAM_PANELS), figsize=(11, 2.6 * n + 0.6),
                             squeeze=False, constrained_layout=True)
    # Units in a dead region (the activation's own fact) output exact zeros for relu.
    rectifier = bool(activation) and activations.get(activation).dead is not None
    for row, (scheme, signals) in zip(axes, signals_by_scheme.items(), strict=True):
        layers = shown_layers(len(signals), at_most)
        for ax, (key, label) in zip(row, HISTOGRAM_PANELS, strict=True):
            values = {index: _finite(signals[index][key]) for index in layers}
            if key == "activation" and rectifier:
                values = {index: v[v != 0] for index, v in values.items()}
            _draw_histograms(ax, values, bins)
            suffix = " (a > 0)" if key == "activation" and rectifier else ""
            ax.set_title(f"{scheme}: {label}{suffix}", fontsize=9)
            ax.tick_params(labelsize=7)
        row[0].set_ylabel("fraction per bin")
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)


def _finite(values):
    if values is None:
        return np.array([])
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _draw_histograms(ax, values_by_layer, bins):
    pooled = np.concatenate([v for v in values_by_layer.values()] + [np.zeros(1)])
    limit = float(np.percentile(np.abs(pooled), 99.5))
    if not limit > 0:
        limit = 1.0
    # One-sided data (rectified activations) get a one-sided range.
    low = 0.0 if pooled.min() >= 0 else -limit
    edges = np.linspace(low, limit, bins + 1)
    drawn = False
    for index, values in values_by_layer.items():
        if values.size == 0:
            continue
        # Values beyond the range are not drawn; each curve is still divided by all its values,
        # so a curve that sums to less than 1 has mass off the range (an exploded layer).
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(counts / values.size, edges, label=f"layer {index + 1}")
        drawn = True
    ax.set_xlim(low, limit)
    if drawn:
        ax.legend(fontsize=6)
    else:
        ax.text(0.5, 0.5, "no non-zero finite values", ha="center", va="center",
                transform=ax.transAxes)


DEEP_PANELS = (
    ("test_accuracy", "test accuracy (%)", False),
    ("forward_variance_per_layer", "forward: variance x per layer, at init", True),
    ("backward_variance_per_layer", "backward: variance x per layer, at init", True),
)


def plot_deep(rows, path, title=""):
    """Accuracy and per-layer variance factors against depth: a column per activation.

    rows : the deep study's summary rows, dicts with "activation", "scheme", "depth" and the
    DEEP_PANELS keys. One line per scheme; the variance factors are drawn on a log scale with a
    line at 1 (He's aim) and at 1/2 (what Glorot gives a relu network).
    """
    plt = _pyplot()
    activations = list(dict.fromkeys(row["activation"] for row in rows))
    schemes = list(dict.fromkeys(row["scheme"] for row in rows))
    fig, axes = plt.subplots(len(DEEP_PANELS), len(activations),
                             figsize=(5.5 * len(activations), 3.3 * len(DEEP_PANELS)),
                             squeeze=False, constrained_layout=True)
    for column, activation in enumerate(activations):
        for scheme in schemes:
            chosen = sorted((r for r in rows if r["activation"] == activation
                             and r["scheme"] == scheme), key=lambda r: r["depth"])
            if not chosen:
                continue
            depths = [r["depth"] for r in chosen]
            for row, (key, _, log) in enumerate(DEEP_PANELS):
                values = [r.get(key) for r in chosen]
                axes[row][column].plot(depths, _positive(values) if log else values,
                                       marker="o", label=scheme)
        axes[0][column].set_title(activation)
        axes[0][column].set_ylim(0, 100)
        for row, (_, label, log) in enumerate(DEEP_PANELS):
            ax = axes[row][column]
            ax.set_ylabel(label)
            ax.set_xlabel("depth (hidden layers)")
            ax.grid(True, alpha=0.3)
            if log:
                ax.set_yscale("log")
                ax.axhline(1.0, color="grey", linewidth=0.8)
                ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
