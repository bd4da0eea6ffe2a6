"""Summaries and result files: Student-t intervals, and tables that hold the runs' own numbers."""

import csv
import io
import json
import math

import numpy as np
import pytest

pytest.importorskip("scipy")

from initlab.studies import report  # noqa: E402
from initlab.studies.post_study import POST_SCHEMES, RunSeeds, StudyResult  # noqa: E402

# t_{0.975, dof} from the published table (e.g. NIST/SEMATECH e-Handbook, 1.3.6.7.2).
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262}


@pytest.mark.parametrize("dof", sorted(T_TABLE))
def test_t_quantile_matches_the_published_table(dof):
    assert report.t_quantile(0.975, dof) == pytest.approx(T_TABLE[dof], abs=5e-4)


def test_summarize_is_the_student_t_interval_of_the_mean():
    values = [88.0, 91.5, 95.25, 90.0, 97.0, 93.5, 89.0, 96.0, 92.0, 94.75]
    summary = report.summarize(values)
    mean = sum(values) / 10
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 9)
    half = T_TABLE[9] * s / math.sqrt(10)
    assert summary["mean"] == pytest.approx(mean, rel=1e-15)
    assert summary["ci_low"] == pytest.approx(mean - half, abs=5e-4 * s)
    assert summary["ci_high"] == pytest.approx(mean + half, abs=5e-4 * s)
    assert (summary["min"], summary["max"], summary["n"]) == (88.0, 97.0, 10)


def test_summarize_one_seed_has_no_interval_and_equal_values_a_zero_width_one():
    assert report.summarize([70.0])["ci_low"] is None
    assert report.summarize([70.0])["ci_high"] is None
    same = report.summarize([50.0, 50.0, 50.0])
    assert same["ci_low"] == same["ci_high"] == 50.0


def test_summarize_rejects_empty_input():
    with pytest.raises(ValueError, match="values"):
        report.summarize([])


def test_summarize_epochs_counts_only_runs_that_reached_the_threshold():
    assert report.summarize_epochs([100, -1, 300]) == {
        "reached": 2,
        "n": 3,
        "mean": 200.0,
        "min": 100,
        "max": 300,
    }
    assert report.summarize_epochs([-1, -1])["mean"] is None


@pytest.fixture
def result():
    """A hand-made study: 3 schemes x 3 runs x 4 epochs, with known numbers."""
    schemes = list(POST_SCHEMES.values())
    costs = np.array(
        [
            [[0.6931] * 4] * 3,
            [[9.0, 2.0, 0.5, 0.4], [8.0, 0.2, 0.25, 0.1], [7.0, 1.0, 0.29, 0.2]],
            [[0.7, 0.5, 0.2, 0.1], [0.7, 0.4, 0.31, 0.3], [0.7, 0.6, 0.29, 0.15]],
        ]
    )
    train = np.array([[50.0, 50.0, 50.0], [80.0, 95.0, 90.0], [96.0, 97.0, 95.5]])
    test = np.array([[50.0, 50.0, 50.0], [78.0, 93.0, 88.0], [94.0, 99.0, 95.0]])
    runs = [RunSeeds(k, 10 + k, 20 + k, 30 + k) for k in range(3)]
    settings = {
        "seed": 4,
        "seeds": 3,
        "epochs": 4,
        "learning_rate": 0.01,
        "data": "d",
        "model": "m",
        "optimizer": "o",
        "schemes": [s.name for s in schemes],
    }
    return StudyResult(settings, schemes, runs, costs, train, test, data=[], models=[])


def test_representative_run_is_the_median_by_test_accuracy(result):
    assert report.representative_runs(result) == [0, 2, 2]


def test_json_holds_the_runs_numbers_and_their_summaries(result):
    document = json.loads(report.to_json(result))
    assert document["settings"]["seed"] == 4
    he = document["schemes"][2]
    assert he["test_accuracy"]["mean"] == pytest.approx(96.0)
    assert (he["test_accuracy"]["min"], he["test_accuracy"]["max"]) == (94.0, 99.0)
    assert he["final_cost"]["mean"] == pytest.approx((0.1 + 0.3 + 0.15) / 3)
    assert he["epoch_cost_below"] == {"reached": 2, "n": 3, "mean": 2.0, "min": 2, "max": 2}
    assert he["post"] == {"train_accuracy": 95, "test_accuracy": 94}
    runs = [r for r in document["runs"] if r["scheme"] == "random_normal_x10"]
    assert [r["epoch_cost_below"] for r in runs] == [None, 1, 2]
    assert [r["weights_seed"] for r in runs] == [30, 31, 32]
    assert [r["train_accuracy"] for r in runs] == [80.0, 95.0, 90.0]


def test_accuracy_intervals_are_clipped_to_what_is_possible(result):
    # He's test accuracies 94, 99, 95: mean 96, t-interval 96 +- 4.303 * s / sqrt(3), s = sqrt(7).
    half = T_TABLE[2] * math.sqrt(7) / math.sqrt(3)
    assert 96 + half > 100
    he = json.loads(report.to_json(result))["schemes"][2]["test_accuracy"]
    assert he["ci_high"] == 100.0
    assert he["ci_low"] == pytest.approx(96 - half, abs=1e-3)
    assert "[89.4, 100.0]" in report.table(result)
    assert "clipped to 0-100" in report.TABLE_KEY
    # Unbounded quantities keep the plain t-interval.
    assert report.summarize([94.0, 99.0, 95.0])["ci_high"] == pytest.approx(96 + half, abs=1e-3)


def test_json_records_the_environment_the_numbers_depend_on(result):
    environment = json.loads(report.to_json(result))["environment"]
    assert environment["numpy"] == np.__version__
    assert environment["blas"]["name"] and environment["cpu"]["cores"] >= 1


def test_csv_rows_agree_with_the_summaries(result):
    rows = list(csv.DictReader(io.StringIO(report.to_csv(result))))
    assert [r["scheme"] for r in rows] == ["zeros", "random_normal_x10", "he"]
    summary = report.summarize(result.train_accuracy[1])
    assert float(rows[1]["train_mean"]) == summary["mean"]
    assert float(rows[1]["train_ci_low"]) == summary["ci_low"]
    assert rows[0]["epoch_below_mean"] == "" and rows[0]["epoch_below_reached"] == "0"
    assert (rows[2]["post_train"], rows[2]["post_test"], rows[2]["epochs"]) == ("95", "94", "4")


def test_markdown_table_prints_the_summaries(result):
    text = report.to_markdown(result)
    summary = report.summarize(result.test_accuracy[1], bounds=report.ACCURACY_BOUNDS)
    expected = (
        f"{summary['mean']:.1f} [{summary['ci_low']:.1f}, {summary['ci_high']:.1f}] (78.0–93.0)"
    )
    assert expected in text
    assert "| Zeros | 50.0 [50.0, 50.0] (50.0–50.0) |" in text
    assert "never" in text and "85 / 82" in text and "Student t" in text
    assert "![costs](costs.png)" in text
    assert report.table(result) in text
