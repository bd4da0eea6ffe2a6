"""The study's figures: readable PNGs of the expected size, drawing the study's own numbers."""

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from matplotlib.image import imread  # noqa: E402

from initlab.studies import plots  # noqa: E402
from initlab.studies.post_study import run_study  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    return run_study(seed=1, n_seeds=2, epochs=40, schemes=["random_normal"])


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=plots.DPI)
    data = buffer.getvalue()
    assert data.startswith(PNG_SIGNATURE)
    return imread(io.BytesIO(data), format="png")


def test_dataset_figure_scatters_the_runs_training_set_by_class_with_a_legend(result):
    figure = plots.dataset_figure(result, run=1)
    axes = figure.axes[0]
    X, Y = result.data[1][:2]
    for label, collection in zip((0, 1), axes.collections, strict=True):
        np.testing.assert_array_equal(collection.get_offsets(), X[:, Y[0] == label].T)
        assert collection.get_label() == f"class {label}"
    # Two colours, the Spectral map's ends, as the boundary figure's regions use.
    colors = [tuple(c.get_facecolor()[0]) for c in axes.collections]
    assert colors[0] != colors[1]
    legend = axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["class 0", "class 1"]
    assert legend.get_title().get_text() == "training samples"
    assert "run 1" in axes.get_title()
    assert _png(figure).shape[:2] == (450, 600)


def _band(collection):
    """(x, low, high) of a fill_between band, read back from its polygon."""
    vertices = collection.get_paths()[0].vertices
    xs = np.unique(vertices[:, 0])
    low = np.array([vertices[vertices[:, 0] == x, 1].min() for x in xs])
    high = np.array([vertices[vertices[:, 0] == x, 1].max() for x in xs])
    return xs, low, high


def test_cost_figure_draws_the_median_and_interquartile_band_per_scheme(result):
    figure = plots.cost_figure(result)
    axes = figure.axes[0]
    lines = axes.get_lines()
    assert len(lines) == len(result.schemes) == 4 == len(axes.collections)
    for s, (line, band) in enumerate(zip(lines, axes.collections, strict=True)):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(40))
        np.testing.assert_allclose(line.get_ydata(), np.median(result.costs[s], axis=0))
        xs, low, high = _band(band)
        np.testing.assert_array_equal(xs, np.arange(40))
        np.testing.assert_allclose(low, np.percentile(result.costs[s], 25, axis=0))
        np.testing.assert_allclose(high, np.percentile(result.costs[s], 75, axis=0))
        # Line and band share the scheme's colour; the schemes' colours all differ.
        assert line.get_color() == plots.SCHEME_COLORS[s]
        assert line.get_label() == result.schemes[s].label
    assert len({line.get_color() for line in lines}) == 4
    assert axes.get_yscale() == "log" and axes.get_xlabel() == "epoch"
    assert "median" in axes.get_title() and "interquartile" in axes.get_title()
    assert _png(figure).shape[:2] == (500, 800)


def test_boundary_figure_has_one_panel_per_scheme_naming_its_run_and_a_legend(result):
    figure = plots.boundary_figure(result, runs=[0, 1, 0, 1], step=0.05)
    assert len(figure.axes) == 4
    assert "run 1" in figure.axes[1].get_title()
    assert f"{result.test_accuracy[3, 1]:.1f}%" in figure.axes[3].get_title()
    # Each panel's dots are its run's training samples, split by true class.
    X, Y = result.data[1][:2]
    dots = figure.axes[1].collections[-2:]
    for label, collection in zip((0, 1), dots, strict=True):
        np.testing.assert_array_equal(collection.get_offsets(), X[:, Y[0] == label].T)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "training samples, class 0",
        "training samples, class 1",
        "predicted class 0",
        "predicted class 1",
    ]
    # Four schemes wrap into two rows of three columns, and a strip for the legend.
    assert _png(figure).shape[:2] == (890, 1500)
