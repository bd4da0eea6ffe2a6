"""A sweep's results in SQLite (DIR/sweep.db): one row per finished run, each its own transaction.

Tables
    runs   key (the run's hash, spec.run_key) PRIMARY KEY; one column per setting (dots become
           underscores: data_name, model_hidden as JSON text, ...); seed (the run's index k in its
           configuration), root_seed, train_data_seed, test_data_seed, weights_seed;
           train_accuracy, test_accuracy (percent), final_loss, seconds; the environment it
           trained in: initlab, python, numpy, blas, cpu, training (NumPy or compiled);
           finished (UTC, ISO 8601)
    costs  key PRIMARY KEY, epochs, costs: every epoch's training cost, float64 little-endian
    meta   name PRIMARY KEY, value: "spec", the JSON of the spec the sweep last ran
    records  key PRIMARY KEY, record: a study's own result rows as JSON (initlab deep's runs)
    arrays   key, name (PRIMARY KEY together), dtype, shape, data: a record's NumPy arrays, as
             their bytes (initlab reproduce's costs and final weights)

One process writes (the one that runs the sweep); readers may look at any time, because the
database is in WAL mode. A run and its costs are committed together, so the store never holds
half a run; a run stored twice (a task retried after its worker died) is kept once.

    >>> import tempfile, os
    >>> store = Store(os.path.join(tempfile.mkdtemp(), "sweep.db"))
    >>> store.keys()
    set()
"""

import datetime
import json
import os
import sqlite3

import numpy as np

from initlab import checks
from initlab.sweeps.spec import SETTINGS

SETTING_COLUMNS = {key: key.replace(".", "_") for key in SETTINGS}
RESULT_COLUMNS = ("train_accuracy", "test_accuracy", "final_loss", "seconds")
ENVIRONMENT_COLUMNS = ("initlab", "python", "numpy", "blas", "cpu", "training")
SEED_COLUMNS = ("seed", "root_seed", "train_data_seed", "test_data_seed", "weights_seed")
COLUMNS = (
    ("key",)
    + tuple(SETTING_COLUMNS.values())
    + SEED_COLUMNS
    + RESULT_COLUMNS
    + ENVIRONMENT_COLUMNS
    + ("finished",)
)
_TYPES = {
    "seed": "INTEGER",
    "root_seed": "INTEGER",
    "train_data_seed": "INTEGER",
    "test_data_seed": "INTEGER",
    "weights_seed": "TEXT",  # a uint64 overflows INTEGER
    **{name: "REAL" for name in RESULT_COLUMNS},
}


class Store:
    """The SQLite file of one sweep, created with its tables if it does not exist."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self.connection = sqlite3.connect(self.path, timeout=30)
            self.connection.execute("PRAGMA journal_mode=WAL")
            columns = ", ".join(f"{name} {_TYPES.get(name, '')}".strip() for name in COLUMNS[1:])
            with self.connection:
                self.connection.execute(
                    f"CREATE TABLE IF NOT EXISTS runs (key TEXT PRIMARY KEY, {columns})"
                )
                # A store written by an earlier initlab lacks the newer columns: added, empty.
                existing = {row[1] for row in self.connection.execute("PRAGMA table_info(runs)")}
                for name in COLUMNS:
                    if name not in existing:
                        kind = _TYPES.get(name, "")
                        self.connection.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                self.connection.execute(
                    "CREATE TABLE IF NOT EXISTS costs (key TEXT PRIMARY KEY "
                    "REFERENCES runs(key), epochs INTEGER, costs BLOB)"
                )
                self.connection.execute(
                    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)"
                )
                self.connection.execute(
                    "CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, record TEXT)"
                )
                self.connection.execute(
                    "CREATE TABLE IF NOT EXISTS arrays (key TEXT, name TEXT, dtype TEXT, "
                    "shape TEXT, data BLOB, PRIMARY KEY (key, name))"
                )
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{self.path!r} is not a sweep store ({error})") from None

    def close(self):
        self.connection.close()

    def damaged(self, what):
        """The error for a store whose contents cannot be what this class wrote: what is wrong,
        and what to do (the file is left as it is, for the user to keep or move away)."""
        return ValueError(
            f"{self.path!r} is damaged: {what}; move it away (or delete it) to start over, "
            "and its runs train again"
        )

    def keys(self):
        """The keys of every stored run."""
        return {key for (key,) in self.connection.execute("SELECT key FROM runs")}

    def count(self):
        return self.connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def add(self, run, result):
        """Store a finished run (spec.Run) and its result (trainer.RunResult) in one transaction.

        Returns True, or False if the run was stored already (it is then left as it was).
        """
        row = {
            "key": run.key,
            "seed": run.index,
            "root_seed": run.root_seed,
            "train_data_seed": run.train_data_seed,
            "test_data_seed": run.test_data_seed,
            "weights_seed": str(run.weights_seed),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        for key, column in SETTING_COLUMNS.items():
            value = run.settings[key]
            row[column] = json.dumps(value) if isinstance(value, list) else value
        row.update({name: getattr(result, name) for name in RESULT_COLUMNS})
        row.update({name: result.environment.get(name) for name in ENVIRONMENT_COLUMNS})
        costs = np.ascontiguousarray(result.costs, dtype="<f8")
        with self.connection:
            inserted = self.connection.execute(
                f"INSERT OR IGNORE INTO runs ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})",
                [row[name] for name in COLUMNS],
            ).rowcount
            if inserted:
                self.connection.execute(
                    "INSERT INTO costs VALUES (?, ?, ?)", (run.key, costs.size, costs.tobytes())
                )
        return bool(inserted)

    def rows(self, keys=None):
        """Stored runs as dicts (settings back under their dotted keys), in the order of `keys`
        (those stored), or of storage when keys is None."""
        cursor = self.connection.execute(f"SELECT {', '.join(COLUMNS)} FROM runs ORDER BY rowid")
        found = {}
        for values in cursor:
            row = dict(zip(COLUMNS, values))
            try:
                for key, column in SETTING_COLUMNS.items():
                    value = row.pop(column)
                    row[key] = json.loads(value) if key == "model.hidden" else value
                row["weights_seed"] = int(row["weights_seed"])
                for name in RESULT_COLUMNS:
                    if row[name] is not None and not checks.is_real(row[name]):
                        raise ValueError(f"{name} is {row[name]!r}, not a number")
            except (TypeError, ValueError) as error:
                raise self.damaged(f"run {row['key']!r} cannot be read ({error})") from None
            found[row["key"]] = row
        if keys is None:
            return list(found.values())
        return [found[key] for key in keys if key in found]

    def costs(self, key):
        """Every epoch's training cost of a stored run, (epochs,) float64."""
        found = self.connection.execute("SELECT costs FROM costs WHERE key = ?", (key,)).fetchone()
        if found is None:
            if key in self.keys():  # a run is stored with its costs, in one transaction
                raise self.damaged(f"run {key!r} has no costs")
            raise KeyError(key)
        try:
            return np.frombuffer(found[0], dtype="<f8").astype(np.float64)
        except (TypeError, ValueError) as error:
            raise self.damaged(f"the costs of run {key!r} cannot be read ({error})") from None

    # --- records: a study's own rows (initlab deep's, reproduce's), kept by key --------------
    def add_record(self, key, record):
        """Store a dict under `key`, in one transaction; False if the key was stored already (it
        is left as it was). Its JSON values (floats exact, nan and inf included) go to `records`,
        its NumPy arrays (numbers only: never pickled) to `arrays`, as their bytes."""
        arrays = {name: value for name, value in record.items() if isinstance(value, np.ndarray)}
        for name, value in arrays.items():
            if value.dtype.kind not in "biuf":
                raise ValueError(f"record {key!r}: {name} must hold numbers, got {value.dtype}")
        text = json.dumps(
            {name: value for name, value in record.items() if name not in arrays}, sort_keys=True
        )
        with self.connection:
            inserted = self.connection.execute(
                "INSERT OR IGNORE INTO records VALUES (?, ?)", (key, text)
            ).rowcount
            if inserted:
                self.connection.executemany(
                    "INSERT INTO arrays VALUES (?, ?, ?, ?, ?)",
                    [
                        (key, name, value.dtype.str, json.dumps(value.shape), value.tobytes())
                        for name, value in arrays.items()
                    ],
                )
        return bool(inserted)

    def record_keys(self):
        """The keys of every stored record."""
        return {key for (key,) in self.connection.execute("SELECT key FROM records")}

    def records(self):
        """{key: record} of every stored record, in the order stored, with its arrays."""
        found = {}
        for key, text in self.connection.execute("SELECT key, record FROM records ORDER BY rowid"):
            try:
                found[key] = json.loads(text)
                if not isinstance(found[key], dict):
                    raise ValueError(f"it is {type(found[key]).__name__}, not an object")
            except (TypeError, ValueError) as error:
                raise self.damaged(f"record {key!r} cannot be read ({error})") from None
        for key, name, dtype, shape, data in self.connection.execute(
            "SELECT key, name, dtype, shape, data FROM arrays"
        ):
            if key not in found:
                raise self.damaged(f"array {name!r} belongs to no record ({key!r})")
            try:
                if np.dtype(dtype).kind not in "biuf":  # numbers only, as add_record wrote them
                    raise ValueError(f"its dtype is {dtype!r}")
                array = np.frombuffer(data, dtype=dtype).reshape(json.loads(shape)).copy()
            except (TypeError, ValueError) as error:
                raise self.damaged(
                    f"array {name!r} of record {key!r} cannot be read ({error})"
                ) from None
            found[key][name] = array
        return found

    def get_meta(self, name):
        found = self.connection.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if found is None else found[0]

    def set_meta(self, name, value):
        with self.connection:
            self.connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
