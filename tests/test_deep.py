"""`initlab deep`: a tiny grid writes its figure and tables, the summary averages the runs as
documented, and bad arguments are rejected before any work."""

import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from initlab.cli import main  # noqa: E402
from initlab.studies.deep import (  # noqa: E402
    geometric_mean,
    per_layer_variance_factor,
    summarise_runs,
)


def test_a_first_run_says_it_compiles_one_kernel_per_activation(
    new_machine, tmp_path, monkeypatch, capsys
):
    from initlab.studies import deep

    # The message comes before training, which is not this test's to wait for.
    monkeypatch.setattr(deep, "train_grid", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(TINY + ["--out", str(tmp_path / "out")])
    assert capsys.readouterr().out.startswith("Compiling 2 training kernels for this machine")


def test_a_run_whose_store_holds_every_network_compiles_nothing(request, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(TINY + ["--quiet", "--out", str(out)]) == 0
    rows = _load(out / "runs.json")
    jit = request.getfixturevalue("new_machine")  # no kernel anywhere: a compile takes a minute
    assert main(TINY + ["--force", "--out", str(out)]) == 0
    assert "Compiling" not in capsys.readouterr().out
    # Nor silently: no kernel was loaded, none written to the (new) cache.
    assert not jit._LOADED and not any((tmp_path / "kernel-cache").iterdir())
    assert [dict(row, seconds=0) for row in _load(out / "runs.json")] == [
        dict(row, seconds=0) for row in rows
    ]


def test_a_run_whose_store_holds_one_activations_networks_compiles_the_others_kernel(
    request, tmp_path, monkeypatch, capsys
):
    from initlab.studies import deep

    out = tmp_path / "out"
    relu_only = [word for word in TINY if word != "tanh"]
    assert main(relu_only + ["--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    request.getfixturevalue("new_machine")
    monkeypatch.setattr(deep, "train_grid", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(TINY + ["--force", "--out", str(out)])
    assert capsys.readouterr().out.startswith("Compiling the training kernel for this machine")


TINY = [
    "deep",
    "--depths",
    "1,3",
    "--activations",
    "relu",
    "tanh",
    "--width",
    "6",
    "--schemes",
    "he",
    "random_normal:0.01",
    "--epochs",
    "1",
    "--seeds",
    "2",
    "--backend",
    "serial",
]


def _load(path):
    with open(path) as handle:
        return json.load(handle)


def test_tiny_grid_writes_every_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(
        ["deep.png", "config.json", "sweep.db"]
        + [f"{stem}.{ext}" for stem in ("summary", "runs") for ext in ("md", "csv", "json")]
    )
    runs, summary = _load(out / "runs.json"), _load(out / "summary.json")
    assert len(runs) == 2 * 2 * 2 * 2 and len(summary) == 2 * 2 * 2
    assert {(r["activation"], r["depth"], r["scheme"]) for r in summary} == {
        (a, d, s) for a in ("relu", "tanh") for d in (1, 3) for s in ("he", "random_normal:0.01")
    }
    # A single hidden layer is its own first and last layer.
    assert all(r["forward_ratio"] == 1.0 for r in runs if r["depth"] == 1)
    # Three relu layers of N(0, 0.01^2) weights shrink the signal by ~0.01 * sqrt(6 / 2) each.
    small = [
        r["forward_ratio"]
        for r in summary
        if r["scheme"] == "random_normal:0.01" and r["depth"] == 3
    ]
    assert all(ratio < 1e-2 for ratio in small)
    # --seeds 2 is a count: seeds 0 and 1, from --seed's default 0.
    assert sorted({r["seed"] for r in runs}) == [0, 1]
    config = _load(out / "config.json")
    assert config["runs"] == 16 and config["elapsed_seconds"] >= 0
    assert config["seeds"] == [0, 1] and config["depths"] == [1, 3]
    assert config["environment"]["numpy"] == __import__("numpy").__version__
    # Where the networks trained (the workers' BLAS may run in fewer threads), all 16; the rows
    # keep only their numbers.
    assert sum(where["runs"] for where in config["trained_in"]) == 16
    assert {where["environment"]["numpy"] for where in config["trained_in"]} == {
        __import__("numpy").__version__
    }
    assert not any("environment" in row for row in runs)
    assert "16 networks trained" in capsys.readouterr().out


def test_summary_averages_accuracy_and_takes_geometric_mean_of_ratios():
    runs = [
        {
            "activation": "relu",
            "depth": 5,
            "scheme": "he",
            "seed": seed,
            "forward_ratio": ratio,
            "backward_ratio": 1.0,
            "train_loss": loss,
            "test_accuracy": accuracy,
        }
        for seed, ratio, loss, accuracy in ((0, 0.5, 0.1, 80.0), (1, 2.0, float("nan"), 90.0))
    ]
    (row,) = summarise_runs(runs)
    assert row["test_accuracy"] == 85.0 and row["test_accuracy_range"] == "80.0-90.0"
    assert row["forward_ratio"] == pytest.approx(1.0)
    assert row["forward_variance_per_layer"] == pytest.approx(1.0)
    assert row["diverged"] == 1 and row["seeds"] == 2


def test_per_layer_variance_factor_undoes_the_depth():
    # Half the variance per layer over 20 layers (19 steps): std ratio 2^(-19/2).
    assert per_layer_variance_factor(2.0 ** (-19 / 2), depth=20) == pytest.approx(0.5)
    assert per_layer_variance_factor(1.0, depth=5) == 1.0
    assert per_layer_variance_factor(0.3, depth=1) is None


def test_geometric_mean_passes_zero_and_inf_through():
    assert geometric_mean([4.0, 9.0]) == pytest.approx(6.0)
    assert geometric_mean([0.0, 3.0]) == 0.0
    assert geometric_mean([float("inf"), 3.0]) == float("inf")
    assert math.isnan(geometric_mean([float("nan"), 3.0]))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--depths", "0,5"], "--depths must be an integer >= 1, got 0"),
        (["--schemes", "he,unknown"], "scheme 'unknown' is not known"),
        (
            ["--activations", "relu,tnah"],
            "--activations 'tnah' is not known (did you mean 'tanh'?)",
        ),
        (["--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["--schemes", "he_normall"], "scheme 'he_normall' is not known (did you mean 'he_normal'"),
        (["--activations", "relu,softmax"], "--activations 'softmax' is not known"),
        (["--epochs", "0"], "--epochs must be an integer >= 1"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_arguments_are_rejected_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)] + extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_out_dir_checks(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(TINY + ["--out", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.json").write_text("[]")
    assert main(TINY + ["--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "runs.json").read_text() == "[]"


def test_seed_is_the_first_of_the_counted_seeds(tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "deep",
        "--depths",
        "2",
        "--activations",
        "relu",
        "--width",
        "4",
        "--schemes",
        "he",
        "--epochs",
        "1",
        "--seeds",
        "2",
        "--seed",
        "7",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(args) == 0
    assert [r["seed"] for r in _load(out / "runs.json")] == [7, 8]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_interrupted_it_keeps_finished_networks_and_resumes_to_the_same_tables(
    tmp_path, capsys, monkeypatch
):
    from initlab.studies import deep

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(TINY + ["--out", str(whole)]) == 0
    run_one = deep.run_one
    calls = []

    def run_one_then_interrupt(*args):
        calls.append(args)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return run_one(*args)

    monkeypatch.setattr(deep, "run_one", run_one_then_interrupt)
    capsys.readouterr()
    assert main(TINY + ["--out", str(cut)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"initlab deep: interrupted; 5 of 16 networks are kept in {cut / 'sweep.db'}. "
        f"Resume with the same command."
    )
    assert sorted(os.listdir(cut)) == ["sweep.db"]  # no half set of results
    monkeypatch.setattr(deep, "run_one", run_one)
    calls.clear()
    assert main(TINY + ["--out", str(cut)]) == 0
    without_time = [
        {k: v for k, v in row.items() if k != "seconds"} for row in _load(cut / "runs.json")
    ]
    assert without_time == [
        {k: v for k, v in row.items() if k != "seconds"} for row in _load(whole / "runs.json")
    ]
    assert (cut / "summary.csv").read_text() == (whole / "summary.csv").read_text()


def test_readme_deep_table_shows_the_theorys_per_layer_factors():
    # The README's table puts the theory's factors (deep.predicted_ratios, depth 20, width 64,
    # seeds 0-2 as measured, geometric mean) beside the measured ones: the same numbers, to the
    # three digits shown.
    import pathlib
    import re

    from initlab.studies import deep
    from initlab.studies.schemes import deep_mlp, parse_schemes

    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(
        r"^\| `([^`]+)` \| [^|]+ \| ([^|]+) \| [^|]+ \| [^|]+ \| ([^|]+) \|", text, re.M
    )
    shown = {name: (relu, tanh) for name, relu, tanh in rows if "/" in relu}
    assert len(shown) == 9
    X = deep._digits(0)[0][:, : deep.MEASURE_SAMPLES]
    for scheme in parse_schemes(list(shown)):
        for activation, cell in zip(("relu", "tanh"), shown[scheme.label], strict=True):
            ratios = []
            for seed in range(3):
                with np.errstate(all="ignore"):
                    model = deep_mlp(scheme, 20, 64, 64, 10, activation=activation, seed=seed, X=X)
                ratios.append(deep.predicted_ratios(model, X, 20))
            computed = [
                per_layer_variance_factor(geometric_mean(column), 20) for column in zip(*ratios)
            ]
            written = [float(value) for value in cell.split("/")]
            assert written == pytest.approx(computed, rel=6e-3), (scheme.label, activation)


@pytest.mark.parametrize("flag, progress", [([], None), (["--no-progress"], False)])
def test_no_progress_hides_the_bar_and_keeps_the_table(
    tmp_path, capsys, monkeypatch, flag, progress
):
    from initlab.studies import deep

    seen = []
    run_records = deep.run_records

    def recording(*args, **kwargs):
        seen.append(kwargs["progress"])
        return run_records(*args, **kwargs)

    monkeypatch.setattr(deep, "run_records", recording)
    tiny = ["deep", "--depths", "2", "--activations", "relu", "--width", "4", "--schemes", "he"]
    assert main(tiny + ["--epochs", "1", "--out", str(tmp_path / "out"), *flag]) == 0
    assert seen == [progress]  # None: a bar on a terminal only
    assert "| Activation | Depth | Scheme |" in capsys.readouterr().out


def test_a_stored_network_whose_numbers_were_changed_is_one_line_naming_the_store(tmp_path, capsys):
    import sqlite3

    out = tmp_path / "out"
    tiny = ["deep", "--depths", "2", "--activations", "relu", "--width", "4", "--schemes", "he"]
    command = tiny + ["--epochs", "1", "--seeds", "1", "--out", str(out), "--quiet"]
    assert main(command) == 0
    with sqlite3.connect(out / "sweep.db") as connection:
        (text,) = connection.execute("SELECT record FROM records").fetchone()
        record = json.loads(text)
        record["test_accuracy"] = "high"
        connection.execute("UPDATE records SET record = ?", (json.dumps(record),))
    capsys.readouterr()
    assert main(command + ["--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"initlab deep: error: {str(out / 'sweep.db')!r} is damaged: record ")
    assert "has test_accuracy 'high', not a number" in err
