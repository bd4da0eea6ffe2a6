"""Figures of per-layer signals: std per layer, Glorot & Bengio-style histograms, the deep study.

All figures use matplotlib's Agg backend and are written to files (never shown), so they work
on a machine without a display.

- plot_signal_std: the standard deviation per layer of the forward signal (activations) and of
  the backward signals (dL/da, dL/dW), one line per scheme, on a log scale: a straight line is a
  constant factor per layer, flat is what He and Glorot aim for.
- plot_histograms: per-layer histograms of activations and back-propagated gradients, one row
  per scheme, one curve per layer, in the style of Glorot & Bengio (2010), figures 6 and 7, over
  log10 |value|, since the schemes compared put the signals decades apart.
- plot_signal_std_over_training: the same std profile at each recorded epoch, a panel per
  scheme in a grid of at most four columns.
- plot_deep: the deep study's test accuracy (with the chance level) and per-layer variance
  factors against depth, a marker and line style per scheme.
Each function saves its figure at `path` and returns it, so that its data can be read back.

    >>> import tempfile, os
    >>> from initlab.tools.diagnostics import measure
    >>> from initlab.studies.schemes import deep_mlp, parse_scheme
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(4, 30)); Y = np.eye(2)[:, np.arange(30) % 2]
    >>> model = deep_mlp(parse_scheme("he"), depth=3, width=8, n_inputs=4, n_outputs=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "std.png")
    >>> figure = plot_signal_std({"he": measure(model, X, Y)[:-1]}, path, title="3 relu layers")
    >>> os.path.getsize(path) > 0, len(figure.axes)
    (True, 3)
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


def plot_signal_std(records_by_scheme, path, title="", predicted=None):
    """One panel per signal (STD_PANELS), std against layer, one line per scheme; saved at path.

    records_by_scheme : {label: list of LayerRecord}, e.g. the hidden layers of measure(...).
    predicted : optional {label: activation std per layer}, the mean-field theory's
    (initlab.tools.theory.predict_signals), drawn dashed in the scheme's colour on the first panel.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(
        1, len(STD_PANELS), figsize=(5 * len(STD_PANELS), 4), constrained_layout=True
    )
    for ax, (field, label) in zip(axes, STD_PANELS, strict=True):
        for k, (scheme, records) in enumerate(records_by_scheme.items()):
            layers = [record.layer for record in records]
            # A marker and line style per scheme: schemes that keep the scale coincide.
            (line,) = ax.plot(
                layers,
                _positive([getattr(r, field) for r in records]),
                marker=MARKERS[k % len(MARKERS)],
                linestyle=LINESTYLES[k % len(LINESTYLES)],
                markersize=4,
                markerfacecolor="none",
                label=scheme,
            )
            if predicted and field == "activation_std" and scheme in predicted:
                # The mean-field theory's prediction, dotted in the scheme's colour.
                ax.plot(
                    layers,
                    _positive(predicted[scheme][: len(layers)]),
                    linestyle=":",
                    color=line.get_color(),
                    linewidth=1.5,
                )
        ax.set_yscale("log")
        plain_log_ticks(ax)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(
        fontsize=8, title="dashed: mean-field theory" if predicted else None, title_fontsize=7
    )
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def plot_signal_std_over_training(records_by_scheme, path, field="activation_std", title=""):
    """One panel per scheme, in rows of at most four: the std profile (field) at each recorded
    epoch; saved at path.

    records_by_scheme : {label: list of LayerRecord with their `epoch` set (None: at init)}.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = len(records_by_scheme)
    columns = min(n, GRID_COLUMNS)
    rows = -(-n // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns, 3.4 * rows + 0.5),
        squeeze=False,
        constrained_layout=True,
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)  # the last row's empty places
    for ax, (scheme, records) in zip(axes.ravel(), records_by_scheme.items()):
        epochs = sorted({r.epoch for r in records}, key=lambda e: -1 if e is None else e)
        colors = plt.cm.viridis(np.linspace(0, 0.9, len(epochs)))
        for epoch, color in zip(epochs, colors, strict=True):
            chosen = [r for r in records if r.epoch == epoch]
            ax.plot(
                [r.layer for r in chosen],
                _positive([getattr(r, field) for r in chosen]),
                color=color,
                marker="o",
                markersize=3,
                label="init" if epoch is None else f"epoch {epoch}",
            )
        ax.set_yscale("log")
        plain_log_ticks(ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(scheme)
        ax.set_xlabel("layer")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel(field)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def shown_layers(n_layers, at_most=5):
    """Up to `at_most` layer indices (0-based) spread evenly from the first to the last."""
    if n_layers <= at_most:
        return list(range(n_layers))
    return sorted({int(round(i)) for i in np.linspace(0, n_layers - 1, at_most)})


def plot_histograms(signals_by_scheme, path, activation="", at_most=5, bins=60, title=""):
    """Glorot & Bengio-style normalised histograms of log10 |value| per layer: a row per scheme.

    signals_by_scheme : {label: list of per-layer signal dicts from layer_signals(...)}, hidden
    layers only. Each row shows activations and dL/da, with one curve for each of up to
    `at_most` layers spread over the depth. The x axis is log10 |value|: the schemes compared
    (N(0, 0.01²) next to x10) and the layers of one network put the signals decades apart, which
    a linear axis squeezes into one bar at 0; on a log axis a vanishing signal is a curve moving
    left layer by layer, an exploding one a curve moving right. Each panel spans its layers'
    values (0.1st to 99.9th percentile). The sign is dropped: the table gives the means. Exact
    zeros have no logarithm and are left out (for rectifiers, the inactive units; the dead and
    zero fractions in the table count them); each curve is still divided by all its values, so
    one that sums to less than 1 has that share at zero or off the range. Saved at path.
    """
    plt = _pyplot()
    n = len(signals_by_scheme)
    fig, axes = plt.subplots(
        n,
        len(HISTOGRAM_PANELS),
        figsize=(11, 2.6 * n + 0.6),
        squeeze=False,
        constrained_layout=True,
    )
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
            ax.set_xlabel(f"log10 |{'a' if key == 'activation' else 'dL/da'}|", fontsize=8)
            ax.tick_params(labelsize=7)
        row[0].set_ylabel("fraction per bin")
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def _finite(values):
    if values is None:
        return np.array([])
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def log_magnitudes(values):
    """log10 |v| of the non-zero values: what the histograms draw."""
    values = np.abs(values)
    return np.log10(values[values > 0])


def _draw_histograms(ax, values_by_layer, bins):
    logs = {index: log_magnitudes(values) for index, values in values_by_layer.items()}
    pooled = np.concatenate([v for v in logs.values()] + [np.zeros(0)])
    if pooled.size:
        low, high = np.percentile(pooled, [0.1, 99.9])
        low, high = np.floor(low * 2) / 2, np.ceil(high * 2) / 2  # whole half-decades
        if high <= low:
            low, high = low - 0.5, high + 0.5
    else:
        low, high = -1.0, 1.0
    edges = np.linspace(low, high, bins + 1)
    drawn = False
    for index, values in values_by_layer.items():
        if logs[index].size == 0:
            continue
        counts, _ = np.histogram(logs[index], bins=edges)
        ax.stairs(counts / values.size, edges, label=f"layer {index + 1}")
        drawn = True
    ax.set_xlim(low, high)
    if drawn:
        ax.legend(fontsize=6)
    else:
        ax.text(
            0.5, 0.5, "no non-zero finite values", ha="center", va="center", transform=ax.transAxes
        )


DEEP_PANELS = (
    ("test_accuracy", "test accuracy (%)", False),
    ("forward_variance_per_layer", "forward: variance x per layer, at init", True),
    ("backward_variance_per_layer", "backward: variance x per layer, at init", True),
)


# Markers and line styles, so that schemes whose lines coincide stay apart.
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")
GRID_COLUMNS = 4


def plain_log_ticks(ax):
    """Label a log y axis with plain numbers (0.5, 1, 1e+03), never as 9x10^-1.

    Call after plotting. Decades are labelled; an axis spanning less than about one decade has
    too few of them, so its minor ticks (2, 3, ... times a power of ten) are labelled too.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    narrow = low > 0 and np.log10(high / low) < 1.2
    ax.yaxis.set_minor_formatter(plain if narrow else NullFormatter())


def plot_deep(rows, path, title="", chance=None):
    """Accuracy and per-layer variance factors against depth: a column per activation.

    rows : the deep study's summary rows, dicts with "activation", "scheme", "depth" and the
    DEEP_PANELS keys. One line per scheme, each with its own colour, marker and line style, and
    one legend under the panels; the variance factors are drawn on a log scale with a line at 1
    (He's aim) and at 1/2 (what Glorot gives a relu network). chance : the accuracy (%) of
    guessing, drawn as a line on the accuracy panels (10 for digits' ten classes).
    """
    plt = _pyplot()
    activations = list(dict.fromkeys(row["activation"] for row in rows))
    schemes = list(dict.fromkeys(row["scheme"] for row in rows))
    colors = plt.cm.tab10(np.arange(len(schemes)) % 10)
    fig, axes = plt.subplots(
        len(DEEP_PANELS),
        len(activations),
        figsize=(5.5 * len(activations), 3.3 * len(DEEP_PANELS) + 0.9),
        squeeze=False,
        constrained_layout=True,
    )
    for column, activation in enumerate(activations):
        for k, scheme in enumerate(schemes):
            chosen = sorted(
                (r for r in rows if r["activation"] == activation and r["scheme"] == scheme),
                key=lambda r: r["depth"],
            )
            if not chosen:
                continue
            depths = [r["depth"] for r in chosen]
            style = {
                "color": colors[k],
                "marker": MARKERS[k % len(MARKERS)],
                "linestyle": LINESTYLES[k % len(LINESTYLES)],
                "markersize": 5,
                "markerfacecolor": "none",
                "label": scheme,
            }
            for row, (key, _, log) in enumerate(DEEP_PANELS):
                values = [r.get(key) for r in chosen]
                axes[row][column].plot(depths, _positive(values) if log else values, **style)
        axes[0][column].set_title(activation)
        axes[0][column].set_ylim(0, 100)
        if chance is not None:
            axes[0][column].axhline(
                chance, color="grey", linewidth=1, linestyle=":", label=f"chance ({chance:g}%)"
            )
        all_depths = sorted({r["depth"] for r in rows})
        for row, (_, label, log) in enumerate(DEEP_PANELS):
            ax = axes[row][column]
            ax.set_xticks(all_depths)  # the depths run, not 2.5, 7.5, ...
            ax.set_ylabel(label)
            ax.set_xlabel("depth (hidden layers)")
            ax.grid(True, alpha=0.3)
            if log:
                ax.set_yscale("log")
                ax.axhline(1.0, color="grey", linewidth=0.8)
                ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
                plain_log_ticks(ax)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), fontsize=8)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def plot_phase_diagram(phase_rows, edge_rows, scheme_rows, points, path, title=""):
    """The mean-field phase diagram in (σ_w², σ_b²): q* and ξ_c as colour, the edge of chaos.

    phase_rows : dicts with weight_variance, bias_variance, q_star, xi_c (a full grid);
    edge_rows : dicts with bias_variance, critical_weight_variance (the line χ1 = 1);
    scheme_rows : dicts with scheme, weight_variance, bias_variance (markers; σ_w² = 0 is drawn
    at the left edge); points : (label, σ_w², σ_b²) of the measured networks (crosses).
    σ_w² is on a log axis; q* = ∞ (no fixed point) is left white, ξ_c is capped at 1000.
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    weights = np.array(sorted({row["weight_variance"] for row in phase_rows}))
    biases = np.array(sorted({row["bias_variance"] for row in phase_rows}))
    grids = {key: np.full((biases.size, weights.size), np.nan) for key in ("q_star", "xi_c")}
    for row in phase_rows:
        i, j = (
            np.searchsorted(biases, row["bias_variance"]),
            np.searchsorted(weights, row["weight_variance"]),
        )
        for key in grids:
            grids[key][i, j] = np.nan if row[key] is None else row[key]
    q_star = np.where(np.isfinite(grids["q_star"]) & (grids["q_star"] > 0), grids["q_star"], np.nan)
    # ξ_c = ∞ (on the edge) is drawn at the cap; nan (not computed: q* beyond the two-variable
    # quadrature's range) is left out, so the grey background shows.
    xi_c = np.clip(grids["xi_c"], 1e-1, 1e3)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    panels = (
        (
            q_star,
            "q* (fixed point of the pre-activations' second moment); white: 0 or ∞",
            "viridis",
        ),
        (
            xi_c,
            "ξ_c (depth over which correlations are kept), capped at 1000; grey: "
            "not computed (q* > 100)",
            "magma",
        ),
    )
    edge = [
        (row["critical_weight_variance"], row["bias_variance"])
        for row in edge_rows
        if row["critical_weight_variance"] is not None
        and np.isfinite(row["critical_weight_variance"])
    ]
    left = weights[0]
    for ax, (values, label, cmap) in zip(axes, panels, strict=True):
        finite = values[np.isfinite(values)]
        norm = LogNorm(vmin=max(finite.min(), 1e-6), vmax=finite.max()) if finite.size else None
        ax.set_facecolor("lightgrey" if values is xi_c else "white")
        mesh = ax.pcolormesh(weights, biases, values, shading="nearest", cmap=cmap, norm=norm)
        fig.colorbar(mesh, ax=ax, label=label.split(" (")[0])
        if edge:
            ax.plot(
                *zip(*sorted(edge, key=lambda p: p[1]), strict=True),
                color="cyan",
                linewidth=2,
                label="edge of chaos (χ1 = 1)",
            )
        for number, row in enumerate(scheme_rows):
            x = max(row["weight_variance"], left)
            ax.plot(
                x,
                row["bias_variance"],
                marker="o",
                color="white",
                markeredgecolor="k",
                linestyle="none",
                clip_on=False,
            )
            name = row["scheme"] + (" (σ_w² = 0)" if row["weight_variance"] < left else "")
            ax.annotate(
                name,
                (x, row["bias_variance"]),
                textcoords="offset points",
                xytext=(4, 8 + 10 * (number % 3)),
                fontsize=7,
                color="white",
                ha="left" if number < 2 else "center",
                bbox={"boxstyle": "round", "facecolor": "black", "alpha": 0.4, "linewidth": 0},
            )
        for _, wv, bv in points:
            ax.plot(wv, bv, marker="x", color="red", markersize=7, linestyle="none")
        ax.set_xscale("log")
        ax.set_xlabel("σ_w² = fan_in · Var(W)")
        ax.set_ylabel("σ_b² = Var(b)")
        ax.set_title(label, fontsize=9)
        ax.set_xlim(weights[0], weights[-1])
        ax.set_ylim(biases[0], biases[-1])
    axes[0].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title + " (x: measured points)")
    output.save_figure(fig, path)
    return fig


def plot_propagation(rows, path, title=""):
    """The theory's q^l and c^l (lines) over the measured ones (dots: mean, band: min-max).

    rows : dicts with point, layer, q_theory, q_measured, q_min, q_max and the same for c; one
    colour per point.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    points = list(dict.fromkeys(row["point"] for row in rows))
    colors = plt.cm.tab10(np.arange(len(points)) % 10)
    for point, color in zip(points, colors, strict=True):
        chosen = sorted((row for row in rows if row["point"] == point), key=lambda r: r["layer"])
        layers = [row["layer"] for row in chosen]
        for ax, key in zip(axes, ("q", "c"), strict=True):
            theory_values = [row[f"{key}_theory"] for row in chosen]
            measured = [row[f"{key}_measured"] for row in chosen]
            low = [row[f"{key}_min"] for row in chosen]
            high = [row[f"{key}_max"] for row in chosen]
            if key == "q":
                theory_values, measured = _positive(theory_values), _positive(measured)
                low, high = _positive(low), _positive(high)
            ax.plot(
                layers,
                theory_values,
                color=color,
                linewidth=1.5,
                label=point if key == "q" else None,
            )
            ax.plot(layers, measured, color=color, marker="o", markersize=3, linestyle="none")
            ax.fill_between(layers, low, high, color=color, alpha=0.15, linewidth=0)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("q^l: second moment of the pre-activations")
    axes[1].set_ylabel("c^l: correlation of the two inputs' pre-activations")
    for ax in axes:
        ax.set_xlabel("layer")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    output.save_figure(fig, path)
    return fig


def _cell_edges(centres, log=False):
    """Edges of cells around sorted centres: midpoints, and half a step beyond each end
    (geometric midpoints on a log axis)."""
    centres = np.asarray(centres, dtype=float)
    values = np.log(centres) if log else centres
    if values.size == 1:
        edges = values + np.array([-0.5, 0.5]) * (abs(values[0]) or 1.0)
    else:
        middle = (values[1:] + values[:-1]) / 2
        edges = np.concatenate(
            [
                [values[0] - (middle[0] - values[0])],
                middle,
                [values[-1] + (values[-1] - middle[-1])],
            ]
        )
    return np.exp(edges) if log else edges


# The trainability heat map writes each cell's accuracy in it up to this many cells.
MAX_LABELLED_CELLS = 150


def plot_trainability(cells, curve, critical, path, title="", chance=None):
    """Test accuracy over (σ_w², depth) as a heat map, the predicted maximum depth over it.

    cells : dicts with depth, weight_variance and test_accuracy (the mean over seeds), one per
    grid cell; drawn as a cell per value, centred on it, depth on a log axis.
    curve : dicts with weight_variance and predicted_max_depth (6 ξ_c), drawn as a line (values
    beyond the axis, ∞ on the edge of chaos, leave it at the top). critical : the critical
    σ_w², drawn as a vertical dashed line. chance : the accuracy of guessing, marked on the
    colour bar. The heat map's values are the figure's first QuadMesh, rows by depth; up to
    MAX_LABELLED_CELLS cells also show their value as text.
    """
    plt = _pyplot()
    weights = np.array(sorted({cell["weight_variance"] for cell in cells}), dtype=float)
    depths = np.array(sorted({cell["depth"] for cell in cells}), dtype=float)
    accuracy = np.full((depths.size, weights.size), np.nan)
    for cell in cells:
        i = np.searchsorted(depths, cell["depth"])
        j = np.searchsorted(weights, cell["weight_variance"])
        accuracy[i, j] = cell["test_accuracy"]
    x_edges, y_edges = _cell_edges(weights), _cell_edges(depths, log=True)
    fig, ax = plt.subplots(figsize=(9, 5.2), constrained_layout=True)
    ax.set_facecolor("lightgrey")  # a cell without a value
    mesh = ax.pcolormesh(x_edges, y_edges, accuracy, cmap="viridis", vmin=0, vmax=100)
    bar = fig.colorbar(mesh, ax=ax, label="test accuracy (%)")
    if chance is not None:
        bar.ax.axhline(chance, color="white", linewidth=1.5, linestyle=":")
    curve_x = np.array([row["weight_variance"] for row in curve], dtype=float)
    curve_y = np.array(
        [
            np.nan if row["predicted_max_depth"] is None else row["predicted_max_depth"]
            for row in curve
        ],
        dtype=float,
    )
    ax.plot(curve_x, curve_y, color="red", linewidth=2, label="predicted maximum depth 6 ξ_c")
    if critical is not None and np.isfinite(critical):
        ax.axvline(
            critical,
            color="cyan",
            linewidth=1.5,
            linestyle="--",
            label=f"critical σ_w² = {critical:.3g} (χ1 = 1)",
        )
    ax.set_yscale("log")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_yticks(depths)
    ax.set_yticks([], minor=True)
    ax.set_yticklabels([f"{depth:g}" for depth in depths])
    ax.set_xticks(weights)
    ax.set_xticklabels([f"{wv:g}" for wv in weights], fontsize=8)
    ax.set_xlabel("σ_w² = fan_in · Var(W)")
    ax.set_ylabel("depth (hidden layers)")
    if accuracy.size <= MAX_LABELLED_CELLS:  # the numbers too, where they fit
        for (i, j), value in np.ndenumerate(accuracy):
            if np.isfinite(value):
                ax.text(
                    weights[j],
                    depths[i],
                    f"{value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if value > 60 else "white",
                )
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    output.save_figure(fig, path)
    return fig
