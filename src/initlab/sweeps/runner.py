"""Run a sweep to completion from wherever it stands: train only the runs its store lacks.

    run_sweep(spec, "results/sweep", backend="local")

The store (DIR/sweep.db) decides what is left: a run whose key is stored is never trained again,
so running the same sweep again after a crash, a SIGKILL or Ctrl-C finishes it, and the rows are
the bits an uninterrupted sweep stores. A spec that grows (more seeds, more axis values, a new
axis whose old value was the fixed one) adds only its new runs. A spec that no longer contains
runs already stored has changed its settings: it is refused unless force=True (the stored runs
are then kept beside the new ones; reports read only the current spec's).

A study's own work resumes the same way: run_records(items, work, out) keys each item by the hash
of its settings, keeps each result in the store's records and arrays tables, and computes only
the items the store lacks, on the same engines (initlab deep, initlab reproduce).

    >>> import tempfile
    >>> from initlab.sweeps.spec import parse_spec
    >>> spec = parse_spec("[train]\\nepochs = 2\\n[sweep]\\nseeds = 2")
    >>> run_sweep(spec, tempfile.mkdtemp(), backend="serial", progress=False)
    SweepStatus(total=2, stored_before=0, trained=2)
"""

import functools
import hashlib
import json
import os
from dataclasses import dataclass

from initlab import checks, environment
from initlab.sweeps import engines
from initlab.sweeps.spec import Spec, plan_runs
from initlab.sweeps.store import Store
from initlab.sweeps.trainer import CHECKPOINT_SECONDS, checkpoint_files, group_bytes

STORE_NAME = "sweep.db"
CHECKPOINT_DIR = "checkpoints"


@dataclass
class SweepStatus:
    """total: the spec's runs; stored_before: how many of them the store held before this call;
    trained: how many this call trained and stored."""

    total: int
    stored_before: int
    trained: int


class SweepInterrupted(Exception):
    """Raised (from KeyboardInterrupt) with how many of the spec's runs the store keeps."""

    def __init__(self, kept, total):
        super().__init__(f"{kept} of {total} runs kept")
        self.kept, self.total = kept, total


def store_path(out):
    """Where the store of directory `out` is (or would be)."""
    return os.path.join(os.path.abspath(os.fspath(out)), STORE_NAME)


def open_store(out):
    """The store in directory `out`, created with the directory if needed."""
    out = os.path.abspath(os.fspath(out))
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--out {out!r} cannot be created ({error.strerror})") from None
    return Store(store_path(out))


def check_compatible(spec, store, force=False):
    """ValueError unless every run stored is one of the spec's (or force): the spec changed."""
    planned = {run.key for run in plan_runs(spec)}
    orphans = store.keys() - planned
    if not orphans or force:
        return
    stored = store.get_meta("spec")
    changes = _changes(Spec.from_json(stored), spec) if stored else []
    raise ValueError(
        f"{store.path!r} holds {len(orphans)} runs that this spec does not contain: its settings "
        f"changed ({'; '.join(changes) or 'settings differ'}). Pass --force to run it anyway "
        f"(the stored runs are kept), or choose another --out"
    )


def _changes(old, new):
    """What differs between two specs, as 'key: old -> new' phrases."""

    def values(spec):
        return {
            **{key: [value] for key, value in spec.fixed.items()},
            **spec.axes,
            "sweep.seed": [spec.seed],
            "sweep.seeds": [spec.seeds],
        }

    before, after = values(old), values(new)
    return [
        f"{key}: {_show(before.get(key))} -> {_show(after.get(key))}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def _show(values):
    return repr(values[0]) if values and len(values) == 1 else repr(values)


def run_sweep(
    spec,
    out,
    backend="local",
    scheduler=None,
    workers=None,
    force=False,
    progress=True,
    checkpoint_seconds=CHECKPOINT_SECONDS,
    before_training=None,
):
    """Train the spec's runs that `out`'s store lacks and store each as it finishes.

    before_training : called with those runs, if any, before the first trains.

    Returns a SweepStatus. Raises SweepInterrupted on Ctrl-C (the store keeps every run
    finished), ValueError for bad arguments, a changed spec or runs too large for this
    machine's memory (before anything trains).
    """
    if backend not in engines.BACKENDS:
        raise ValueError(f"--backend must be one of {list(engines.BACKENDS)}, got {backend!r}")
    if workers is None:
        workers = 1 if backend == "serial" else engines.default_workers()
    workers = checks.integer("--workers", workers, minimum=1)
    runs = plan_runs(spec)
    if scheduler is None:  # a cluster elsewhere has memory of its own
        check_memory(runs, backend, workers)
    store = open_store(out)
    try:
        check_compatible(spec, store, force)
        stored = store.keys()
        missing = [run for run in runs if run.key not in stored]
        store.set_meta("spec", spec.to_json())
        status = SweepStatus(total=len(runs), stored_before=len(runs) - len(missing), trained=0)
        checkpoints = os.path.join(os.path.dirname(store.path), CHECKPOINT_DIR)
        _clean_checkpoints(checkpoints, stored)
        if before_training is not None and missing:
            before_training(missing)
        with _progress_bar(progress, len(runs), status.stored_before) as bar:

            def on_result(run, result):
                if store.add(run, result):
                    status.trained += 1
                    bar.update(1)
                for path in checkpoint_files(checkpoints, run.key):
                    os.remove(path)

            engines.execute(
                engines.make_groups(missing, workers),
                on_result,
                backend,
                scheduler,
                workers,
                checkpoints,
                checkpoint_seconds,
            )
        return status
    except KeyboardInterrupt:
        # Counted from the store: Ctrl-C may land between a commit and the count.
        kept = len(store.keys() & {run.key for run in runs})
        raise SweepInterrupted(kept, len(runs)) from None
    finally:
        store.close()


def check_memory(runs, backend, workers):
    """Refuse, before anything is written, runs whose groups would not fit in this machine's
    memory: the largest group (trainer.group_bytes) in every worker that trains at once."""
    groups = engines.make_groups(runs, workers)
    largest = max(groups, key=group_bytes)
    at_once = 1 if backend == "serial" else min(workers, len(groups))
    s = largest[0].settings
    together = at_once * len(largest)
    if together == 1:
        runs_said = "a run"
    elif at_once == 1:
        runs_said = f"{together} runs at once (one group)"
    else:
        runs_said = f"{together} runs at once ({at_once} workers, {len(largest)} each)"
    checks.memory(
        f"{runs_said} of {s['train.epochs']} epochs, hidden widths {list(s['model.hidden'])}, "
        f"{s['data.train']} {s['data.name']} samples",
        at_once * group_bytes(largest),
        "make the spec's networks, data or epochs smaller"
        + (", or use fewer --workers" if at_once > 1 else ""),
    )


# --- a study's records: any work, by key, in the same store and on the same engines -------------
def record_key(item):
    """A record's key in the store: the hash of its item, everything its record depends on."""
    text = json.dumps(item, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def missing_items(items, out):
    """The items whose records the store in `out` lacks, in order: what run_records would
    compute. Asking writes nothing: without a store, every item is missing."""
    if not os.path.isfile(store_path(out)):
        return list(items)
    store = open_store(out)
    try:
        keys = store.record_keys()
    finally:
        store.close()
    return [item for item in items if record_key(item) not in keys]


def run_records(
    items,
    work,
    out,
    backend="local",
    scheduler=None,
    workers=None,
    groups=None,
    progress=True,
    desc="sweep",
    unit="run",
    label=None,
    check=None,
):
    """Each item's record, in order: those the store in `out` holds as they were stored, the
    others computed on the backend and stored as each group of them ends.

    items : dicts of JSON values, each all that its record depends on (record_key hashes it)
    work : work(group) -> one record per item of the group: a dict of JSON values and NumPy
        arrays (Store.add_record); a module-level function, which the workers import by name
    groups : (missing items, workers) -> the groups to compute, in order; default one per item
    progress : a bar on stderr: True, False, or None for a terminal only; desc and unit name
        it, label(item) says which item ended last
    check : check(item, record) raises ValueError, in words, if a stored record is not one work
        could have returned for item (has_fields is one); the store is then said to be damaged
    The store keeps each record with the environment it was computed in (recorded_work).
    Returns (records, how many the store held before, trained_in(records)): the records as work
    returned them, and where they were computed. Raises SweepInterrupted (how many of
    the items the store keeps) on Ctrl-C: every record finished is kept.

    This is how `initlab deep` and `initlab reproduce` run: killed and run again, they compute
    only what the store lacks, and get what one uninterrupted run gets.
    """
    if workers is None:
        workers = 1 if backend == "serial" else engines.default_workers()
    keys = [record_key(item) for item in items]
    store = open_store(out)
    try:
        records = store.records()
        if check is not None:
            for item, key in zip(items, keys):
                if key in records:
                    try:
                        check(item, records[key])
                    except ValueError as error:
                        raise store.damaged(f"record {key!r} {error}") from None
        stored_before = sum(key in records for key in keys)
        missing = [item for item, key in zip(items, keys) if key not in records]
        plan = groups(missing, workers) if groups else [[item] for item in missing]
        with _progress_bar(progress, len(items), stored_before, desc, unit) as bar:

            def on_result(item, record):
                key = record_key(item)
                records[key] = record
                store.add_record(key, record)
                if label is not None:
                    bar.set_postfix_str(label(item))
                bar.update(1)

            if plan:  # a complete store starts no workers (nor a Dask cluster)
                engines.execute(
                    plan,
                    on_result,
                    backend,
                    scheduler,
                    workers,
                    work=functools.partial(recorded_work, work),
                )
        found = [records[key] for key in keys]
        return [_without_environment(record) for record in found], stored_before, trained_in(found)
    except KeyboardInterrupt:
        raise SweepInterrupted(len(store.record_keys() & set(keys)), len(items)) from None
    finally:
        store.close()


def recorded_work(work, group, *arguments):
    """work(group, *arguments), each record with the environment it was computed in
    (environment.describe(), under "environment"): a store's records may come from another
    machine, or another version of initlab, NumPy or Numba, than the files made from them. A
    module-level function, so that the workers import it by name."""
    where = environment.describe()
    return [{**record, "environment": where} for record in work(group, *arguments)]


def trained_in(records):
    """The environments `records` were computed in (recorded_work's), each once, in order of
    first appearance: [{"runs": how many, "environment": describe()'s dict}]; the environment is
    None for records an initlab that did not record it stored."""
    found = {}
    for record in records:
        where = record.get("environment")
        found.setdefault(json.dumps(where, sort_keys=True), [0, where])[0] += 1
    return [{"runs": count, "environment": where} for count, where in found.values()]


def has_fields(*names, numbers=()):
    """A check for run_records: the record holds each of `names`, and each of `numbers` is a
    number (or None: a value that was not measured)."""

    def check(item, record):
        missing = [name for name in names if name not in record]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        for name in numbers:
            if record[name] is not None and not checks.is_real(record[name]):
                raise ValueError(f"has {name} {record[name]!r}, not a number")

    return check


def _without_environment(record):
    return {name: value for name, value in record.items() if name != "environment"}


def _clean_checkpoints(checkpoints, stored):
    """Remove what a killed sweep left behind: half-written temporary files, and checkpoints of
    runs stored since. (One sweep at a time writes a DIR, so no temporary file is in use.)"""
    if not os.path.isdir(checkpoints):
        return
    for name in os.listdir(checkpoints):
        if name.endswith(".tmp") or ".tmp." in name or name.split(".", 1)[0] in stored:
            os.remove(os.path.join(checkpoints, name))


def _progress_bar(enabled, total, done, desc="sweep", unit="run"):
    from tqdm import tqdm

    # tqdm shows runs done / total, the rate and the time left from the runs of this sitting;
    # enabled None leaves it to tqdm (shown on a terminal only).
    return tqdm(
        total=total,
        initial=done,
        unit=unit,
        desc=desc,
        dynamic_ncols=True,
        disable=None if enabled is None else not enabled,
    )
