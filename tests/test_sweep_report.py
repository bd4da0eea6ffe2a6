"""A sweep's report: the summary's numbers against scipy's t interval, and the data each figure
draws against the store."""

import json

import numpy as np
import pytest
from scipy import stats

from initlab.studies import sweep_report
from initlab.sweeps.runner import run_sweep
from initlab.sweeps.spec import parse_spec, plan_runs
from initlab.sweeps.store import Store

SPEC = """
[data]
train = 50
test = 20
[train]
epochs = 25
learning_rate = 0.2
[sweep]
seeds = 3
scheme = ["he", "random_normal:2"]
"""


@pytest.fixture(scope="module")
def two_axes(tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    spec = parse_spec(SPEC + "'model.hidden' = [[4], [3, 3], [5]]\n")
    run_sweep(spec, out, backend="serial", progress=False)
    return spec, out


def stored(out, spec):
    store = Store(out / "sweep.db")
    rows = {row["key"]: row for row in store.rows()}
    costs = {key: store.costs(key) for key in rows}
    store.close()
    by_configuration = []
    runs = plan_runs(spec)
    for settings in spec.configurations():
        keys = [run.key for run in runs if run.settings == settings and run.key in rows]
        by_configuration.append((settings, [rows[k] for k in keys], [costs[k] for k in keys]))
    return by_configuration


def test_summary_gives_mean_t_interval_and_range_per_configuration(two_axes):
    spec, out = two_axes
    paths = sweep_report.write_report(out)
    names = [path.rsplit("/", 1)[1] for path in paths]
    assert names == [
        "summary.md",
        "summary.csv",
        "summary.json",
        "costs.png",
        "heatmap.png",
        "spec.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    expected = stored(out, spec)
    assert len(summary) == 6
    for row, (settings, runs, _) in zip(summary, expected):
        assert row["model.scheme"] == settings["model.scheme"]
        assert row["model.hidden"] == "x".join(map(str, settings["model.hidden"]))
        assert row["seeds"] == 3
        for measure, short in sweep_report.MEASURES:
            values = np.array([run[measure] for run in runs])
            low, high = stats.t.interval(
                0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values)
            )
            # Clipped to what is possible: accuracies to [0, 100], losses to >= 0.
            top = 100.0 if "accuracy" in measure else np.inf
            low, high = max(low, 0.0), min(high, top)
            assert row[f"{short}_mean"] == pytest.approx(values.mean(), rel=1e-12)
            if values.std() > 0:
                assert (row[f"{short}_ci_low"], row[f"{short}_ci_high"]) == pytest.approx(
                    (low, high), rel=1e-9
                )
            assert (row[f"{short}_min"], row[f"{short}_max"]) == (values.min(), values.max())
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("| model.scheme | model.hidden | seeds | train accuracy % |")
    assert markdown.count("\n") == 2 + 6


def test_the_heat_map_draws_each_configurations_mean_test_accuracy(two_axes):
    spec, out = two_axes
    rows = sweep_report.summary_rows(spec, [(s, r) for s, r, _ in stored(out, spec)])
    figure = sweep_report.heatmap_figure(spec, rows)
    drawn = figure.axes[0].images[0].get_array()
    expected = np.array(
        [
            [
                np.mean([run["test_accuracy"] for run in runs])
                for settings, runs, _ in stored(out, spec)
                if settings["model.scheme"] == scheme
            ]
            for scheme in spec.axes["model.scheme"]
        ]
    )
    np.testing.assert_allclose(drawn, expected, rtol=1e-12)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["4", "3x3", "5"]


def test_the_cost_curves_are_the_mean_over_seeds(two_axes):
    spec, out = two_axes
    groups = stored(out, spec)
    costs = {run["key"]: c for _, runs, cs in groups for run, c in zip(runs, cs)}
    figure = sweep_report.cost_figure(spec, [(s, r) for s, r, _ in groups], costs)
    lines = figure.axes[0].get_lines()
    assert len(lines) == 6 and lines[0].get_label() == "he, 4"
    np.testing.assert_allclose(lines[3].get_ydata(), np.mean(groups[3][2], axis=0), rtol=1e-12)


def test_one_axis_draws_accuracy_with_intervals_and_a_partial_store_reports_its_runs(tmp_path):
    spec = parse_spec(SPEC)
    runs = plan_runs(spec)
    run_sweep(spec, tmp_path, backend="serial", progress=False)
    store = Store(tmp_path / "sweep.db")
    with store.connection:  # as if interrupted: the last run of 'he' not stored
        store.connection.execute("DELETE FROM costs WHERE key = ?", (runs[2].key,))
        store.connection.execute("DELETE FROM runs WHERE key = ?", (runs[2].key,))
    store.close()
    names = [path.rsplit("/", 1)[1] for path in sweep_report.write_report(tmp_path)]
    assert "accuracy.png" in names
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["seeds"] for row in summary] == [2, 3]
    groups = stored(tmp_path, spec)
    rows = sweep_report.summary_rows(spec, [(s, r) for s, r, _ in groups])
    figure = sweep_report.accuracy_figure(spec, rows)
    test_line = figure.axes[0].get_lines()[0]
    np.testing.assert_allclose(
        test_line.get_ydata(),
        [np.mean([run["test_accuracy"] for run in runs]) for _, runs, _ in groups],
    )


def test_three_axes_give_a_heat_map_per_value_of_the_third(tmp_path):
    spec = parse_spec(
        SPEC.replace("seeds = 3", "seeds = 1").replace("learning_rate = 0.2\n", "")
        + "'model.hidden' = [[4], [5]]\n'train.learning_rate' = [0.1, 0.2]\n"
    )
    run_sweep(spec, tmp_path, backend="serial", progress=False)
    names = [path.rsplit("/", 1)[1] for path in sweep_report.write_report(tmp_path)]
    assert [n for n in names if n.startswith("heatmap")] == ["heatmap-1.png", "heatmap-2.png"]
