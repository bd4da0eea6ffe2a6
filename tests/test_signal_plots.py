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
    return {label: deep_mlp(parse_scheme(label), depth=6, width=10, n_inputs=6, n_outputs=3,
                            activation=activation, seed=0)
            for label in ("he", "random_normal:0.01", "random_normal:1000")}, X, Y


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
    zeros = deep_mlp(parse_scheme("zeros"), depth=6, width=10, n_inputs=6, n_outputs=3,
                     activation=activation, seed=0)
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
    rows = [{"activation": a, "depth": d, "scheme": s, "test_accuracy": acc,
             "forward_variance_per_layer": r, "backward_variance_per_layer": None}
            for a in ("relu", "tanh") for d, acc, r in ((1, 90.0, None), (5, 90.0, 1.1),
                                                        (10, 80.0, float("inf")))
            for s in ("he", "x")]
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
