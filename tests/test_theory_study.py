"""`initlab theory`: the tables hold exactly what the theory and the measurements give, the
figures are written, results are not overwritten without --force, bad arguments are refused."""

import json
import os
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from initlab.cli import main  # noqa: E402
from initlab.studies import theory as study  # noqa: E402
from initlab.tools import theory  # noqa: E402

TINY = [
    "theory",
    "--activation",
    "tanh",
    "--bias-variance",
    "0.05",
    "--depth",
    "4",
    "--width",
    "32",
    "--seeds",
    "2",
    "--pairs",
    "4",
    "--resolution",
    "6",
    "--max-bias-variance",
    "0.2",
]


def _load(path):
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("theory") / "out"
    assert main(TINY + ["--out", str(out)]) == 0
    return out


def test_writes_every_file(tiny_run):
    assert sorted(os.listdir(tiny_run)) == sorted(study.OUTPUTS)
    for name in ("phase_diagram.png", "propagation.png"):
        with open(tiny_run / name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_edge_and_phase_tables_hold_the_theory(tiny_run):
    edge = {row["bias_variance"]: row for row in _load(tiny_run / "edge.json")}
    # The grid's σ_b² (4 rows from 0 to 0.2 for resolution 6) and the requested 0.05.
    assert sorted(edge) == pytest.approx([0.0, 0.05, 0.2 / 3, 0.4 / 3, 0.2])
    assert edge[0.05]["critical_weight_variance"] == pytest.approx(1.76, abs=0.01)
    assert edge[0.0]["critical_weight_variance"] == pytest.approx(1.0, abs=1e-6)
    assert edge[0.05]["critical_weight_std"] ** 2 == pytest.approx(
        edge[0.05]["critical_weight_variance"]
    )

    phase = _load(tiny_run / "phase.json")
    assert len(phase) == 6 * 4
    weights = sorted({row["weight_variance"] for row in phase})
    assert weights[0] == pytest.approx(1e-2) and weights[-1] == pytest.approx(2 * 100 * 32)
    for row in phase[::5]:
        wv, bv = row["weight_variance"], row["bias_variance"]
        assert row["q_star"] == pytest.approx(theory.fixed_point("tanh", wv, bv), rel=1e-12)
        assert row["chi1"] == pytest.approx(theory.chi1("tanh", wv, bv), rel=1e-12)
        if row["xi_c"] is not None:
            assert row["xi_c"] == pytest.approx(theory.depth_scales("tanh", wv, bv)[1], rel=1e-9)


def test_schemes_are_placed_where_their_weight_variance_puts_them(tiny_run):
    rows = {row["scheme"]: row for row in _load(tiny_run / "schemes.json")}
    assert rows["He"]["weight_variance"] == 2.0 and rows["He"]["phase"] == "chaotic"
    assert rows["LeCun / Glorot"]["weight_variance"] == 1.0
    assert rows["N(0, 0.01²)"]["weight_variance"] == pytest.approx(32e-4)
    assert rows["N(0, 0.01²)"]["phase"] == "ordered"
    assert rows["randn x 10 (the post)"]["weight_variance"] == 3200.0
    assert rows["He"]["q_star"] == pytest.approx(theory.fixed_point("tanh", 2.0, 0.0))


def test_propagation_table_holds_the_theory_and_the_measurement(tiny_run):
    rows = _load(tiny_run / "propagation.json")
    edge = theory.critical_weight_variance("tanh", 0.05)
    points = list(dict.fromkeys((row["weight_variance"], row["bias_variance"]) for row in rows))
    assert [wv for wv, _ in points] == pytest.approx([0.5 * edge, edge, 2 * edge])
    for wv, bv in points:
        chosen = [row for row in rows if row["weight_variance"] == wv]
        assert [row["layer"] for row in chosen] == [1, 2, 3, 4]
        q, c = theory.propagate("tanh", wv, bv, 4, q0=1.0, c0=0.5)
        measured_q, measured_c = theory.measure_propagation(
            "tanh", wv, bv, 4, 32, seeds=[0, 1], pairs=4, c0=0.5
        )
        np.testing.assert_allclose([row["q_theory"] for row in chosen], q, rtol=1e-14)
        np.testing.assert_allclose([row["c_theory"] for row in chosen], c, rtol=1e-14)
        np.testing.assert_allclose(
            [row["q_measured"] for row in chosen], measured_q.mean(0), rtol=1e-14
        )
        np.testing.assert_allclose([row["c_max"] for row in chosen], measured_c.max(0), rtol=1e-14)


def test_gains_table_sets_the_exact_gain_beside_pytorchs(tiny_run):
    rows = {row["activation"]: row for row in _load(tiny_run / "gains.json")}
    assert rows["tanh"]["pytorch_gain"] == pytest.approx(5 / 3)
    assert rows["tanh"]["exact_gain"] == pytest.approx(theory.variance_preserving_gain("tanh"))
    assert "softmax" not in rows


def test_refuses_to_overwrite_without_force(tiny_run, capsys):
    before = (tiny_run / "edge.json").read_bytes()
    assert main(TINY + ["--out", str(tiny_run)]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert (tiny_run / "edge.json").read_bytes() == before


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--activation", "softmax", "--activation 'softmax' is not known"),
        ("--bias-variance", "0.1,-1", "--bias-variance must be a finite number >= 0, got -1.0"),
        ("--bias-variance", "0.1,0.1", "lists a value more than once"),
        ("--input-correlation", "2", "--input-correlation must be in [-1, 1]"),
        ("--seeds", "0", "--seeds must be an integer >= 1, got 0"),
        ("--resolution", "2", "--resolution must be an integer >= 4"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path, capsys, option, value, message
):
    out = tmp_path / "out"
    assert main(TINY + [option, value, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_quiet_prints_nothing_and_writes_everything(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(TINY + ["--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert sorted(os.listdir(out)) == sorted(study.OUTPUTS)


def test_activations_are_listed_sorted(capsys):
    assert main(["theory", "--activation", "tnah", "--out", "unused"]) == 2
    error = capsys.readouterr().err
    listed = re.search(r"expected one of \[(.*)\]", error).group(1).replace("'", "").split(", ")
    assert listed == sorted(listed) and "tanh" in listed and "did you mean 'tanh'" in error
