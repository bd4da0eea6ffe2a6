"""Summaries of a multi-seed study: means, Student-t confidence intervals, and the result files.

For values x_1 .. x_n from n independent seeds, the 95% confidence interval of the mean is
    mean +- t_{0.975, n-1} * s / sqrt(n),    s = the sample standard deviation (ddof = 1),
Student's t because s is estimated from only n values (Student, 1908). With one seed there is no
interval (None); with identical values it has width zero. An accuracy cannot leave [0, 100], so
its interval is clipped there (a symmetric t-interval can pass 100 when runs crowd near it).

    >>> summary = summarize([90.0, 92.0, 94.0])
    >>> round(summary["mean"], 6), round(summary["ci_low"], 3), round(summary["ci_high"], 3)
    (92.0, 87.032, 96.968)
"""

import csv
import io
import json
import math

import numpy as np

from initlab import environment
from initlab.studies.post_study import COST_THRESHOLD

CONFIDENCE = 0.95


def t_quantile(probability, dof):
    """The Student-t quantile t_{probability, dof}, from scipy (in the study extra)."""
    from scipy.stats import t

    return float(t.ppf(probability, dof))


ACCURACY_BOUNDS = (0.0, 100.0)


def summarize(values, confidence=CONFIDENCE, bounds=None):
    """{"mean", "ci_low", "ci_high", "min", "max", "n"} of values from independent seeds.

    bounds : (low, high) or None. The values' possible range: the interval is clipped to it.

    >>> summarize([99.0, 100.0, 100.0], bounds=ACCURACY_BOUNDS)["ci_high"]
    100.0
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size < 1:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {values.shape}")
    n = values.size
    mean = float(values.mean())
    if n > 1:
        half = t_quantile(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
        low, high = float(mean - half), float(mean + half)
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
    else:
        low = high = None
    return {
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "min": float(values.min()),
        "max": float(values.max()),
        "n": n,
    }


def summarize_epochs(epochs):
    """Summary of first-epoch-below-threshold values, where -1 means the run never got there."""
    epochs = np.asarray(epochs)
    reached = epochs[epochs >= 0]
    summary = {"reached": int(reached.size), "n": int(epochs.size)}
    if reached.size:
        summary.update(mean=float(reached.mean()), min=int(reached.min()), max=int(reached.max()))
    else:
        summary.update(mean=None, min=None, max=None)
    return summary


def representative_runs(result):
    """Per scheme, the run whose test accuracy is nearest that scheme's median (first on ties)."""
    accuracy = result.test_accuracy
    median = np.median(accuracy, axis=1, keepdims=True)
    return [int(i) for i in np.abs(accuracy - median).argmin(axis=1)]


def scheme_summaries(result):
    """One dict per scheme: its accuracies, cost and speed summarized over seeds, and the post's."""
    epochs_below = result.epoch_below(COST_THRESHOLD)
    representative = representative_runs(result)
    rows = []
    for s, scheme in enumerate(result.schemes):
        rows.append(
            {
                "scheme": scheme.name,
                "label": scheme.label,
                "train_accuracy": summarize(result.train_accuracy[s], bounds=ACCURACY_BOUNDS),
                "test_accuracy": summarize(result.test_accuracy[s], bounds=ACCURACY_BOUNDS),
                "final_cost": summarize(result.final_cost[s]),
                "epoch_cost_below": summarize_epochs(epochs_below[s]),
                "post": {"train_accuracy": scheme.post_train, "test_accuracy": scheme.post_test},
                "representative_run": representative[s],
            }
        )
    return rows


def run_rows(result):
    """One dict per (scheme, run): the run's seeds and numbers, enough to retrain it by hand."""
    epochs_below = result.epoch_below(COST_THRESHOLD)
    rows = []
    for s, scheme in enumerate(result.schemes):
        for run in result.runs:
            k = run.index
            rows.append(
                {
                    "scheme": scheme.name,
                    "run": k,
                    "train_data_seed": run.train_data_seed,
                    "test_data_seed": run.test_data_seed,
                    "weights_seed": run.weights_seed,
                    "train_accuracy": float(result.train_accuracy[s, k]),
                    "test_accuracy": float(result.test_accuracy[s, k]),
                    "final_cost": float(result.final_cost[s, k]),
                    "epoch_cost_below": _or_none(int(epochs_below[s, k])),
                }
            )
    return rows


SEEDING = (
    "Run k uses numpy SeedSequence(seed).spawn(seeds)[k]; its children 0, 1 and 2 give "
    "train_data_seed and test_data_seed (generate_state(1, uint32)[0], passed to make_moons as "
    "random_state) and weights_seed (generate_state(1, uint64)[0], passed to "
    "NeuralNetwork(seed=...)). Every scheme of run k uses the same data and weight seed."
)


def to_json(result):
    document = {
        "settings": result.settings,
        "seeding": SEEDING,
        "confidence_interval": (
            "95%, Student t over seeds: mean +- t(0.975, n-1) * s / sqrt(n), "
            "accuracies clipped to [0, 100]"
        ),
        "cost_threshold": COST_THRESHOLD,
        "schemes": scheme_summaries(result),
        "runs": run_rows(result),
        # What the numbers depend on: chaotic runs move with the BLAS and CPU, times with all.
        # The runs trained where trained_in says (a store's may have trained elsewhere); this
        # file, its tables and figures were made here.
        "environment": environment.describe(),
        "trained_in": result.trained_in,
    }
    return json.dumps(document, indent=2) + "\n"


CSV_COLUMNS = [
    "scheme",
    "label",
    "seeds",
    "train_mean",
    "train_ci_low",
    "train_ci_high",
    "train_min",
    "train_max",
    "test_mean",
    "test_ci_low",
    "test_ci_high",
    "test_min",
    "test_max",
    "final_cost_mean",
    "final_cost_min",
    "final_cost_max",
    "epoch_below_mean",
    "epoch_below_reached",
    "post_train",
    "post_test",
    "representative_run",
    "seed",
    "epochs",
    "learning_rate",
]


def to_csv(result):
    """One row per scheme; the settings are repeated as columns so that each row stands alone."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    settings = result.settings
    for row in scheme_summaries(result):
        train, test, cost = row["train_accuracy"], row["test_accuracy"], row["final_cost"]
        below = row["epoch_cost_below"]
        values = [
            row["scheme"],
            row["label"],
            train["n"],
            train["mean"],
            train["ci_low"],
            train["ci_high"],
            train["min"],
            train["max"],
            test["mean"],
            test["ci_low"],
            test["ci_high"],
            test["min"],
            test["max"],
            cost["mean"],
            cost["min"],
            cost["max"],
            below["mean"],
            below["reached"],
            row["post"]["train_accuracy"],
            row["post"]["test_accuracy"],
            row["representative_run"],
            settings["seed"],
            settings["epochs"],
            settings["learning_rate"],
        ]
        writer.writerow(
            ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in values]
        )
    return buffer.getvalue()


def _accuracy_cell(summary):
    if summary["ci_low"] is None:
        interval = "no CI (1 seed)"
    else:
        interval = f"[{summary['ci_low']:.1f}, {summary['ci_high']:.1f}]"
    return f"{summary['mean']:.1f} {interval} ({summary['min']:.1f}–{summary['max']:.1f})"


def _epoch_cell(summary):
    if summary["reached"] == 0:
        return "never"
    return f"{summary['mean']:.0f} ({summary['reached']}/{summary['n']} runs)"


def _post_cell(row):
    post = row["post"]
    if post["train_accuracy"] is None:
        return "—"
    return f"{post['train_accuracy']:g} / {post['test_accuracy']:g}"


# Printed under the table: how to read its accuracy cells.
TABLE_KEY = (
    "Accuracy cells: mean [95% confidence interval of the mean, Student t over seeds, "
    "clipped to 0-100] (min-max over seeds)."
)


def table(result):
    """The results table in Markdown (also what the command prints)."""
    header = [
        "Initialization",
        "Train accuracy %",
        "Test accuracy %",
        "Final cost",
        f"Epoch cost < {COST_THRESHOLD:g}",
        "Post (train / test)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in scheme_summaries(result):
        cost = row["final_cost"]
        cells = [
            row["label"],
            _accuracy_cell(row["train_accuracy"]),
            _accuracy_cell(row["test_accuracy"]),
            f"{cost['mean']:.4f} ({cost['min']:.4f}–{cost['max']:.4f})",
            _epoch_cell(row["epoch_cost_below"]),
            _post_cell(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(result, figures=("dataset.png", "costs.png", "boundaries.png")):
    settings = result.settings
    representative = ", ".join(
        f"{row['label']}: run {row['representative_run']}" for row in scheme_summaries(result)
    )
    parts = [
        "# The post's study over many seeds\n",
        f"{settings['seeds']} seeds (`--seed {settings['seed']}`), {settings['epochs']} epochs, "
        f"learning rate {settings['learning_rate']}, {settings['optimizer']}.  ",
        f"Data: {settings['data']}.  ",
        f"Model: {settings['model']}.\n",
        table(result),
        "Accuracy: percent of correct predictions (p > 0.5), as mean, 95% confidence interval "
        "of the mean (Student t over seeds) and min–max over seeds. Final cost: the training "
        "cost at the last epoch, mean (min–max). Epoch cost < "
        f"{COST_THRESHOLD:g}: the first epoch whose training cost is below it, averaged over the "
        "runs that got there. With few seeds the t-interval is wide and may pass 0 or 100; "
        "it is clipped to 0–100, the accuracies possible. Post: the post's single run, whose "
        '"accuracy" was '
        "100 · (1 − mean |Y − p|), so it is a guide rather than a like-for-like number.\n",
        f"Seeding: {SEEDING}\n",
        f"Decision boundaries are drawn for each scheme's median run by test accuracy "
        f"({representative}).\n",
        *[f"![{name[:-4]}]({name})\n" for name in figures],
    ]
    return "\n".join(parts)


def _or_none(epoch):
    return None if epoch < 0 else epoch
