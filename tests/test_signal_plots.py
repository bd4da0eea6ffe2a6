"""Figures are written as PNG files without a display, including for signals that vanished,
exploded or overflowed, and the histogram layers are spread over the depth."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from initlab import Initializer  # noqa: E402
from initlab.studies import signal_plots  # noqa: E402
from initlab.studies.schemes import deep_mlp, parse_scheme  # noqa: E402
from initlab.tools.diagnostics import layer_signals, measure  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 40)), np.eye(3)[:, rng.integers(0, 3, 40)]


def _models(activation="relu"):
    X, Y = _data()
    return (
        {
            label: deep_mlp(
                parse_scheme(label),
                depth=6,
                width=10,
                n_inputs=6,
                n_outputs=3,
                activation=activation,
                seed=0,
            )
            for label in ("he", "random_normal:0.01", "random_normal:1000")
        },
        X,
        Y,
    )


def _is_png(path):
    with open(path, "rb") as handle:
        return handle.read(8) == PNG


def test_shown_layers_spread_from_first_to_last():
    assert signal_plots.shown_layers(3) == [0, 1, 2]
    assert signal_plots.shown_layers(20) == [0, 5, 10, 14, 19]
    assert signal_plots.shown_layers(50, at_most=3) == [0, 24, 49]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_std_and_histogram_figures_are_written(tmp_path, activation):
    models, X, Y = _models(activation)
    with np.errstate(all="ignore"):
        records = {label: measure(m, X, Y)[:-1] for label, m in models.items()}
        signals = {label: layer_signals(m, X, Y)[:-1] for label, m in models.items()}
    # random_normal:1000 over 6 relu layers overflows nothing, but 0.01 nearly vanishes: both
    # must plot, as must a scheme whose every signal is exactly zero.
    zeros = deep_mlp(
        parse_scheme("zeros"),
        depth=6,
        width=10,
        n_inputs=6,
        n_outputs=3,
        activation=activation,
        seed=0,
    )
    records["zeros"] = measure(zeros, X, Y)[:-1]
    signals["zeros"] = layer_signals(zeros, X, Y)[:-1]
    std_path, hist_path = tmp_path / "std.png", tmp_path / "hist.png"
    signal_plots.plot_signal_std(records, str(std_path), title="t")
    signal_plots.plot_histograms(signals, str(hist_path), activation=activation)
    assert _is_png(std_path) and _is_png(hist_path)


def test_training_figure_is_written(tmp_path):
    from initlab.tools.diagnostics import SignalRecorder

    X, Y = _data()
    model = deep_mlp(parse_scheme("he"), depth=3, width=8, n_inputs=6, n_outputs=3, seed=0)
    recorder = SignalRecorder(X, Y, epochs=[0, 2])
    initial = measure(model, X, Y)
    model.fit(X, Y, epochs=3, callbacks=[recorder])
    path = tmp_path / "training.png"
    signal_plots.plot_signal_std_over_training({"he": initial + recorder.records}, str(path))
    assert _is_png(path)


def test_deep_figure_is_written_with_non_finite_ratios(tmp_path):
    rows = [
        {
            "activation": a,
            "depth": d,
            "scheme": s,
            "test_accuracy": acc,
            "forward_variance_per_layer": r,
            "backward_variance_per_layer": None,
        }
        for a in ("relu", "tanh")
        for d, acc, r in ((1, 90.0, None), (5, 90.0, 1.1), (10, 80.0, float("inf")))
        for s in ("he", "x")
    ]
    path = tmp_path / "deep.png"
    signal_plots.plot_deep(rows, str(path))
    assert _is_png(path)


def test_large_initializer_values_do_not_break_the_histograms(tmp_path):
    X, Y = _data()
    model = deep_mlp(parse_scheme("he"), depth=3, width=8, n_inputs=6, n_outputs=3, seed=0)
    huge = Initializer(scale=1e120, seed=0)
    for layer in model.layers:
        layer.weights = huge((layer.units, layer.fan_in))[0]
    with np.errstate(all="ignore"):
        signals = layer_signals(model, X, Y)[:-1]
    path = tmp_path / "hist.png"
    signal_plots.plot_histograms({"huge": signals}, str(path), activation="relu")
    assert _is_png(path)


# --- the data each figure draws ----------------------------------------------------------------


def _records_and_signals(activation="relu"):
    models, X, Y = _models(activation)
    with np.errstate(all="ignore"):
        records = {label: measure(m, X, Y)[:-1] for label, m in models.items()}
        signals = {label: layer_signals(m, X, Y)[:-1] for label, m in models.items()}
    return records, signals


def test_std_figure_draws_each_schemes_std_per_layer_on_log_ticks_of_one_format(tmp_path):
    records, _ = _records_and_signals()
    figure = signal_plots.plot_signal_std(records, str(tmp_path / "std.png"))
    for ax, (field, _) in zip(figure.axes, signal_plots.STD_PANELS, strict=True):
        assert ax.get_yscale() == "log"
        for line, (label, scheme_records) in zip(ax.get_lines(), records.items(), strict=True):
            assert line.get_label() == label
            np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4, 5, 6])
            np.testing.assert_array_equal(
                line.get_ydata(), [getattr(r, field) for r in scheme_records]
            )
        _assert_one_tick_format(ax)


def test_histograms_draw_log10_magnitudes_of_each_shown_layer(tmp_path):
    _, signals = _records_and_signals("tanh")
    figure = signal_plots.plot_histograms(signals, str(tmp_path / "h.png"), activation="tanh")
    # A row per scheme, activations then gradients; the 0.01 and x1000 schemes put their values
    # decades apart, all drawn on one kind of axis: log10 |value|.
    assert len(figure.axes) == 2 * 3
    ax = figure.axes[2]  # random_normal:0.01, activations
    assert ax.get_xlabel() == "log10 |a|" and ax.get_title().startswith("random_normal:0.01")
    layers = signal_plots.shown_layers(6)
    steps = ax.patches
    assert [step.get_label() for step in steps] == [f"layer {i + 1}" for i in layers]
    for index, step in zip(layers, steps, strict=True):
        heights, edges, _ = step.get_data()
        values = signals["random_normal:0.01"][index]["activation"].ravel()
        expected, _ = np.histogram(np.log10(np.abs(values[values != 0])), bins=edges)
        np.testing.assert_allclose(heights, expected / values.size)
    # Layer 1's activations of N(0, 0.01²) weights sit near 10^-2, the last layer's decades below.
    first, last = (
        np.average((s.get_data()[1][:-1] + s.get_data()[1][1:]) / 2, weights=s.get_data()[0])
        for s in (steps[0], steps[-1])
    )
    assert -3 < first < -1 and last < first - 5


def test_training_figure_puts_many_schemes_in_a_grid(tmp_path):
    from initlab.tools.diagnostics import SignalRecorder

    X, Y = _data()
    by_scheme = {}
    for label in ("he", "glorot_uniform", "lecun_normal", "orthogonal", "random_normal:0.5"):
        model = deep_mlp(parse_scheme(label), depth=3, width=8, n_inputs=6, n_outputs=3, seed=0)
        recorder = SignalRecorder(X, Y, epochs=[0, 2])
        initial = measure(model, X, Y)[:-1]
        model.fit(X, Y, epochs=3, callbacks=[recorder])
        by_scheme[label] = initial + [r for r in recorder.records if r.layer <= 3]
    figure = signal_plots.plot_signal_std_over_training(by_scheme, str(tmp_path / "t.png"))
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(figure.axes) == 8 and len(visible) == 5  # two rows of four, three left empty
    width, height = figure.get_size_inches()
    assert width / height < 3  # not eight panels in a row
    ax = visible[4]
    assert ax.get_title() == "random_normal:0.5"
    epochs = [None, 0, 2]
    for line, epoch in zip(ax.get_lines(), epochs, strict=True):
        chosen = [r for r in by_scheme["random_normal:0.5"] if r.epoch == epoch]
        np.testing.assert_array_equal(line.get_ydata(), [r.activation_std for r in chosen])


def test_deep_figure_draws_accuracy_with_chance_and_tells_schemes_apart(tmp_path):
    rows = [
        {
            "activation": "relu",
            "depth": d,
            "scheme": s,
            "test_accuracy": acc,
            "forward_variance_per_layer": f,
            "backward_variance_per_layer": 0.9,
        }
        for s, accs, f in (
            ("he", (90.0, 80.0), 0.95),
            ("lsuv", (90.0, 80.0), 0.95),
            ("random_normal:10", (9.0, 9.5), 3000.0),
        )
        for d, acc in zip((5, 20), accs, strict=True)
    ]
    figure = signal_plots.plot_deep(rows, str(tmp_path / "deep.png"), chance=10)
    accuracy = figure.axes[0]
    lines = [
        line
        for line in accuracy.get_lines()
        if line.get_label() in ("he", "lsuv", "random_normal:10")
    ]
    assert [list(line.get_ydata()) for line in lines] == [[90.0, 80.0], [90.0, 80.0], [9.0, 9.5]]
    # he and lsuv coincide: their markers and line styles still differ.
    assert lines[0].get_marker() != lines[1].get_marker()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    (chance,) = [line for line in accuracy.get_lines() if line.get_label() == "chance (10%)"]
    assert list(chance.get_ydata()) == [10, 10]
    assert list(accuracy.get_xticks()) == [5, 20]
    forward = figure.axes[1]
    assert forward.get_yscale() == "log"
    # One format on the axis: plain numbers, 1000 never written 1e+03 beside 100.
    assert _tick_labels(forward) == ["1", "10", "100", "1000"]
    # The reference levels are drawn on every variance panel, and the legend names them.
    for ax in figure.axes[1:]:
        levels = {
            line.get_label(): (line.get_ydata()[0], line.get_linestyle())
            for line in ax.get_lines()
            if line.get_label() in signal_plots.REFERENCE_LABELS
        }
        assert levels == {
            "x 1 per layer: variance kept (He's aim)": (1.0, "-"),
            "x 1/2 per layer: Glorot's scale on relu": (0.5, ":"),
        }
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "he",
        "lsuv",
        "random_normal:10",
        "chance (10%)",
        *signal_plots.REFERENCE_LABELS,
    ]


def _tick_labels(ax):
    """The labels of the major ticks in view, as drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(ax.figure).draw()
    low, high = ax.get_ylim()
    return [
        tick.get_text()
        for tick, value in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
        if low <= value <= high and tick.get_text()
    ]


def _assert_one_tick_format(ax):
    """Every tick label of the axis is a plain number, or every one a power of ten."""
    labels = _tick_labels(ax)
    assert len(labels) >= 2, labels
    powers = [label.startswith("$") and "10^{" in label for label in labels]
    assert all(powers) or not any(powers), labels
    if not any(powers):
        assert all("e" not in label for label in labels), labels


@pytest.mark.parametrize(
    "limits, expected",
    [
        # Three or more decades: the decades, plain within 1e-4 .. 1e5.
        ((1e-3, 2e4), ["0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000"]),
        # Beyond: every label a power of ten, at most eight of them (every fifth of 33 decades).
        ((1e-14, 1e18), [f"$10^{{{k}}}$" for k in range(-10, 16, 5)]),
        # Less than a decade and a half: 1, 2 and 5 times the powers of ten.
        ((0.03, 0.3), ["0.05", "0.1", "0.2"]),
        # Less than a factor of three: every multiple.
        ((0.37, 0.95), ["0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]),
        ((3e5, 2e6), ["$5\\times10^{5}$", "$10^{6}$", "$2\\times10^{6}$"]),
    ],
)
def test_log_ticks_write_every_label_in_one_format(limits, expected):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    ax.plot([1, 2], limits)
    ax.set_yscale("log")
    ax.set_ylim(*limits)
    signal_plots.log_ticks(ax)
    assert _tick_labels(ax) == expected
    assert ax.get_ylim() == pytest.approx(limits)


def test_std_figure_draws_the_theory_as_its_legend_says(tmp_path):
    records, _ = _records_and_signals()
    predicted = {label: [r.activation_std * 1.1 for r in rs] for label, rs in records.items()}
    figure = signal_plots.plot_signal_std(records, str(tmp_path / "std.png"), predicted=predicted)
    ax = figure.axes[0]
    theory = [line for line in ax.get_lines() if line.get_label() == "_theory"]
    assert len(theory) == len(records)
    for line, (label, values) in zip(theory, predicted.items(), strict=True):
        np.testing.assert_allclose(line.get_ydata(), values)
        measured = next(line for line in ax.get_lines() if line.get_label() == label)
        assert line.get_color() == measured.get_color()
    # The legend's entry for the theory is drawn as the theory is, in a style no scheme has.
    legend = ax.get_legend()
    texts = [text.get_text() for text in legend.get_texts()]
    handle = legend.legend_handles[texts.index(signal_plots.THEORY_LABEL)]
    for line in theory:
        assert (line.get_linestyle(), line.get_linewidth(), line.get_alpha()) == (
            handle.get_linestyle(),
            handle.get_linewidth(),
            handle.get_alpha(),
        )
    schemes = [line for line in ax.get_lines() if line.get_label() in records]
    assert all(line.get_linewidth() < theory[0].get_linewidth() for line in schemes)
    assert "dashed" not in " ".join(texts) and "dotted" not in " ".join(texts)


def test_training_figure_names_its_axis_and_marks_what_a_log_axis_cannot_show(tmp_path):
    from types import SimpleNamespace

    def record(layer, epoch, std):  # the fields the figure reads of a LayerRecord
        return SimpleNamespace(layer=layer, epoch=epoch, activation_std=std)

    by_scheme = {
        "he": [record(k, e, 0.5 + 0.1 * k) for e in (None, 2) for k in (1, 2, 3)],
        "diverged": [record(k, None, 10.0**k) for k in (1, 2, 3)]
        + [record(1, 2, np.nan), record(2, 2, np.inf), record(3, 2, 0.0)],
    }
    figure = signal_plots.plot_signal_std_over_training(by_scheme, str(tmp_path / "t.png"))
    he, diverged = figure.axes[:2]
    assert he.get_ylabel() == "std of activations a (forward)"  # not the field's name
    low, high = diverged.get_ylim()
    markers = {
        line.get_marker(): line for line in diverged.get_lines() if line.get_marker() in "vx"
    }
    # NaN and inf (layers 1 and 2) along the top, the zero (layer 3) along the bottom.
    np.testing.assert_array_equal(markers["x"].get_xdata(), [1, 2])
    assert np.all(markers["x"].get_ydata() > high / 1.5)
    np.testing.assert_array_equal(markers["v"].get_xdata(), [3])
    assert np.all(markers["v"].get_ydata() < low * 1.5)
    texts = [text.get_text() for text in diverged.get_legend().get_texts()]
    assert texts == [
        "init",
        "epoch 2",
        *(label for _, label in signal_plots.OFF_AXIS_LABELS.values()),
    ]
    # A panel with nothing off the axis says nothing of it.
    assert [text.get_text() for text in he.get_legend().get_texts()] == ["init", "epoch 2"]


def _overlapping_texts(figure):
    """Pairs of visible, non-empty texts of the figure whose drawn boxes overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(figure)  # saved figures are closed: draw on a canvas of our own
    canvas.draw()
    renderer = canvas.get_renderer()
    # Tick labels are drawn only for ticks inside the view: leave out those of the others.
    hidden = set()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * abs(high - low) <= tick.get_loc() <= high * (1 + 1e-9):
                    hidden |= {id(tick.label1), id(tick.label2)}
    texts = [
        (text.get_text(), text.get_window_extent(renderer))
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text().strip() and id(text) not in hidden
    ]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(texts)
        for b, box_b in texts[i + 1 :]
        if box_a.overlaps(box_b)
    ]


def test_phase_diagram_names_each_scheme_in_a_legend_without_overlapping_labels(tmp_path):
    from initlab.studies import theory as study

    # Layers of 128 units put N(0, 0.01²) at σ_w² = 0.0128, beside zeros at the left edge, and
    # LeCun (1) beside He (2): where labels written beside the markers used to overlap.
    weights, biases = np.logspace(-2, np.log10(2 * 12800), 10), np.linspace(0, 0.5, 5)
    schemes = study.named_schemes(128)
    scheme_rows = study.scheme_table("tanh", schemes)
    points = study.propagation_points("tanh", [0.05])
    figure = signal_plots.plot_phase_diagram(
        study.phase_table("tanh", weights, biases),
        study.edge_table("tanh", biases),
        scheme_rows,
        points,
        str(tmp_path / "phase.png"),
        title="tanh",
    )
    assert _overlapping_texts(figure) == []
    (legend,) = figure.legends
    texts = [text.get_text() for text in legend.get_texts()]
    assert texts[0] == "edge of chaos (χ1 = 1)"
    assert texts[1:-1] == [
        "zeros (σ_w² = 0, drawn at the left edge)",
        "N(0, 0.01²) (σ_w² = 0.0128)",
        "LeCun / Glorot (σ_w² = 1)",
        "He (σ_w² = 2)",
        "randn x 10 (the post) (σ_w² = 1.28e+04)",
    ]
    assert texts[-1] == "measured networks (propagation.png)"
    for ax in figure.axes[:2]:  # the two panels (their colour bars come after)
        drawn = {line.get_label(): line for line in ax.get_lines()}
        markers = set()
        for (_, variance), label in zip(schemes, texts[1:-1], strict=True):
            line = drawn[label]
            assert line.get_xdata()[0] == max(variance, weights[0])
            assert line.get_ydata()[0] == 0.0
            markers.add(line.get_marker())
        assert len(markers) == len(schemes)  # told apart by shape, not by a label beside them
        crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
        assert [(c.get_xdata()[0], c.get_ydata()[0]) for c in crosses] == [
            (wv, bv) for _, wv, bv in points
        ]


def test_trainability_figure_draws_cells_curve_and_edge_where_the_data_put_them(tmp_path):
    cells = [
        {"depth": d, "weight_variance": wv, "test_accuracy": acc}
        for d, row in ((10, (90.0, 95.0, 80.0)), (40, (10.0, 70.0, 12.5)))
        for wv, acc in zip((1.0, 2.0, 4.0), row, strict=True)
    ][:-1]  # one cell missing: drawn as a gap, not as a number
    curve = [
        {"weight_variance": 1.0, "predicted_max_depth": 20.0},
        {"weight_variance": 1.76, "predicted_max_depth": float("inf")},
        {"weight_variance": 3.0, "predicted_max_depth": 50.0},
    ]
    figure = signal_plots.plot_trainability(cells, curve, 1.76, str(tmp_path / "t.png"), chance=10)
    ax = figure.axes[0]
    (mesh,) = ax.collections
    drawn = np.ma.filled(np.ma.masked_invalid(mesh.get_array()), np.nan).reshape(2, 3)
    np.testing.assert_array_equal(drawn, [[90.0, 95.0, 80.0], [10.0, 70.0, np.nan]])
    # Cells centred on their values: σ_w² edges at the midpoints, depth edges at geometric ones.
    np.testing.assert_allclose(ax.get_xlim(), (0.5, 5.0))
    np.testing.assert_allclose(ax.get_ylim(), (10 / 2, 40 * 2))
    (line,) = [line for line in ax.get_lines() if "6 ξ_c" in line.get_label()]
    np.testing.assert_array_equal(line.get_ydata(), [20.0, np.inf, 50.0])
    (edge,) = [line for line in ax.get_lines() if line.get_label().startswith("critical")]
    assert list(edge.get_xdata()) == [1.76, 1.76]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["90", "95", "80", "10", "70"])
