"""A sweep's report: per configuration, mean, 95% interval and range over seeds; figures by axes.

    write_report("results/sweep")    # reads results/sweep/sweep.db, writes beside it

Files written: summary.{md,csv,json} (one row per configuration that has runs stored: its axis
values, the number of seeds, and train accuracy, test accuracy and final loss as mean, Student-t
95% interval of the mean (studies.report.summarize) and min-max over seeds); costs.png (the mean
training cost of every configuration over epochs); then, chosen from the axes:
    one axis        accuracy.png: mean test and train accuracy with their intervals over the axis
    two axes        heatmap.png: mean test accuracy over the first axis (rows) x the second
    more axes       heatmap-1.png, ...: the same for each combination of the others (up to 12)
The store may be incomplete (a sweep still running or interrupted): the report covers the runs
stored, and a configuration's n says how many.
"""

import itertools
import json
import os

import numpy as np

from initlab.studies import output, report
from initlab.studies.plots import DPI, new_figure
from initlab.sweeps.runner import STORE_NAME, open_store
from initlab.sweeps.spec import Spec, plan_runs

MEASURES = (("train_accuracy", "train"), ("test_accuracy", "test"), ("final_loss", "loss"))
MAX_HEATMAPS = 12
FIGURES = ("costs.png", "accuracy.png", "heatmap.png")


def axis_label(key, value):
    """How an axis value is written in tables and figures: scheme texts and numbers as they are,
    a layer list as 12x6."""
    if isinstance(value, list):
        return "x".join(map(str, value))
    return str(value)


def load(out):
    """(spec, [(configuration, rows)], costs by key) of the sweep stored in `out`."""
    if not os.path.exists(os.path.join(out, STORE_NAME)):
        raise ValueError(f"--report {out!r} holds no sweep ({STORE_NAME} is missing)")
    store = open_store(out)
    try:
        stored = store.get_meta("spec")
        if stored is None:
            raise ValueError(f"--report {out!r}: its store has no spec yet")
        spec = Spec.from_json(stored)
        runs = plan_runs(spec)
        rows = {row["key"]: row for row in store.rows()}
        groups = []
        for settings in spec.configurations():
            keys = [run.key for run in runs if run.settings == settings]
            found = [rows[key] for key in keys if key in rows]
            if found:
                groups.append((settings, found))
        costs = {row["key"]: store.costs(row["key"]) for _, found in groups for row in found}
    finally:
        store.close()
    return spec, groups, costs


def summary_rows(spec, groups):
    """One dict per configuration: its axis values, n, and each measure's summary, flat."""
    rows = []
    for settings, found in groups:
        row = {key: axis_label(key, settings[key]) for key in spec.axes}
        row["seeds"] = len(found)
        for measure, short in MEASURES:
            # An accuracy cannot leave [0, 100] nor a loss go below 0: intervals are clipped.
            bounds = report.ACCURACY_BOUNDS if "accuracy" in measure else (0.0, float("inf"))
            summary = report.summarize([run[measure] for run in found], bounds=bounds)
            row.update(
                {
                    f"{short}_mean": summary["mean"],
                    f"{short}_ci_low": summary["ci_low"],
                    f"{short}_ci_high": summary["ci_high"],
                    f"{short}_min": summary["min"],
                    f"{short}_max": summary["max"],
                }
            )
        rows.append(row)
    return rows


def _interval(row, short, digits):
    if row[f"{short}_ci_low"] is None:
        return f"{row[f'{short}_mean']:.{digits}f} (1 seed)"
    return (
        f"{row[f'{short}_mean']:.{digits}f} [{row[f'{short}_ci_low']:.{digits}f}, "
        f"{row[f'{short}_ci_high']:.{digits}f}] ({row[f'{short}_min']:.{digits}f}–"
        f"{row[f'{short}_max']:.{digits}f})"
    )


def markdown_columns(spec):
    return (
        [(key, key, "s") for key in spec.axes]
        + [("seeds", "seeds", "d")]
        + [
            (f"{short}_cell", title, "s")
            for short, title in (
                ("train", "train accuracy %"),
                ("test", "test accuracy %"),
                ("loss", "final loss"),
            )
        ]
    )


def cost_figure(spec, groups, costs):
    """The mean training cost over seeds of every configuration, by epoch (log scale)."""
    figure = new_figure(7, 4.5)
    axes = figure.add_subplot()
    for settings, found in groups:
        curves = np.stack([costs[run["key"]] for run in found])
        label = ", ".join(axis_label(key, settings[key]) for key in spec.axes) or "all runs"
        with np.errstate(invalid="ignore"):
            axes.plot(np.arange(curves.shape[1]), curves.mean(axis=0), label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("training cost, mean over seeds")
    axes.set_yscale("log")
    if len(groups) <= 12:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def accuracy_figure(spec, rows):
    """Mean test and train accuracy with 95% intervals over the one axis."""
    (key,) = spec.axes
    figure = new_figure(6.5, 4.5)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))
    for short, marker in (("test", "o"), ("train", "s")):
        means = np.array([row[f"{short}_mean"] for row in rows])
        low = np.array(
            [
                row[f"{short}_ci_low"]
                if row[f"{short}_ci_low"] is not None
                else row[f"{short}_mean"]
                for row in rows
            ]
        )
        high = np.array(
            [
                row[f"{short}_ci_high"]
                if row[f"{short}_ci_high"] is not None
                else row[f"{short}_mean"]
                for row in rows
            ]
        )
        axes.errorbar(
            positions,
            means,
            yerr=[means - low, high - means],
            marker=marker,
            capsize=3,
            label=f"{short} accuracy (95% interval)",
        )
    axes.set_xticks(positions, [row[key] for row in rows])
    axes.set_xlabel(key)
    axes.set_ylabel("accuracy %, mean over seeds")
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def heatmap_figure(spec, rows, fixed=None):
    """Mean test accuracy over the first axis (rows) x the second (columns); cells without runs
    are blank. `fixed` maps the other axes to the labels this map holds them at."""
    first, second = list(spec.axes)[:2]
    fixed = fixed or {}
    labels_1 = [axis_label(first, v) for v in spec.axes[first]]
    labels_2 = [axis_label(second, v) for v in spec.axes[second]]
    grid = np.full((len(labels_1), len(labels_2)), np.nan)
    for row in rows:
        if all(row[key] == label for key, label in fixed.items()):
            grid[labels_1.index(row[first]), labels_2.index(row[second])] = row["test_mean"]
    figure = new_figure(1.2 * len(labels_2) + 3, 0.6 * len(labels_1) + 2.2)
    axes = figure.add_subplot()
    image = axes.imshow(
        grid, cmap="viridis", vmin=np.nanmin(grid) if np.isfinite(grid).any() else 0, aspect="auto"
    )
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            axes.text(
                j, i, f"{value:.1f}", ha="center", va="center", color="white", fontsize="small"
            )
    axes.set_xticks(range(len(labels_2)), labels_2)
    axes.set_yticks(range(len(labels_1)), labels_1)
    axes.set_xlabel(second)
    axes.set_ylabel(first)
    title = "test accuracy %, mean over seeds"
    if fixed:
        title += "\n" + ", ".join(f"{key} = {label}" for key, label in fixed.items())
    axes.set_title(title, fontsize="medium")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def axis_figures(spec, rows):
    """{file name: figure} chosen from the spec's axes (see the module docstring)."""
    if len(spec.axes) == 1:
        return {"accuracy.png": accuracy_figure(spec, rows)}
    if len(spec.axes) == 2:
        return {"heatmap.png": heatmap_figure(spec, rows)}
    if len(spec.axes) > 2:
        others = list(spec.axes)[2:]
        combos = itertools.product(*[[axis_label(k, v) for v in spec.axes[k]] for k in others])
        return {
            f"heatmap-{i}.png": heatmap_figure(spec, rows, dict(zip(others, combo)))
            for i, combo in enumerate(itertools.islice(combos, MAX_HEATMAPS), start=1)
        }
    return {}


def write_report(out):
    """Write the tables and figures of the sweep stored in `out` into it; return the paths."""
    out = os.path.abspath(os.fspath(out))
    spec, groups, costs = load(out)
    if not groups:
        raise ValueError(f"--report {out!r}: no run of its sweep is stored yet")
    rows = summary_rows(spec, groups)
    for row in rows:
        row.update(
            {
                f"{short}_cell": _interval(row, short, 4 if short == "loss" else 1)
                for _, short in MEASURES
            }
        )
    table_rows = [
        {key: value for key, value in row.items() if not key.endswith("_cell")} for row in rows
    ]
    figures = {"costs.png": cost_figure(spec, groups, costs), **axis_figures(spec, table_rows)}
    names = ["summary.md", "summary.csv", "summary.json", *figures, "spec.json"]
    # Written beside out, then swapped in: the tables and figures always come from one report.
    with output.staged(out) as stage:
        output.write_table(table_rows, stage, "summary", markdown_columns(spec))
        # The markdown table shows each measure in one cell; the CSV and JSON keep every number.
        output.write_atomic(
            os.path.join(stage, "summary.md"),
            output.markdown_table(rows, markdown_columns(spec)) + "\n",
        )
        for name, figure in figures.items():
            output.save_figure(figure, os.path.join(stage, name), dpi=DPI)
        output.write_atomic(
            os.path.join(stage, "spec.json"),
            json.dumps(json.loads(spec.to_json()), indent=1) + "\n",
        )
    return [os.path.join(out, name) for name in names]
