"""The SQLite run store: rows and costs come back bit for bit; a run is stored once."""

import sqlite3

import numpy as np
import pytest

from initlab.environment import summary as describe
from initlab.sweeps.spec import parse_spec, plan_runs
from initlab.sweeps.store import COLUMNS, Store
from initlab.sweeps.trainer import RunResult


def fake_result(run, costs):
    environment = {**describe(), "training": "compiled (initlab.fast.jit)"}
    return RunResult(run.key, 87.5, 81.0, float(costs[-1]), 0.25, costs, environment)


@pytest.fixture
def runs():
    return plan_runs(
        parse_spec(
            "[sweep]\nseeds = 2\nscheme = ['he', 'random_normal:0.5']\n"
            "'model.hidden' = [[4], [3, 2]]"
        )
    )


def test_a_run_and_its_costs_round_trip_exactly(tmp_path, runs):
    store = Store(tmp_path / "sweep.db")
    costs = np.array([0.7, 1 / 3, np.nextafter(0.1, 1), np.inf, np.nan])
    assert store.add(runs[3], fake_result(runs[3], costs))
    (row,) = store.rows()
    run = runs[3]
    assert row["key"] == run.key and row["seed"] == run.index == 1
    assert row["weights_seed"] == run.weights_seed  # a uint64, kept whole
    assert row["train_data_seed"] == run.train_data_seed
    for key, value in run.settings.items():
        assert row[key] == value
    assert (row["train_accuracy"], row["test_accuracy"], row["seconds"]) == (87.5, 81.0, 0.25)
    assert row["numpy"] == np.__version__ and row["cpu"] and row["blas"]
    stored = store.costs(run.key)
    assert stored.tobytes() == costs.tobytes()
    with pytest.raises(KeyError):
        store.costs(runs[0].key)


def test_a_run_stored_twice_is_kept_once(tmp_path, runs):
    store = Store(tmp_path / "sweep.db")
    assert store.add(runs[0], fake_result(runs[0], np.array([1.0, 0.5])))
    assert not store.add(runs[0], fake_result(runs[0], np.array([9.0, 9.0])))
    assert store.count() == 1
    assert store.costs(runs[0].key).tolist() == [1.0, 0.5]


def test_the_schema_and_wal_mode_on_disk(tmp_path, runs):
    path = tmp_path / "sweep.db"
    store = Store(path)
    for run in runs[:3]:
        store.add(run, fake_result(run, np.zeros(4)))
    store.set_meta("spec", "{}")
    store.close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in connection.execute("PRAGMA table_info(runs)")]
    assert tuple(columns) == COLUMNS
    assert {
        "data_name",
        "model_hidden",
        "model_scheme",
        "train_epochs",
        "seed",
        "train_accuracy",
        "test_accuracy",
        "final_loss",
        "seconds",
        "initlab",
        "python",
        "numpy",
        "blas",
        "cpu",
    } <= set(columns)
    assert connection.execute("SELECT model_hidden FROM runs ORDER BY rowid").fetchall() == [
        ("[4]",),
        ("[4]",),
        ("[3, 2]",),
    ]
    # A reopened store sees what was committed.
    reopened = Store(path)
    assert reopened.keys() == {run.key for run in runs[:3]}
    assert reopened.get_meta("spec") == "{}" and reopened.get_meta("other") is None
    assert [row["key"] for row in reopened.rows([runs[2].key, runs[5].key, runs[0].key])] == [
        runs[2].key,
        runs[0].key,
    ]


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "sweep.db"
    path.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(ValueError, match="is not a sweep store"):
        Store(path)


def test_records_keep_a_studys_rows_exactly_and_once(tmp_path):
    store = Store(tmp_path / "sweep.db")
    record = {
        "depth": 5,
        "scheme": "he",
        "ratio": 1 / 3,
        "loss": float("nan"),
        "big": float("inf"),
        "tiny": np.nextafter(0.0, 1.0),
    }
    assert store.add_record("a", record)
    assert not store.add_record("a", {"depth": 6})
    (found,) = store.records().values()
    assert found.keys() == record.keys() and np.isnan(found["loss"])
    assert all(found[k] == record[k] for k in record if k != "loss")


def test_a_records_arrays_are_kept_as_their_bytes_and_never_pickled(tmp_path):
    store = Store(tmp_path / "sweep.db")
    costs = np.array([0.7, np.nan, np.inf, np.nextafter(0.0, 1.0)])
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert store.add_record("a", {"accuracy": 97.5, "costs": costs, "weights": weights})
    assert not store.add_record("a", {"accuracy": 0.0, "costs": np.zeros(2)})
    assert store.record_keys() == {"a"}
    (found,) = Store(tmp_path / "sweep.db").records().values()
    assert found["accuracy"] == 97.5
    for name, value in (("costs", costs), ("weights", weights)):
        assert found[name].dtype == value.dtype and found[name].shape == value.shape
        assert found[name].tobytes() == value.tobytes()
    with pytest.raises(ValueError, match="must hold numbers"):
        store.add_record("b", {"objects": np.array([{"a": 1}], dtype=object)})
    assert store.record_keys() == {"a"}


def test_a_store_written_before_the_training_column_gains_it(tmp_path):
    path = tmp_path / "sweep.db"
    older = [name for name in COLUMNS[1:] if name != "training"]
    connection = sqlite3.connect(path)
    connection.execute(f"CREATE TABLE runs (key TEXT PRIMARY KEY, {', '.join(older)})")
    connection.close()
    Store(path).close()
    connection = sqlite3.connect(path)
    columns = [row[1] for row in connection.execute("PRAGMA table_info(runs)")]
    connection.close()
    assert columns[-1] == "training" and set(columns) == set(COLUMNS)


@pytest.mark.parametrize(
    "damage, what",
    [
        ("DELETE FROM costs", "has no costs"),
        ("UPDATE costs SET costs = x'0102'", "the costs of run '{key}' cannot be read"),
        ("UPDATE runs SET test_accuracy = 'abc'", "test_accuracy is 'abc', not a number"),
        ("UPDATE runs SET model_hidden = '[4,'", "run '{key}' cannot be read"),
    ],
)
def test_a_damaged_run_is_named_with_its_file(tmp_path, runs, damage, what):
    path = tmp_path / "sweep.db"
    store = Store(path)
    store.add(runs[0], fake_result(runs[0], np.array([0.5, 0.25])))
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute(damage)
    store = Store(path)
    with pytest.raises(ValueError) as damaged:
        for row in store.rows():
            store.costs(row["key"])
    message = str(damaged.value)
    assert message.startswith(f"{str(path)!r} is damaged: ")
    assert what.format(key=runs[0].key) in message
    assert message.endswith("move it away (or delete it) to start over, and its runs train again")
    store.close()


@pytest.mark.parametrize(
    "damage, what",
    [
        ("UPDATE records SET record = '{'", "record 'k' cannot be read"),
        ("UPDATE records SET record = '[1]'", "record 'k' cannot be read (it is list"),
        ("UPDATE arrays SET data = x'00'", "array 'costs' of record 'k' cannot be read"),
        ("UPDATE arrays SET shape = '[3]'", "array 'costs' of record 'k' cannot be read"),
        ("UPDATE arrays SET dtype = '|O'", "array 'costs' of record 'k' cannot be read (its dtype"),
        ("UPDATE arrays SET dtype = 'garbage'", "array 'costs' of record 'k' cannot be read"),
        ("UPDATE arrays SET key = 'other'", "array 'costs' belongs to no record ('other')"),
    ],
)
def test_a_damaged_record_is_named_with_its_file(tmp_path, damage, what):
    path = tmp_path / "sweep.db"
    store = Store(path)
    store.add_record("k", {"accuracy": 0.5, "costs": np.array([0.5, 0.25])})
    store.close()
    with sqlite3.connect(path) as connection:
        connection.execute(damage)
    store = Store(path)
    with pytest.raises(ValueError) as damaged:
        store.records()
    assert str(damaged.value).startswith(f"{str(path)!r} is damaged: {what}")
    store.close()
