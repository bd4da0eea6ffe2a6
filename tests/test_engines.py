"""The engines: serial, local processes and a Dask LocalCluster store the same bits; a Dask
worker killed in the middle loses nothing and counts nothing twice."""

import os
import signal

import pytest

from initlab.sweeps import engines
from initlab.sweeps.spec import parse_spec, plan_runs
from initlab.sweeps.trainer import train_group

SPEC = """
[data]
train = 80
test = 40
[model]
hidden = [6, 4]
[train]
epochs = 150
learning_rate = 0.05
[sweep]
scheme = ["he", "random_normal:10", "glorot_uniform"]
seeds = 4
"train.optimizer" = ["sgd", "momentum"]
"""


@pytest.fixture(scope="module")
def runs():
    return plan_runs(parse_spec(SPEC))


@pytest.fixture(scope="module")
def reference(runs):
    """Each run trained alone, in this process."""
    return {run.key: train_group([run])[0] for run in runs}


def collect(runs, **options):
    results = {}

    def on_result(run, result):
        assert run.key == result.key
        assert run.key not in results, "a run was delivered twice"
        results[run.key] = result

    engines.execute(engines.make_groups(runs, options.pop("groups_per", 2)), on_result, **options)
    return results


def assert_same(results, reference):
    assert set(results) == set(reference)
    for key, result in results.items():
        expected = reference[key]
        assert result.costs.tobytes() == expected.costs.tobytes()
        assert (result.train_accuracy, result.test_accuracy, result.final_loss) == (
            expected.train_accuracy,
            expected.test_accuracy,
            expected.final_loss,
        )


def test_make_groups_keeps_architectures_apart_and_balances(runs):
    groups = engines.make_groups(runs, workers=2)
    assert sorted(run.key for group in groups for run in group) == sorted(r.key for r in runs)
    for group in groups:
        assert len({run.architecture() for run in group}) == 1
    # 12 runs of each optimizer, about two groups per worker: 3 runs a group.
    assert [len(group) for group in groups] == [3] * 8
    # 120 runs of each optimizer on one worker: 8 groups of at most MAX_GROUP, all of 15.
    many = engines.make_groups(runs * 10, workers=1)
    assert [len(group) for group in many] == [15] * 16 and 15 <= engines.MAX_GROUP
    # Sizes differ by one at most, so that the workers end together: 30 runs, 2 workers.
    sizes = [len(g) for g in engines.make_groups(list(range(30)), 2, architecture=lambda r: 0)]
    assert sizes == [7, 8, 7, 8]
    # Groups an Ensemble splits over 2 threads take whole pairs (7 + 7 and 8 + 8, where two
    # groups of 15 would each take as long as 8 + 8), and none is empty.
    sizes = [
        len(g) for g in engines.make_groups(list(range(30)), 1, architecture=lambda r: 0, threads=2)
    ]
    assert sizes == [14, 16]
    sizes = [len(g) for g in engines.make_groups([0, 1, 2], 4, architecture=lambda r: 0, threads=2)]
    assert sizes == [2, 1]


def test_serial_and_local_store_the_bits_of_runs_trained_alone(runs, reference):
    assert_same(collect(runs, backend="serial"), reference)
    assert_same(collect(runs, backend="local", workers=2), reference)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster


def test_a_two_worker_local_cluster_stores_the_same_bits(runs, reference, cluster):
    assert_same(collect(runs, backend="dask", scheduler=cluster.scheduler_address), reference)


def test_a_worker_killed_in_the_middle_loses_nothing(runs, reference, cluster):
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
    killed = []
    delivered = []

    def on_result(run, result):
        delivered.append(run.key)
        if not killed:
            # Both workers are busy with other groups: one dies with its group in flight.
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    # Groups of one run, so work is in flight on both workers when the first result arrives.
    engines.execute(
        [[run] for run in runs], on_result, backend="dask", scheduler=cluster.scheduler_address
    )
    assert killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert sorted(delivered) == sorted(run.key for run in runs)  # each once, none lost
    with Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=60)  # the nanny replaced the killed worker
        assert killed[0] not in client.run(os.getpid).values()


def test_engine_arguments_are_checked(runs):
    with pytest.raises(
        ValueError,
        match=r"--backend must be one of \['serial', 'local', "
        r"'dask'\], got 'gpu'",
    ):
        engines.execute([], print, backend="gpu")
    with pytest.raises(ValueError, match="--scheduler 'tcp://x:1' needs --backend dask"):
        engines.execute([], print, backend="local", scheduler="tcp://x:1")
    with pytest.raises(ValueError, match="--workers must be an integer >= 1, got 0"):
        engines.execute([], print, backend="local", workers=0)
