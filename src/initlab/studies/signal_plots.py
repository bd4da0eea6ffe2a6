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


# How the mean-field theory is drawn under the measured lines, and what the legend says of it.
THEORY_STYLE = {"linestyle": "-", "linewidth": 6, "alpha": 0.3, "solid_capstyle": "round"}
THEORY_LABEL = "mean-field theory: the wide pale line in each scheme's colour"


def plot_signal_std(records_by_scheme, path, title="", predicted=None):
    """One panel per signal (STD_PANELS), std against layer, one line per scheme; saved at path.

    records_by_scheme : {label: list of LayerRecord}, e.g. the hidden layers of measure(...).
    predicted : optional {label: activation std per layer}, the mean-field theory's
    (initlab.tools.theory.predict_signals), drawn on the first panel as a wide pale line
    (THEORY_STYLE) in the scheme's colour under its measured line: the schemes' own line styles
    include dashes and dots, so the theory has a style none of them has. Values a log axis cannot
    show (0, inf, NaN) are marked on its edges (mark_off_axis), and the legend says so.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(
        1, len(STD_PANELS), figsize=(5 * len(STD_PANELS), 4), constrained_layout=True
    )
    off_axis = set()
    for ax, (field, label) in zip(axes, STD_PANELS, strict=True):
        drawn = []
        for k, (scheme, records) in enumerate(records_by_scheme.items()):
            layers = [record.layer for record in records]
            values = [getattr(r, field) for r in records]
            # A marker and line style per scheme: schemes that keep the scale coincide.
            (line,) = ax.plot(
                layers,
                _positive(values),
                marker=MARKERS[k % len(MARKERS)],
                linestyle=LINESTYLES[k % len(LINESTYLES)],
                markersize=4,
                markerfacecolor="none",
                label=scheme,
            )
            drawn.append((layers, values, line.get_color()))
            if predicted and field == "activation_std" and scheme in predicted:
                ax.plot(
                    layers,
                    _positive(predicted[scheme][: len(layers)]),
                    color=line.get_color(),
                    zorder=1,
                    label="_theory",
                    **THEORY_STYLE,
                )
        ax.set_yscale("log")
        log_ticks(ax)
        for layers, values, color in drawn:
            off_axis |= mark_off_axis(ax, layers, values, color)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    extra = off_axis_handles(off_axis)
    if predicted:
        extra.insert(0, Line2D([], [], color="grey", label=THEORY_LABEL, **THEORY_STYLE))
    axes[0].legend(handles=handles + extra, fontsize=7)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def plot_signal_std_over_training(records_by_scheme, path, field="activation_std", title=""):
    """One panel per scheme, in rows of at most four: the std profile (field, one of
    STD_PANELS) at each recorded epoch; saved at path. Values a log axis cannot show (0, inf,
    NaN: a network that diverged) are marked on its edges, and its legend says so.

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
        drawn = []
        for epoch, color in zip(epochs, colors, strict=True):
            chosen = [r for r in records if r.epoch == epoch]
            layers, values = [r.layer for r in chosen], [getattr(r, field) for r in chosen]
            ax.plot(
                layers,
                _positive(values),
                color=color,
                marker="o",
                markersize=3,
                label="init" if epoch is None else f"epoch {epoch}",
            )
            drawn.append((layers, values, color))
        ax.set_yscale("log")
        if not np.isfinite(_positive([v for _, values, _ in drawn for v in values])).any():
            ax.set_ylim(0.1, 10)  # nothing a log axis can show: the edges still mark it
        log_ticks(ax)
        off_axis = set()
        for layers, values, color in drawn:
            off_axis |= mark_off_axis(ax, layers, values, color)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(scheme)
        ax.set_xlabel("layer")
        ax.grid(True, alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=handles + off_axis_handles(off_axis), fontsize=7)
    axis_label = dict(STD_PANELS).get(field, field)
    for row in axes:
        row[0].set_ylabel(axis_label)
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


# The reference levels of the variance panels: what a scheme aims for, and Glorot's relu factor.
DEEP_REFERENCES = {
    1.0: {"linestyle": "-", "label": "x 1 per layer: variance kept (He's aim)"},
    0.5: {"linestyle": ":", "label": "x 1/2 per layer: Glorot's scale on relu"},
}
REFERENCE_LABELS = [style["label"] for style in DEEP_REFERENCES.values()]

# Markers and line styles, so that schemes whose lines coincide stay apart.
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")
GRID_COLUMNS = 4


# Tick values written as plain numbers (0.0001 to 100000); beyond, every tick is a power of ten.
PLAIN_TICKS = (1e-4, 1e5)
MAX_DECADE_LABELS = 8


def log_ticks(ax):
    """Ticks of a log y axis, every label in one format. Call after plotting.

    Three or more decades in view: the decades are labelled (every second, third ... when there
    are more than MAX_DECADE_LABELS), the 2-9 multiples are unlabelled minor ticks. Fewer:
    1, 2 and 5 times the powers of ten (or every multiple) are labelled, so a narrow axis still
    reads. The labels are plain numbers (0.001, 0.5, 20, 1000) when every one lies in
    PLAIN_TICKS, else all powers of ten (10^-12, 2x10^-6): never 1e+03 beside 100.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

    low, high = ax.get_ylim()
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        return
    lowest, highest = int(np.floor(np.log10(low))), int(np.ceil(np.log10(high)))
    powers = range(lowest, highest + 1)

    def inside(values):
        return [v for v in values if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)]

    every = inside([m * 10.0**k for k in powers for m in range(1, 10)])
    decades = inside([10.0**k for k in powers])
    if len(decades) >= 3:
        step = -(-len(decades) // MAX_DECADE_LABELS)
        major = [v for v in decades if round(np.log10(v)) % step == 0]
        minor = [v for v in (every if step == 1 else decades) if v not in major]
    else:
        major = inside([m * 10.0**k for k in powers for m in (1, 2, 5)])
        if len(major) < 3:
            major = every
        if len(major) < 2:  # less than a factor of two in view: evenly spaced values
            major = inside(MaxNLocator(nbins=4).tick_values(low, high))
        minor = [v for v in every if v not in major]
    plain = all(PLAIN_TICKS[0] <= v <= PLAIN_TICKS[1] for v in major)
    ax.yaxis.set_major_locator(FixedLocator(major))
    ax.yaxis.set_major_formatter(FuncFormatter(plain_number if plain else power_of_ten))
    ax.yaxis.set_minor_locator(FixedLocator(minor))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(low, high)


def plain_number(value, position=None):
    """0.0005, 0.5, 20, 1000: a tick value without an exponent (3 significant digits)."""
    return np.format_float_positional(float(f"{value:.3g}"), trim="-")


def power_of_ten(value, position=None):
    """10^-6 or 2x10^-6 as mathtext: a tick value as a power of ten."""
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = float(f"{value / 10.0**exponent:.3g}")
    if mantissa == 1:
        return f"$10^{{{exponent}}}$"
    return f"${mantissa:g}\\times10^{{{exponent}}}$"


def mark_off_axis(ax, x, values, color):
    """Mark the points a log axis cannot show, along its edges: values <= 0 as a down-triangle
    just above the bottom edge, inf and NaN as a cross just below the top edge. Returns the kinds
    marked (a subset of {"zero", "not finite"}) for the legend. Call after log_ticks (the
    limits are final)."""
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    x = np.asarray(x)
    low, high = ax.get_ylim()
    inset = (high / low) ** 0.03  # 3% of the axis in from the edge: clear of the title
    marked = set()
    for kind, chosen, y, marker in (
        ("zero", np.isfinite(values) & (values <= 0), low * inset, "v"),
        ("not finite", ~np.isfinite(values), high / inset, "x"),
    ):
        if chosen.any():
            ax.plot(
                x[chosen],
                np.full(chosen.sum(), y),
                linestyle="none",
                marker=marker,
                markersize=6,
                color=color,
                zorder=5,
            )
            marked.add(kind)
    return marked


OFF_AXIS_LABELS = {
    "zero": ("v", "0, off the log axis (along the bottom)"),
    "not finite": ("x", "inf or NaN: diverged (along the top)"),
}


def off_axis_handles(kinds):
    """Legend handles that say what the edge markers of mark_off_axis mean."""
    from matplotlib.lines import Line2D

    return [
        Line2D(
            [],
            [],
            linestyle="none",
            marker=OFF_AXIS_LABELS[kind][0],
            color="grey",
            label=OFF_AXIS_LABELS[kind][1],
        )
        for kind in ("zero", "not finite")
        if kind in kinds
    ]


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
                for level, style in DEEP_REFERENCES.items():
                    ax.axhline(level, color="grey", linewidth=0.8, **style)
                log_ticks(ax)
    # The schemes and chance (from an accuracy panel), then the reference levels (from a log one).
    handles, labels = axes[0][0].get_legend_handles_labels()
    for handle, label in zip(*axes[1][0].get_legend_handles_labels(), strict=True):
        if label in REFERENCE_LABELS:
            handles.append(handle)
            labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


def plot_phase_diagram(phase_rows, edge_rows, scheme_rows, points, path, title=""):
    """The mean-field phase diagram in (σ_w², σ_b²): q* and ξ_c as colour, the edge of chaos.

    phase_rows : dicts with weight_variance, bias_variance, q_star, xi_c (a full grid);
    edge_rows : dicts with bias_variance, critical_weight_variance (the line χ1 = 1);
    scheme_rows : dicts with scheme, weight_variance, bias_variance (a marker shape each, named
    with its σ_w² in the legend under the panels; σ_w² = 0 is drawn at the left edge);
    points : (label, σ_w², σ_b²) of the measured networks (red crosses).
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
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.6), constrained_layout=True)
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
            # A marker shape per scheme, named in the legend: labels written beside the markers
            # overlapped where schemes sit close (zeros and N(0, 0.01²); LeCun and He).
            ax.plot(
                max(row["weight_variance"], left),
                row["bias_variance"],
                marker=SCHEME_MARKERS[number % len(SCHEME_MARKERS)],
                markersize=8,
                color="white",
                markeredgecolor="k",
                linestyle="none",
                clip_on=False,
                zorder=4,
                label=_scheme_point_label(row, left),
            )
        for index, (_, wv, bv) in enumerate(points):
            ax.plot(
                wv,
                bv,
                marker="x",
                color="red",
                markersize=7,
                linestyle="none",
                label="measured networks (propagation.png)" if index == 0 else "_measured",
            )
        ax.set_xscale("log")
        ax.set_xlabel("σ_w² = fan_in · Var(W)")
        ax.set_ylabel("σ_b² = Var(b)")
        ax.set_title(label, fontsize=9)
        ax.set_xlim(weights[0], weights[-1])
        ax.set_ylim(biases[0], biases[-1])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=8)
    if title:
        fig.suptitle(title)
    output.save_figure(fig, path)
    return fig


# The named schemes' markers on the phase diagram, in scheme_rows' order.
SCHEME_MARKERS = ("o", "s", "D", "^", "v", "P", "*", "X")


def _scheme_point_label(row, left):
    """The legend entry of a scheme on the phase diagram: its name and where it is drawn."""
    if row["weight_variance"] < left:
        return f"{row['scheme']} (σ_w² = {row['weight_variance']:g}, drawn at the left edge)"
    return f"{row['scheme']} (σ_w² = {row['weight_variance']:.3g})"


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
