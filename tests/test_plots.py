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


def test_dataset_figure_scatters_the_runs_training_set(result):
    figure = plots.dataset_figure(result, run=1)
    offsets = figure.axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(offsets, result.data[1][0].T)
    assert _png(figure).shape[:2] == (450, 600)


def test_cost_figure_draws_the_mean_over_seeds_per_scheme(result):
    figure = plots.cost_figure(result)
    axes = figure.axes[0]
    lines = axes.get_lines()
    assert len(lines) == len(result.schemes) == 4
    for s, line in enumerate(lines):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(40))
        np.testing.assert_allclose(line.get_ydata(), result.costs[s].mean(axis=0))
    assert axes.get_xlabel() == "epoch"
    assert _png(figure).shape[:2] == (500, 800)


def test_boundary_figure_has_one_panel_per_scheme_naming_its_run(result):
    figure = plots.boundary_figure(result, runs=[0, 1, 0, 1], step=0.05)
    assert len(figure.axes) == 4
    assert "run 1" in figure.axes[1].get_title()
    assert f"{result.test_accuracy[3, 1]:.1f}%" in figure.axes[3].get_title()
    # Four schemes wrap into two rows of three columns.
    assert _png(figure).shape[:2] == (840, 1500)
