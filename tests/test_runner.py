"""Running a sweep from where it stands: only missing runs train; a grown spec adds its new
runs; a changed spec is refused unless forced; an interruption keeps every finished run."""

import os
import sqlite3

import numpy as np
import pytest

from initlab import environment
from initlab.sweeps import runner
from initlab.sweeps.runner import SweepInterrupted, run_sweep
from initlab.sweeps.spec import Spec, parse_spec, plan_runs
from initlab.sweeps.store import Store

BASE = """
[data]
train = 50
test = 20
[model]
hidden = [4]
[train]
epochs = 30
learning_rate = 0.1
[sweep]
seeds = {seeds}
scheme = {schemes}
"""


def spec(seeds=3, schemes=("he", "zeros"), extra=""):
    return parse_spec(BASE.format(seeds=seeds, schemes=list(schemes)) + extra)


def table(out):
    """Every stored run's numbers and costs, by key (seconds and dates left out)."""
    connection = sqlite3.connect(os.path.join(out, "sweep.db"))
    rows = connection.execute(
        "SELECT r.key, train_accuracy, test_accuracy, final_loss, model_scheme, seed, costs "
        "FROM runs r JOIN costs c ON r.key = c.key ORDER BY r.key"
    ).fetchall()
    connection.close()
    return rows


def test_an_interrupted_sweep_resumes_to_the_same_rows(tmp_path, monkeypatch):
    run_sweep(spec(), tmp_path / "whole", backend="serial", progress=False)
    add = Store.add
    calls = []

    def add_then_interrupt(self, run, result):
        calls.append(run.key)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return add(self, run, result)

    monkeypatch.setattr(Store, "add", add_then_interrupt)
    with pytest.raises(SweepInterrupted) as caught:
        run_sweep(spec(), tmp_path / "cut", backend="serial", workers=3, progress=False)
    assert (caught.value.kept, caught.value.total) == (3, 6)
    monkeypatch.setattr(Store, "add", add)
    status = run_sweep(spec(), tmp_path / "cut", backend="serial", progress=False)
    assert (status.stored_before, status.trained) == (3, 3)
    assert table(tmp_path / "cut") == table(tmp_path / "whole")
    again = run_sweep(spec(), tmp_path / "cut", backend="serial", progress=False)
    assert (again.stored_before, again.trained) == (6, 0)


def test_a_grown_spec_trains_only_its_new_runs(tmp_path):
    out = tmp_path / "grid"
    assert run_sweep(spec(seeds=2), out, backend="serial", progress=False).trained == 4
    before = table(out)
    # One more seed, one more scheme and a new axis whose first value was the fixed one.
    grown = parse_spec(
        BASE.replace("learning_rate = 0.1\n", "").format(
            seeds=3, schemes=["he", "zeros", "lecun_normal"]
        )
        + "'train.learning_rate' = [0.1, 0.3]\n"
    )
    status = run_sweep(grown, out, backend="serial", progress=False)
    assert (status.total, status.stored_before, status.trained) == (18, 4, 14)
    assert set(before) <= set(table(out))


def test_a_changed_spec_is_refused_unless_forced(tmp_path):
    out = tmp_path / "grid"
    run_sweep(spec(seeds=2), out, backend="serial", progress=False)
    changed = parse_spec(
        BASE.replace("epochs = 30", "epochs = 31").format(seeds=2, schemes=["he", "zeros"])
    )
    with pytest.raises(
        ValueError,
        match=r"holds 4 runs that this spec does not contain: its "
        r"settings changed \(train.epochs: 30 -> 31\)\. "
        r"Pass --force",
    ):
        run_sweep(changed, out, backend="serial", progress=False)
    assert len(table(out)) == 4  # refused before anything changed
    status = run_sweep(changed, out, backend="serial", progress=False, force=True)
    assert status.trained == 4 and len(table(out)) == 8  # the old runs are kept


def test_checkpoints_of_stored_runs_are_removed(tmp_path):
    out = tmp_path / "grid"
    run_sweep(spec(seeds=1), out, backend="serial", progress=False, checkpoint_seconds=0)
    assert os.listdir(out / runner.CHECKPOINT_DIR) == []


def test_the_store_holds_every_epochs_cost(tmp_path):
    out = tmp_path / "grid"
    run_sweep(spec(seeds=1, schemes=("he",)), out, backend="serial", progress=False)
    store = Store(out / "sweep.db")
    (row,) = store.rows()
    costs = store.costs(row["key"])
    assert costs.shape == (30,) and row["final_loss"] == costs[-1]
    assert np.all(np.diff(costs[:5]) < 0)  # gradient descent at lr 0.1 lowers the cost


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="--backend must be one of"):
        run_sweep(spec(), tmp_path / "a", backend="threads")
    with pytest.raises(ValueError, match="--workers must be an integer >= 1, got 0"):
        run_sweep(spec(), tmp_path / "b", backend="local", workers=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        run_sweep(spec(), tmp_path / "file", backend="serial")


def test_a_spec_too_large_for_the_machine_is_refused_before_anything_is_written(
    tmp_path, monkeypatch
):
    from initlab import checks

    # 5.5 MB available: the spec's 6 runs of 30 epochs need far less; of 10^5 epochs, two
    # groups of two runs at once need more (their costs alone, kept twice: 6.4 MB).
    monkeypatch.setattr(checks, "available_memory", lambda: 5.5e6)
    small = spec()
    large = Spec(small.fixed | {"train.epochs": 10**5}, small.axes, small.seeds, small.seed)
    with pytest.raises(ValueError) as refused:
        run_sweep(large, tmp_path / "a", backend="local", workers=2)
    message = str(refused.value)
    assert message.startswith("4 runs at once (2 workers, 2 each) of 100000 epochs, hidden ")
    assert "more than the 5.5 MB this machine has available; make the spec's" in message
    assert not (tmp_path / "a").exists()
    # Serial trains one group at a time: three runs of 10^5 epochs fit.
    assert runner.check_memory(plan_runs(large), "serial", 1) is None
    assert run_sweep(small, tmp_path / "b", backend="serial", progress=False).trained == 6


def _squares(items):
    """A study's work: one record per item (module level, so workers could import it)."""
    return [{"square": item["n"] ** 2} for item in items]


def test_missing_items_are_what_run_records_would_compute(tmp_path, monkeypatch):
    items = [{"n": n} for n in range(5)]
    assert runner.missing_items(items, tmp_path) == items
    records, stored, where = runner.run_records(
        items[1:4:2], _squares, tmp_path, backend="serial", progress=False
    )
    assert (records, stored) == ([{"square": 1}, {"square": 9}], 0)
    assert where == [{"runs": 2, "environment": environment.describe()}]
    assert runner.missing_items(items, tmp_path) == [items[0], items[2], items[4]]
    records, stored, _ = runner.run_records(items, _squares, tmp_path, "serial", progress=False)
    assert stored == 2 and [r["square"] for r in records] == [0, 1, 4, 9, 16]
    assert runner.missing_items(items, tmp_path) == []
    # A complete store: its records, and no backend started for nothing.
    monkeypatch.setattr(runner.engines, "execute", lambda *args, **kwargs: 1 / 0)
    records, stored, _ = runner.run_records(items, _squares, tmp_path, "local", progress=False)
    assert stored == 5 and [r["square"] for r in records] == [0, 1, 4, 9, 16]


def test_each_record_keeps_the_environment_it_was_computed_in(tmp_path, monkeypatch):
    items = [{"n": n} for n in range(4)]
    elsewhere = {**environment.describe(), "cpu": {"model": "another CPU"}, "numpy": "1.26.4"}
    monkeypatch.setattr(runner.environment, "describe", lambda: elsewhere)
    runner.run_records(items[:3], _squares, tmp_path, "serial", progress=False)
    monkeypatch.undo()
    records, stored, where = runner.run_records(items, _squares, tmp_path, "serial", progress=False)
    # The records are the work's; where the store's three were computed is read back from it.
    assert stored == 3 and records == [{"square": n**2} for n in range(4)]
    assert where == [
        {"runs": 3, "environment": elsewhere},
        {"runs": 1, "environment": environment.describe()},
    ]
    # A record an earlier initlab stored, without one: counted, as not known.
    assert runner.trained_in([{"square": 0}, {"square": 1, "environment": elsewhere}]) == [
        {"runs": 1, "environment": None},
        {"runs": 1, "environment": elsewhere},
    ]


def test_a_stored_record_its_check_refuses_is_named_with_its_file(tmp_path):
    items = [{"n": n} for n in range(2)]
    runner.run_records(items, _squares, tmp_path, "serial", progress=False)
    with sqlite3.connect(tmp_path / "sweep.db") as connection:
        connection.execute("UPDATE records SET record = '{}' WHERE rowid = 2")
    check = runner.has_fields("square")
    with pytest.raises(ValueError) as damaged:
        runner.run_records(items, _squares, tmp_path, "serial", progress=False, check=check)
    key = runner.record_key(items[1])
    assert str(damaged.value).startswith(
        f"{str(tmp_path / 'sweep.db')!r} is damaged: record {key!r} lacks square; move it away"
    )
    with sqlite3.connect(tmp_path / "sweep.db") as connection:
        connection.execute("""UPDATE records SET record = '{"square": "1"}' WHERE rowid = 2""")
    check = runner.has_fields("square", numbers=["square"])
    with pytest.raises(ValueError, match=f"record {key!r} has square '1', not a number;"):
        runner.run_records(items, _squares, tmp_path, "serial", progress=False, check=check)
    # A number, or None (not measured), passes.
    check(items[0], {"square": None})
    check(items[0], {"square": float("nan")})


def test_asking_what_is_missing_writes_nothing(tmp_path):
    out = tmp_path / "new"
    assert runner.missing_items([{"n": 1}], out) == [{"n": 1}]
    assert not out.exists()
