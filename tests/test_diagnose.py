"""`initlab diagnose`: writes its figures and tables for a tiny network, the tables agree with
the diagnostics, and bad arguments are rejected before anything is written."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from initlab.blocks.datasets import digits  # noqa: E402
from initlab.cli import build_parser, main  # noqa: E402
from initlab.studies.schemes import deep_mlp, parse_scheme  # noqa: E402
from initlab.tools.diagnostics import measure  # noqa: E402

TINY = [
    "diagnose",
    "--depth",
    "3",
    "--width",
    "8",
    "--samples",
    "40",
    "--schemes",
    "he,random_normal:0.01",
]


@pytest.mark.parametrize("epochs", [0, 3])
def test_a_first_run_says_it_compiles_when_it_trains(
    new_machine, tmp_path, monkeypatch, capsys, epochs
):
    from initlab.studies import diagnose

    # The message comes before the first network is measured, which is not this test's to wait for.
    monkeypatch.setattr(diagnose, "layer_signals", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(TINY + ["--out", str(tmp_path / "out"), "--epochs", str(epochs)])
    said = capsys.readouterr().out
    # Without training (--epochs 0, the default), nothing compiles.
    assert said.startswith("Compiling the training kernel for this machine") == (epochs > 0), said


def _load(path):
    with open(path) as handle:
        return json.load(handle)


def test_writes_figures_and_tables_that_agree_with_measure(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(
        ["signal_std.png", "histograms.png"]
        + [f"{stem}.{ext}" for stem in ("summary", "layers") for ext in ("md", "csv", "json")]
    )
    summary = _load(out / "summary.json")
    layers = _load(out / "layers.json")
    assert [row["scheme"] for row in summary] == ["he", "random_normal:0.01"]
    assert len(layers) == 2 * 3 and {row["epoch"] for row in layers} == {"init"}

    X_train, Y_train, _, _ = digits(seed=0)
    X, Y = X_train[:, :40], Y_train[:, :40]
    model = deep_mlp(
        parse_scheme("random_normal:0.01"),
        depth=3,
        width=8,
        n_inputs=64,
        n_outputs=10,
        activation="relu",
        seed=0,
    )
    records = measure(model, X, Y)
    assert summary[1]["forward_ratio"] == records[2].activation_std / records[0].activation_std
    assert summary[1]["backward_ratio"] == (
        records[0].activation_grad_std / records[2].activation_grad_std
    )
    assert [row["activation_std"] for row in layers[3:]] == [r.activation_std for r in records[:3]]
    assert "| random_normal:0.01 |" in capsys.readouterr().out


def test_training_records_the_epochs_asked(tmp_path):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out), "--epochs", "3", "--record-at", "0,2"]) == 0
    layers = _load(out / "layers.json")
    assert [row["epoch"] for row in layers if row["scheme"] == "he"] == ["init"] * 3 + [0] * 3 + [
        2
    ] * 3
    assert os.path.exists(out / "signal_std_training.png")
    assert all(0 <= row["test_accuracy"] <= 100 for row in _load(out / "summary.json"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--schemes", "he,no_such_scheme"], "scheme 'no_such_scheme' is not known"),
        (["--schemes", "random_normal:x"], "must be a number"),
        (["--depth", "0"], "--depth must be an integer >= 1, got 0"),
        (["--width", "-2"], "--width must be an integer >= 1"),
        (["--activation", "softmax"], "--activation 'softmax' is not known"),
        (["--activation", "selux"], "--activation 'selux' is not known (did you mean 'selu'"),
        (["--schemes", "glorot_unifrom"], "(did you mean 'glorot_uniform'"),
        (["--epochs", "2", "--record-at", "0,5"], "--record-at lists [5]"),
        (["--record-at", "1"], "needs --epochs > 0"),
        (["--learning-rate", "0"], "--learning-rate"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)] + extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_out_dir_that_cannot_be_created_is_rejected(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(TINY + ["--out", str(blocker / "out")]) == 2
    assert "cannot be created" in capsys.readouterr().err


def test_an_existing_out_dir_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.md").write_text("keep me")
    assert main(TINY + ["--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert os.listdir(out) == ["summary.md"] and (out / "summary.md").read_text() == "keep me"
    assert main(TINY + ["--out", str(out), "--force"]) == 0
    assert (out / "summary.md").read_text() != "keep me"


def test_help_states_the_scheme_syntax(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "random_normal:0.01 draws W ~ N(0, 0.01^2)" in text
    assert "name:value" in text


def test_same_seed_same_tables(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(TINY + ["--out", str(first)]) == 0
    assert main(TINY + ["--out", str(second)]) == 0
    assert (first / "layers.csv").read_text() == (second / "layers.csv").read_text()
    assert np.isfinite(_load(first / "summary.json")[0]["forward_ratio"])


def test_layers_table_gives_the_theory_beside_the_measurement(tmp_path):
    from initlab.tools.theory import predict_signals

    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out)]) == 0
    rows = [row for row in _load(out / "layers.json") if row["scheme"] == "he"]
    X_train, Y_train, _, _ = digits(seed=0)
    X = X_train[:, :40]
    model = deep_mlp(
        parse_scheme("he"),
        depth=3,
        width=8,
        n_inputs=64,
        n_outputs=10,
        activation="relu",
        seed=0,
        X=X,
    )
    expected = [row["activation_std"] for row in predict_signals(model, X)[:3]]
    assert [row["theory_activation_std"] for row in rows] == pytest.approx(expected, rel=1e-12)


def test_schemes_and_epochs_are_lists_with_spaces_or_commas_and_quiet_is_silent(tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "diagnose",
        "--depth",
        "2",
        "--width",
        "4",
        "--samples",
        "20",
        "--schemes",
        "he",
        "random_normal_x10,glorot_uniform",
        "--epochs",
        "3",
        "--record-at",
        "0",
        "2",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    summary = _load(out / "summary.json")
    assert [row["scheme"] for row in summary] == ["he", "random_normal_x10", "glorot_uniform"]
    assert sorted({row["epoch"] for row in _load(out / "layers.json")}, key=str) == [0, 2, "init"]


def test_more_samples_than_digits_training_split_holds_are_refused(tmp_path, capsys):
    assert main(TINY[:5] + ["--samples", "5000", "--out", str(tmp_path / "out")]) == 2
    assert "--samples must be an integer in [2, 1348], got 5000" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
