"""`initlab reproduce`: the files it writes, their numbers, and its refusals before training;
on every backend, killed or interrupted and run again, the numbers of one uninterrupted run."""

import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from matplotlib.image import imread  # noqa: E402

from conftest import default_interrupt, run_python, stored_rows, wait_until
from initlab import cli  # noqa: E402
from initlab.studies import post_study as post  # noqa: E402
from initlab.studies import reproduce  # noqa: E402

EPOCHS = 60
ARGS = ["reproduce", "--seeds", "2", "--epochs", str(EPOCHS), "--seed", "5", "--no-progress"]
FIGURE_SIZES = {"dataset.png": (450, 600), "costs.png": (500, 800), "boundaries.png": (470, 1500)}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "out"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        code = cli.main(ARGS + ["--out", str(out)])
    assert code == 0
    return out, capture.getvalue()


def test_a_short_run_writes_every_file(short_run):
    out, _ = short_run
    assert sorted(p.name for p in out.iterdir()) == sorted(reproduce.OUTPUTS + ("sweep.db",))


def test_writing_the_figures_leaves_nothing_frozen_from_collection(tmp_path):
    import gc

    # The objects are frozen only while the figures are drawn: a caller's garbage is collected.
    reproduce.write_results(post.run_study(n_seeds=1, epochs=5), tmp_path)
    assert gc.get_freeze_count() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(reproduce.OUTPUTS)


@pytest.mark.parametrize("name", sorted(FIGURE_SIZES))
def test_every_figure_is_a_readable_png(short_run, name):
    data = (short_run[0] / name).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = imread(io.BytesIO(data), format="png")
    assert image.shape[:2] == FIGURE_SIZES[name]
    assert image.std() > 0.01  # not a blank canvas


def test_the_tables_numbers_are_the_saved_histories_numbers(short_run):
    out, _ = short_run
    document = json.loads((out / "results.json").read_text())
    with np.load(out / "histories.npz", allow_pickle=False) as saved:
        costs, names = saved["costs"], list(saved["schemes"])
    assert costs.shape == (3, 2, EPOCHS)
    assert names == ["zeros", "random_normal_x10", "he"]
    for s, summary in enumerate(document["schemes"]):
        assert summary["final_cost"]["mean"] == pytest.approx(costs[s, :, -1].mean(), rel=1e-15)
        assert summary["final_cost"]["min"] == costs[s, :, -1].min()
        runs = [r for r in document["runs"] if r["scheme"] == summary["scheme"]]
        train = [r["train_accuracy"] for r in runs]
        assert summary["train_accuracy"]["mean"] == pytest.approx(np.mean(train), rel=1e-15)
        for r in runs:
            below = np.flatnonzero(costs[s, r["run"]] < 0.3)
            assert r["epoch_cost_below"] == (int(below[0]) if below.size else None)


def test_a_run_retrained_independently_gives_the_tables_numbers(short_run):
    out, _ = short_run
    document = json.loads((out / "results.json").read_text())
    row = next(r for r in document["runs"] if r["scheme"] == "he" and r["run"] == 1)
    X_train, Y_train = post.moons_data(400, row["train_data_seed"])
    X_test, Y_test = post.moons_data(100, row["test_data_seed"])
    model = post.post_model("he", seed=row["weights_seed"])
    history = model.fit(X_train, Y_train, epochs=EPOCHS, learning_rate=0.01)["loss"]
    assert history[-1] == pytest.approx(row["final_cost"], rel=1e-12)
    assert model.evaluate(X_train, Y_train)["accuracy"] == row["train_accuracy"]
    assert model.evaluate(X_test, Y_test)["accuracy"] == row["test_accuracy"]
    # ... and the seeds are the documented derivation from --seed 5.
    assert row["weights_seed"] == post.seed_plan(5, 2)[1].weights_seed


def test_zeros_gives_exactly_fifty_percent_and_a_flat_cost(short_run):
    out, _ = short_run
    document = json.loads((out / "results.json").read_text())
    zeros = document["schemes"][0]
    assert zeros["scheme"] == "zeros"
    for key in ("train_accuracy", "test_accuracy"):
        assert zeros[key]["min"] == zeros[key]["max"] == 50.0
    assert zeros["epoch_cost_below"]["reached"] == 0
    with np.load(out / "histories.npz", allow_pickle=False) as saved:
        np.testing.assert_allclose(saved["costs"][0], np.log(2), rtol=0, atol=1e-12)


def test_the_printed_table_is_the_written_table(short_run):
    out, printed = short_run
    table = (out / "results.md").read_text()
    header = next(line for line in printed.splitlines() if line.startswith("| Initialization"))
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert header in table
    assert all(row in table for row in rows) and len(rows) == 4
    assert "Trained 6 models in" in printed


def test_the_table_is_printed_before_the_figures_are_drawn(monkeypatch, tmp_path):
    # The figures take a second or two after the training: the user reads the table meanwhile.
    capture = io.StringIO()
    printed_before_writing = []
    write_results = reproduce.write_results

    def note_then_write(result, out):
        printed_before_writing.append(capture.getvalue())
        write_results(result, out)

    monkeypatch.setattr(reproduce, "write_results", note_then_write)
    with contextlib.redirect_stdout(capture):
        assert cli.main(ARGS + ["--out", str(tmp_path / "out")]) == 0
    (before,) = printed_before_writing
    after = capture.getvalue()[len(before) :]
    assert before.count("\n| ") == 4 and "Trained" not in before
    assert after.startswith("Trained 6 models in") and "| " not in after


def test_the_same_seed_writes_the_same_results(short_run, tmp_path):
    assert cli.main(ARGS + ["--out", str(tmp_path)]) == 0
    for name in ("results.json", "results.csv", "results.md"):
        assert (tmp_path / name).read_bytes() == (short_run[0] / name).read_bytes()


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts."""

    def forbidden(*args, **kwargs):
        raise AssertionError("training started although the arguments were bad")

    monkeypatch.setattr(reproduce, "run_records", forbidden)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["--epochs", "-3"], "--epochs must be an integer >= 1, got -3"),
        (["--schemes", "he", "nonsense"], "scheme 'nonsense' is not known"),
        (["--schemes", "he", "lsvu"], "scheme 'lsvu' is not known (did you mean 'lsuv'?)"),
        (["--backend", "serial", "--scheduler", "tcp://127.0.0.1:1"], "needs --backend dask"),
    ],
)
def test_bad_arguments_fail_clearly_before_training(no_training, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--out", str(out)] + extra) == 2
    error = capsys.readouterr().err
    assert error.startswith("initlab reproduce: error: ") and message in error
    assert not out.exists()


def test_an_unwritable_out_dir_fails_clearly_before_training(no_training, tmp_path, capsys):
    # A regular file as a parent cannot be written through, not even by root.
    (tmp_path / "file").write_text("x")
    assert cli.main(["reproduce", "--out", str(tmp_path / "file" / "out")]) == 2
    assert "cannot be created" in capsys.readouterr().err
    assert cli.main(["reproduce", "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_existing_results_are_kept_without_force(no_training, tmp_path, capsys):
    (tmp_path / "results.json").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["reproduce", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "already holds results (results.json)" in error and "--force" in error
    assert (tmp_path / "results.json").read_text() == "old"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_force_replaces_only_the_result_files(tmp_path):
    (tmp_path / "results.json").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(ARGS + ["--epochs", "5", "--out", str(tmp_path), "--force"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["settings"]["epochs"] == 5
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        reproduce.OUTPUTS + ("notes.txt", "sweep.db")
    )


def test_an_existing_dir_without_results_is_used(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(ARGS + ["--epochs", "5", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_jit_without_numba_fails_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from initlab.fast import jit

    monkeypatch.setattr(jit, "numba", None)
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--jit", "--out", str(out), "--no-progress"]) == 2
    assert "--jit needs Numba, which is not installed: pip install numba" in capsys.readouterr().err
    assert not out.exists()


def test_quiet_prints_nothing_and_the_printed_names_are_accepted(tmp_path, capsys):
    # random_normal_x10 is the name reproduce prints and writes: it is the post's scheme, once.
    args = [
        "reproduce",
        "--seeds",
        "1",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(tmp_path),
        "--schemes",
        "random_normal_x10",
        "he,random_normal:10",
    ]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    document = json.loads((tmp_path / "results.json").read_text())
    assert [s["scheme"] for s in document["schemes"]] == list(post.POST_SCHEMES)


def test_a_first_run_says_it_compiles_before_it_does(new_machine, tmp_path, monkeypatch, capsys):
    # Its first line says it compiles; the compilation itself is not this test's to wait for.
    monkeypatch.setattr(reproduce, "study_seconds", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["reproduce", "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "o")])
    assert capsys.readouterr().out.startswith("Compiling the training kernel for this machine")


def test_a_run_with_its_kernel_ready_does_not_say_it_compiles(
    short_run, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("numba")
    # short_run trained compiled: its kernel is loaded in this process.
    monkeypatch.setattr(reproduce, "study_seconds", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        cli.main(["reproduce", "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "o")])
    assert capsys.readouterr().out == ""


def test_a_run_whose_store_holds_every_run_neither_calibrates_nor_compiles(
    short_run, request, tmp_path, monkeypatch
):
    out, first_output = short_run
    again = tmp_path / "again"
    again.mkdir()
    (again / "sweep.db").write_bytes((out / "sweep.db").read_bytes())
    jit = request.getfixturevalue("new_machine")  # no kernel anywhere: a compile takes a minute
    monkeypatch.setattr(reproduce, "study_seconds", lambda *args: 1 / 0)
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        assert cli.main(ARGS + ["--out", str(again)]) == 0
    # Nor silently: no kernel was loaded, none written to the (new) cache.
    assert not jit._LOADED and not any((tmp_path / "kernel-cache").iterdir())
    first_line = capture.getvalue().splitlines()[0]
    assert first_line.startswith("Training 3 schemes x 2 seeds")
    assert first_line.endswith(f"nothing to train: every run is in {again / 'sweep.db'})")
    assert (again / "results.csv").read_text() == (out / "results.csv").read_text()


def test_the_first_lines_estimate_counts_only_the_runs_the_store_lacks(
    short_run, tmp_path, monkeypatch
):
    # The store holds 2 seeds of each of the 3 schemes; a third seed leaves 3 runs to train.
    out, _ = short_run
    again = tmp_path / "again"
    again.mkdir()
    (again / "sweep.db").write_bytes((out / "sweep.db").read_bytes())
    asked = []

    def estimate(*args):
        asked.append(args[:3])
        raise KeyboardInterrupt  # the estimate is all this test is about: stop before training

    monkeypatch.setattr(reproduce, "study_seconds", estimate)
    args = [a if a != "2" else "3" for a in ARGS] + ["--backend", "serial", "--out", str(again)]
    assert args[args.index("--seeds") + 1] == "3"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(KeyboardInterrupt):
        cli.main(args)
    assert asked == [(1, 3, EPOCHS)]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux's /proc")
def test_the_memory_said_in_the_first_line_is_what_the_process_takes(tmp_path):
    # The whole process (Python, NumPy, scikit-learn, matplotlib, the figures), not only the
    # runs' data: within a quarter of the peak resident memory the kernel reports.
    import re

    script = (
        "from initlab import cli\n"
        f"cli.main(['reproduce', '--seeds', '2', '--epochs', '20', '--no-progress', "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
        "status = open('/proc/self/status').read().splitlines()\n"
        "print([line for line in status if line.startswith('VmHWM')][0])\n"
    )
    result = run_python(script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    said = re.search(r"about ([\d.]+) MB of memory, [\d.]+ [kMG]?B of it the runs'", lines[0])
    assert said, lines[0]
    peak = int(lines[-1].split()[1]) * 1024 / 1e6  # kB -> MB
    assert 0.75 * peak < float(said.group(1)) < 1.25 * peak, (lines[0], peak)


@pytest.mark.parametrize(
    "damage, what",
    [
        ("UPDATE records SET record = '{}'", "has train_accuracy None, not a number"),
        ("DELETE FROM arrays WHERE name = 'weights'", "has weights None, expected floats"),
        ("UPDATE arrays SET shape = '[2, 2]' WHERE name = 'costs'", "has costs float64 (2, 2)"),
    ],
)
def test_a_damaged_store_is_one_line_that_names_it(tmp_path, capsys, damage, what):
    import sqlite3

    out = tmp_path / "out"
    command = ARGS + ["--epochs", "4", "--seeds", "1", "--out", str(out), "--quiet"]
    assert cli.main(command) == 0
    with sqlite3.connect(out / "sweep.db") as connection:
        connection.execute(damage)
    capsys.readouterr()
    assert cli.main(command + ["--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"initlab reproduce: error: {str(out / 'sweep.db')!r} is damaged: ")
    assert what in err and err.count("\n") == 1


def test_results_json_says_where_runs_from_the_store_trained(tmp_path, monkeypatch):
    from initlab import environment

    out = tmp_path / "out"
    elsewhere = {**environment.describe(), "cpu": {"model": "another CPU"}, "numpy": "1.26.4"}
    with monkeypatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(environment, "describe", lambda: elsewhere)
        assert cli.main(ARGS + ["--epochs", "5", "--seeds", "1", "--out", str(out)]) == 0
    # A second seed: its three runs train here, seed 0's three come from the store.
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(ARGS + ["--epochs", "5", "--out", str(out), "--force"]) == 0
    document = json.loads((out / "results.json").read_text())
    here = environment.describe()
    assert document["environment"] == here
    # Each environment once, with how many runs trained in it.
    assert document["trained_in"] == [
        {"runs": 3, "environment": elsewhere},
        {"runs": 3, "environment": here},
    ]


# --- on the sweep engine: every backend, a kill, a Ctrl-C: the bits of run_study ------------------
def study_numbers(out):
    """histories.npz's arrays and results.json without its environments (this process's, and
    where the runs trained: the local pool's workers run BLAS in fewer threads), from a
    directory."""
    with np.load(out / "histories.npz", allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    document = json.loads((out / "results.json").read_text())
    del document["environment"], document["trained_in"]
    return arrays, document


def expected_numbers(seed, n_seeds, epochs, schemes=(), jit_compile="auto"):
    """What run_study gives: every run in one Ensemble in this process, the path reproduce took
    before it ran on the sweep engine (its numbers: main's, unchanged)."""
    from initlab.studies import report

    result = post.run_study(
        seed=seed, n_seeds=n_seeds, epochs=epochs, schemes=schemes, jit_compile=jit_compile
    )
    document = json.loads(report.to_json(result))
    del document["environment"], document["trained_in"]
    arrays = {
        "costs": result.costs,
        "schemes": np.array([scheme.name for scheme in result.schemes]),
        "train_accuracy": result.train_accuracy,
        "test_accuracy": result.test_accuracy,
    }
    return arrays, document


def assert_same_bits(found, expected):
    (arrays, document), (arrays_expected, document_expected) = found, expected
    assert arrays.keys() == arrays_expected.keys()
    for name, value in arrays.items():
        assert value.dtype == arrays_expected[name].dtype and value.shape == value.shape
        assert value.tobytes() == arrays_expected[name].tobytes(), name
    assert document == document_expected


@pytest.mark.parametrize("backend", ["serial", "local", "dask"])
def test_every_backend_writes_the_bits_of_one_uninterrupted_run(tmp_path, backend):
    if backend == "dask":
        pytest.importorskip("distributed")
    extra = ["--schemes", "lsuv,glorot_uniform", "--backend", backend, "--quiet"]
    assert cli.main(ARGS + extra + ["--out", str(tmp_path)]) == 0
    expected = expected_numbers(5, 2, EPOCHS, ["lsuv", "glorot_uniform"])
    assert_same_bits(study_numbers(tmp_path), expected)


def test_run_again_it_trains_nothing_and_writes_the_same_files(short_run, tmp_path, capsys):
    out, _ = short_run
    # Its sweep.db holds every run: --force writes the set again from it, training none.
    copy = tmp_path / "again"
    copy.mkdir()
    (copy / "sweep.db").write_bytes((out / "sweep.db").read_bytes())
    assert cli.main(ARGS + ["--out", str(copy), "--backend", "serial"]) == 0
    assert "Trained 0 models in" in capsys.readouterr().out
    assert_same_bits(study_numbers(copy), study_numbers(out))


def test_jit_trains_on_the_engine_as_run_study_does(tmp_path):
    pytest.importorskip("numba")
    args = ARGS + ["--jit", "--backend", "serial", "--quiet", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    numbers = study_numbers(tmp_path)
    assert numbers[1]["settings"]["training"] == "compiled (initlab.fast.jit)"
    assert_same_bits(numbers, expected_numbers(5, 2, EPOCHS, jit_compile=True))


# Long enough that a group of runs takes a few seconds to train, so the command can be stopped
# between two groups: 3 x 4 runs, in groups of 3 to 6.
STOPPED = ["--seeds", "4", "--epochs", "2500", "--seed", "5", "--no-progress"]


def start(*options):
    return subprocess.Popen(
        [sys.executable, "-m", "initlab.cli", "reproduce", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_interrupt,
    )


def test_killed_and_run_again_it_trains_only_the_missing_runs_to_the_same_bits(tmp_path):
    out = tmp_path / "out"
    command = [*STOPPED, "--backend", "serial", "--out", str(out)]
    process = start(*command)
    wait_until(process, lambda: stored_rows(out, "records") >= 1, timeout=300)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = stored_rows(out, "records")
    assert 1 <= kept < 12
    assert sorted(os.listdir(out)) == ["sweep.db"]  # no files of a half-finished study

    again = subprocess.run(
        [sys.executable, "-m", "initlab.cli", "reproduce", *command],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert again.returncode == 0, again.stderr
    assert f"Trained {12 - kept} models in" in again.stdout
    assert f"({kept} were stored already)" in again.stdout
    assert_same_bits(study_numbers(out), expected_numbers(5, 4, 2500))


def test_ctrl_c_stops_in_one_line_that_says_how_to_resume(tmp_path):
    out = tmp_path / "out"
    process = start(*STOPPED, "--backend", "local", "--out", str(out))
    wait_until(process, lambda: stored_rows(out, "records") >= 1, timeout=300)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: to every process of the group
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    kept = stored_rows(out, "records")
    # --backend local was given, so it is repeated: reproduce's default is auto.
    resume = (
        f"initlab reproduce --seeds 4 --epochs 2500 --seed 5 --out {out} --backend local "
        "--no-progress"
    )
    assert stderr.strip() == (
        f"initlab reproduce: interrupted; {kept} of 12 runs are kept in {out / 'sweep.db'}. "
        f"Resume with: {resume}"
    )
    assert sorted(os.listdir(out)) == ["sweep.db"]
    # The line's command finishes the study, to the bits of one uninterrupted run.
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(shlex.split(resume)[1:] + ["--backend", "serial"]) == 0
    assert_same_bits(study_numbers(out), expected_numbers(5, 4, 2500))
