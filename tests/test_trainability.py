"""trainability: near the edge of chaos a deep tanh network learns digits, far from it not; the
command writes tables holding exactly what it trained and what the theory predicts, resumes after
SIGKILL to the same rows, and refuses bad arguments in one line naming them."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from initlab.cli import main  # noqa: E402
from initlab.studies import signal_plots  # noqa: E402
from initlab.studies import trainability as study  # noqa: E402
from initlab.studies.trainability import DEPTH_MULTIPLE, trainability  # noqa: E402
from initlab.tools import theory  # noqa: E402

TINY = [
    "trainability",
    "--depths",
    "2,3",
    "--weight-variances",
    "0.5",
    "1.76",
    "--width",
    "6",
    "--epochs",
    "1",
    "--seeds",
    "2",
    "--backend",
    "serial",
]


def test_a_first_run_says_it_compiles_before_training(new_machine, tmp_path, monkeypatch, capsys):
    from initlab.sweeps import runner

    monkeypatch.setattr(runner, "run_records", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(TINY + ["--out", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    # After the line that says what will train: one kernel serves both depths.
    assert lines[0].startswith("8 networks") and lines[1].startswith(
        "Compiling the training kernel for this machine"
    ), lines


def _load(path):
    with open(path) as handle:
        return json.load(handle)


def test_deep_tanh_trains_on_the_edge_and_not_far_from_it():
    # 16 layers of 32 units, 4 epochs at 0.05: ordered (0.5), critical (1.76 at σ_b² = 0.05),
    # chaotic (8).
    rows = trainability(
        depths=(16,),
        weight_variances=(0.5, 1.76, 8.0),
        seeds=(0,),
        width=32,
        epochs=4,
        learning_rate=0.05,
    )
    accuracy = {row["weight_variance"]: row["test_accuracy"] for row in rows}
    assert accuracy[1.76] > 30  # measured 42% (chance is 10%)
    assert accuracy[0.5] < 15 and accuracy[8.0] < 15
    for row in rows:
        xi_c = theory.depth_scales("tanh", row["weight_variance"], 0.05)[1]
        assert row["predicted_max_depth"] == pytest.approx(DEPTH_MULTIPLE * xi_c)
    assert [16 <= row["predicted_max_depth"] for row in rows] == [False, True, True]


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="depths must be an integer >= 1, got 0"):
        trainability(depths=(0,))
    with pytest.raises(ValueError, match="must each list at least one value"):
        trainability(seeds=())
    with pytest.raises(ValueError, match="depths lists a value more than once"):
        trainability(depths=(2, 2))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The command at tiny size, with the figure it drew kept for the tests to read."""
    out = tmp_path_factory.mktemp("trainability") / "out"
    drawn = []
    original = signal_plots.plot_trainability

    def keep(*args, **kwargs):
        drawn.append(original(*args, **kwargs))
        return drawn[-1]

    signal_plots.plot_trainability = keep
    try:
        assert main(TINY + ["--out", str(out), "--quiet"]) == 0
    finally:
        signal_plots.plot_trainability = original
    (figure,) = drawn
    return out, figure


def test_writes_every_file_and_one_row_per_network(tiny_run):
    out, _ = tiny_run
    assert sorted(os.listdir(out)) == sorted(study.OUTPUTS + ("sweep.db",))
    with open(out / "trainability.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    runs = _load(out / "runs.json")
    assert [(r["depth"], r["weight_variance"], r["seed"]) for r in runs] == [
        (d, wv, s) for d in (2, 3) for wv in (0.5, 1.76) for s in (0, 1)
    ]
    assert {r["width"] for r in runs} == {6} and {r["bias_variance"] for r in runs} == {0.05}
    config = _load(out / "config.json")
    assert config["seeds"] == [0, 1] and config["runs"] == 8 and config["depth_multiple"] == 6
    assert sum(where["runs"] for where in config["trained_in"]) == 8
    assert config["critical_weight_variance"] == pytest.approx(
        theory.critical_weight_variance("tanh", 0.05), rel=1e-12
    )


def test_cell_table_is_the_runs_summed_up_beside_the_theory(tiny_run):
    out, _ = tiny_run
    runs, cells = _load(out / "runs.json"), _load(out / "trainability.json")
    assert len(cells) == 4
    for cell in cells:
        accuracy = [
            r["test_accuracy"]
            for r in runs
            if (r["depth"], r["weight_variance"]) == (cell["depth"], cell["weight_variance"])
        ]
        assert cell["test_accuracy"] == pytest.approx(np.mean(accuracy), rel=1e-12)
        assert (cell["test_accuracy_min"], cell["test_accuracy_max"]) == (
            min(accuracy),
            max(accuracy),
        )
        xi_c = theory.depth_scales("tanh", cell["weight_variance"], 0.05)[1]
        assert cell["xi_c"] == pytest.approx(xi_c, rel=1e-12)
        assert cell["predicted_max_depth"] == pytest.approx(6 * xi_c, rel=1e-12)
        assert cell["predicted_trainable"] == (cell["depth"] <= 6 * xi_c)


def test_figure_draws_the_tables_accuracy_and_six_xi_c(tiny_run):
    out, figure = tiny_run
    cells, curve = _load(out / "trainability.json"), _load(out / "prediction.json")
    ax = figure.axes[0]
    (mesh,) = ax.collections
    drawn = np.asarray(mesh.get_array()).reshape(2, 2)  # rows: depths 2, 3; columns: σ_w²
    expected = {(c["depth"], c["weight_variance"]): c["test_accuracy"] for c in cells}
    np.testing.assert_array_equal(
        drawn, [[expected[(d, wv)] for wv in (0.5, 1.76)] for d in (2, 3)]
    )
    (line,) = [line for line in ax.get_lines() if "6 ξ_c" in line.get_label()]
    x, y = line.get_xdata(), line.get_ydata()
    assert list(x) == [row["weight_variance"] for row in curve]
    # The curve spans the cells drawn: half a step beyond 1.76, and from (nearly) 0 below 0.5.
    assert x[0] == pytest.approx(1e-3)
    assert x[-1] == pytest.approx(1.76 + 0.63)
    theory_depth = 6 * np.asarray(theory.depth_scales("tanh", x, 0.05)[1])
    finite = np.isfinite(theory_depth)
    np.testing.assert_allclose(y[finite], theory_depth[finite], rtol=1e-12)
    critical = theory.critical_weight_variance("tanh", 0.05)
    # On the edge itself ξ_c diverges: the curve leaves the axis there.
    assert critical in x and y[list(x).index(critical)] > 1e6
    (edge,) = [line for line in ax.get_lines() if line.get_label().startswith("critical")]
    assert list(edge.get_xdata()) == [critical, critical]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "3"]


def test_prints_the_estimate_and_the_grid_and_quiet_prints_nothing(tmp_path, capsys):
    assert main(TINY + ["--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("8 networks: depths 2-3, σ_w² 0.5-1.76, width 6, 1 epochs")
    assert "Estimated" in printed and "| 6 ξ_c | 7.15 |" in printed
    assert main(TINY + ["--out", str(tmp_path / "b"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_full_is_the_papers_shape_and_options_still_apply():
    import argparse

    parser = argparse.ArgumentParser()
    study.add_arguments(parser)
    grid = study.check_arguments(parser.parse_args(["--full", "--out", "x"]))
    assert grid["depths"][0] == 10 and grid["depths"][-1] == 300 and len(grid["depths"]) == 30
    assert grid["weight_variances"][0] == 1.0 and grid["weight_variances"][-1] == 4.0
    assert len(grid["weight_variances"]) == 31 and grid["width"] == 300
    seconds = study.estimated_seconds(
        grid["depths"], 31 * len(grid["seeds"]), 300, grid["epochs"], 32, 1348
    )
    assert seconds > 24 * 3600  # a cluster's job: days of one core
    grid = study.check_arguments(parser.parse_args(["--full", "--width", "50", "--out", "x"]))
    assert grid["width"] == 50 and len(grid["depths"]) == 30


def test_interrupted_it_keeps_finished_networks_in_one_line(tmp_path, capsys, monkeypatch):
    original, calls = study.train_networks, []

    def train_then_interrupt(items):
        calls.append(items)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(items)

    monkeypatch.setattr(study, "train_networks", train_then_interrupt)
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)]) == 130
    kept = sum(len(items) for items in calls[:2])
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"initlab trainability: interrupted; {kept} of 8 networks are kept in "
        f"{out / 'sweep.db'}. Resume with the same command."
    )
    assert sorted(os.listdir(out)) == ["sweep.db"]


KILLED_RUN = """
import sys, time
from initlab.cli import main
from initlab.studies import trainability
original, calls = trainability.train_networks, []
def slow(items):
    calls.append(items)
    if len(calls) > 1:
        time.sleep(600)  # the test kills the process here, one group stored
    return original(items)
trainability.train_networks = slow
sys.exit(main(sys.argv[1:]))
"""


def test_resumes_after_sigkill_to_the_rows_of_an_uninterrupted_run(tmp_path, capsys):
    from initlab.sweeps.store import Store

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(TINY + ["--out", str(whole), "--quiet"]) == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, *TINY, "--out", str(cut), "--quiet"], env=env
    )
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while not stored and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            if (cut / "sweep.db").exists():
                store = Store(cut / "sweep.db")
                stored = len(store.records())
                store.close()
        assert stored, "the killed run stored nothing in time"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert sorted(os.listdir(cut)) == ["sweep.db"] or "trainability.png" not in os.listdir(cut)
    store = Store(cut / "sweep.db")
    assert 0 < len(store.records()) < 8  # one group stored, the rest left to the next run
    store.close()
    assert main(TINY + ["--out", str(cut), "--quiet"]) == 0
    assert _load(cut / "runs.json") == _load(whole / "runs.json")
    assert (cut / "trainability.csv").read_text() == (whole / "trainability.csv").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--depths", "0,5"], "--depths must be an integer >= 1, got 0"),
        (["--depths", "5,x"], "--depths must be integers >= 1"),
        (["--weight-variances", "1,-2"], "--weight-variances must be"),
        (["--weight-variances", "1,1"], "--weight-variances lists a value more than once"),
        (["--weight-variances", "nan"], "--weight-variances must be"),
        (["--bias-variance", "-0.1"], "--bias-variance must be"),
        (["--activation", "tnah"], "--activation 'tnah' is not known (did you mean 'tanh'?)"),
        (["--activation", "softmax"], "--activation 'softmax' is not known"),
        (["--width", "0"], "--width must be an integer >= 1, got 0"),
        (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
        (["--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["--learning-rate", "0"], "--learning-rate must be"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--scheduler", "tcp://x:1"], "--scheduler 'tcp://x:1' needs --backend dask"),
        (["--width", "60000", "--depths", "1000"], "use a smaller --width or --depths"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("initlab trainability: ")
    assert not out.exists()


def test_refuses_to_overwrite_results_without_force(tiny_run, capsys):
    out, _ = tiny_run
    before = (out / "runs.json").read_text()
    assert main(TINY + ["--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "runs.json").read_text() == before


def test_the_predicted_depth_is_infinite_on_the_edge_and_nan_where_unknown():
    assert study._format_depth(float("inf")) == "∞"
    assert study._format_depth(float("nan")) == "nan"
    assert study._format_depth(None) == "nan"
    assert study._format_depth(41.62) == "41.6"
