"""Where a sweep's runs train: in this process, in a pool of local processes, or on Dask.

    serial   this process, one group after another
    local    joblib's process pool (loky), one worker per core of this machine (the default)
    dask     a dask.distributed cluster: the one at `scheduler` (tcp://host:port), else a
             LocalCluster of worker processes started for the sweep

Runs are split into groups that share an architecture (trainer.train_group trains each group as
one Ensemble); every backend runs the same groups' function on the same inputs, and a run's
numbers do not depend on its group, so the results are the same bits whatever the backend.
Results come back to the calling process, which alone writes the store. On Dask a group whose
worker dies is retried on another worker; the store keeps a run once, whichever copy ends first.

    >>> from initlab.sweeps.spec import parse_spec, plan_runs
    >>> runs = plan_runs(parse_spec("[train]\\nepochs = 2\\n[sweep]\\nseeds = 6"))
    >>> [len(group) for group in make_groups(runs, workers=2)]
    [2, 2, 2]
"""

import itertools
import math
import os
import signal
from concurrent.futures import FIRST_COMPLETED, wait

from initlab import checks
from initlab.interrupts import held_interrupt
from initlab.sweeps.trainer import CHECKPOINT_SECONDS, train_group

BACKENDS = ("serial", "local", "dask")
# The most runs one Ensemble trains: more no longer gains speed, and a group is the unit a
# progress bar moves by and a killed worker loses.
MAX_GROUP = 16


def default_workers():
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_groups(runs, workers, architecture=None, threads=1):
    """Split runs into groups of one architecture, about two per worker, at most MAX_GROUP each,
    and of one architecture's runs as equal in size as can be (so the workers end together).

    architecture : run -> what the runs trained together must share (default
        run.architecture(), a sweep's spec.Run); a study's items pass their own
    threads : the threads a group's Ensemble splits its runs over (compiled, in this process);
        sizes are multiples of it where they can be, so that those threads end together too:
        30 runs on 2 threads in 2 groups are 16 and 14 (8 + 8, 7 + 7), not 15 and 15 (8 + 7,
        which take as long as 8 + 8).
    """
    architecture = architecture or (lambda run: run.architecture())
    by_architecture = {}
    for run in runs:
        by_architecture.setdefault(architecture(run), []).append(run)
    groups = []
    for members in by_architecture.values():
        n = len(members)
        size = max(1, min(MAX_GROUP, math.ceil(n / (2 * workers))))
        count = math.ceil(n / size)
        # Blocks of `threads` runs, as many to each group as can be: 30 runs in 4 groups are 8,
        # 8, 7, 7 (not 8, 8, 8, 6).
        blocks = math.ceil(n / threads)
        bounds = [min(n, threads * (blocks * i // count)) for i in range(count + 1)]
        groups += [members[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    return groups


def execute(
    groups,
    on_result,
    backend="local",
    scheduler=None,
    workers=None,
    checkpoints=None,
    checkpoint_seconds=CHECKPOINT_SECONDS,
    work=None,
    arguments=None,
):
    """Train every group; call on_result(run, result) here, in this process, for each run.

    backend : "serial", "local" or "dask"; scheduler : a Dask scheduler's address (dask only)
    workers : processes for local and a new LocalCluster (default: this machine's cores)
    checkpoints : a directory every worker can write (see trainer), or None
    work, arguments : what a worker calls, work(group, *arguments) -> one result per item of
        the group; by default trainer.train_group(group, checkpoints, checkpoint_seconds). A
        study passes its own module-level function (the workers import it by name).
    KeyboardInterrupt stops the workers and propagates; what on_result got is kept.
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {list(BACKENDS)}, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"--scheduler {scheduler!r} needs --backend dask, got {backend!r}")
    workers = (
        default_workers() if workers is None else checks.integer("--workers", workers, minimum=1)
    )
    if work is None:
        work, arguments = train_group, (checkpoints, checkpoint_seconds)
    arguments = tuple(arguments or ())
    if backend == "serial":
        for group in groups:
            for run, result in zip(group, work(group, *arguments)):
                on_result(run, result)
        return
    if backend == "local":
        _local(groups, on_result, workers, work, arguments)
    else:
        _dask(groups, on_result, scheduler, workers, work, arguments)


def _ignore_interrupt():
    # Ctrl-C reaches every process of the terminal's group: the workers leave it to the parent,
    # which stops them, so the user sees one line rather than a traceback per worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_resource_trackers():
    # multiprocessing's and loky's resource trackers start with the first worker, and Python
    # 3.11's unblocks SIGINT as it does: they start before it is held.
    from multiprocessing import resource_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    resource_tracker.ensure_running()
    loky_tracker.ensure_running()


def _local(groups, on_result, workers, work, arguments):
    try:
        from joblib.externals.loky import get_reusable_executor
    except ImportError:
        raise ValueError(
            "--backend local needs joblib: pip install 'initlab[cluster]' (or use --backend serial)"
        ) from None

    workers = min(workers, len(groups) or 1)
    # As joblib.Parallel does: the workers share the cores, so each BLAS (and Numba, for a
    # compiled fit) gets its share of threads rather than every worker starting one per core.
    threads = str(max(1, default_workers() // workers))
    executor, pending, waiting = None, {}, iter(groups)

    def submit(count):
        # A Ctrl-C while a worker starts (the first ones, or one loky replaces) waits for it:
        # each starts with SIGINT blocked until its initializer ignores it (else: a traceback
        # from each one still importing).
        with held_interrupt():
            for group in itertools.islice(waiting, count):
                pending[executor.submit(work, group, *arguments)] = group

    try:
        _start_resource_trackers()
        with held_interrupt():
            executor = get_reusable_executor(
                max_workers=workers,
                initializer=_ignore_interrupt,
                env={
                    name: threads
                    for name in (
                        "OMP_NUM_THREADS",
                        "OPENBLAS_NUM_THREADS",
                        "MKL_NUM_THREADS",
                        "NUMBA_NUM_THREADS",
                    )
                },
            )
        # One group more than the workers in flight, the next submitted as one ends: the pool's
        # queue then holds every group submitted, which loky's kill_workers shutdown needs (it
        # fails, with a traceback, on groups still waiting for its queue).
        submit(workers + 1)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                group = pending.pop(future)
                results = future.result()
                submit(1)
                for run, result in zip(group, results):
                    on_result(run, result)
    except BaseException:
        # The workers are killed and the pool shut down before the error goes on: its queues'
        # semaphores are released here, not left to the resource tracker, which would warn of
        # them after the command's last line.
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)
        raise
    # No pool or its manager thread outlives the sweep (a long-lived caller would keep both).
    executor.shutdown(wait=True)


def _dask(groups, on_result, scheduler, workers, work, arguments):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError(
            "--backend dask needs dask.distributed: pip install 'initlab[cluster]'"
        ) from None
    import logging

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        address = cluster.scheduler_address
    else:
        address = scheduler
    try:
        client = Client(address, timeout="20s")
    except OSError as error:
        if cluster is not None:
            cluster.close()
        raise ValueError(
            f"--scheduler {scheduler!r}: no Dask scheduler answers there ({error})"
        ) from None
    futures = {}
    try:
        for group in groups:
            futures[client.submit(work, group, *arguments, pure=False)] = group
        for future in as_completed(list(futures)):
            for run, result in zip(futures[future], future.result()):
                on_result(run, result)
    finally:
        client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()
