"""Training a group of runs: the same bits in any group, after any checkpoint, as alone."""

import os

import numpy as np
import pytest

import initlab.sweeps.trainer as trainer
from initlab.blocks import datasets
from initlab.sweeps.spec import parse_spec, plan_runs
from initlab.sweeps.trainer import checkpoint_files, make_data, make_model, train_group

SPEC = """
[data]
train = 60
test = 30
[model]
hidden = [5, 4]
[train]
epochs = 40
learning_rate = 0.1
optimizer = "adam"
batch_size = 16
[sweep]
scheme = ["he", "random_normal:3", "lsuv", "zeros"]
seeds = 2
"""


@pytest.fixture(scope="module")
def runs():
    return plan_runs(parse_spec(SPEC))


def same(results, others):
    return all(
        a.key == b.key
        and a.costs.tobytes() == b.costs.tobytes()
        and (a.train_accuracy, a.test_accuracy, a.final_loss)
        == (b.train_accuracy, b.test_accuracy, b.final_loss)
        for a, b in zip(results, others, strict=True)
    )


def test_a_run_gets_the_same_bits_in_any_group(runs):
    together = train_group(runs)
    alone = [train_group([run])[0] for run in runs]
    shuffled = train_group(runs[::-1])[::-1]
    assert same(together, alone) and same(together, shuffled)
    assert all(
        result.costs.shape == (40,) and result.costs.dtype == np.float64 for result in together
    )
    assert together[-1].test_accuracy == 50.0 or together[-1].final_loss == pytest.approx(
        np.log(2)
    )  # zeros learns nothing: every output is 1/2


def test_a_run_matches_the_model_trained_alone_by_fit(runs):
    run = runs[0]
    (result,) = train_group([run])
    X_train, Y_train, X_test, Y_test = make_data(run)
    model = make_model(run, X_train, 1)
    history = model.fit(X_train, Y_train, epochs=40, learning_rate=0.1, batch_size=16)
    np.testing.assert_allclose(result.costs, history["loss"], rtol=1e-12)
    assert result.test_accuracy == model.evaluate(X_test, Y_test)["accuracy"]
    assert result.train_accuracy == model.evaluate(X_train, Y_train)["accuracy"]


def test_make_data_draws_the_runs_data_sets(runs):
    X_train, Y_train, X_test, Y_test = make_data(runs[1])
    expected = datasets.moons(60, noise=0.2, seed=runs[1].train_data_seed)
    assert np.array_equal(X_train, expected[0]) and np.array_equal(Y_train, expected[1])
    assert X_test.shape == (2, 30) and Y_test.shape == (1, 30)
    digits_run = plan_runs(parse_spec("[data]\nname = 'digits'\ntrain = 100\ntest = 40"))[0]
    X_train, Y_train, X_test, Y_test = make_data(digits_run)
    assert X_train.shape == (64, 100) and X_test.shape == (64, 40)
    assert np.array_equal(Y_train.sum(axis=0), np.ones(100)) and Y_test.shape == (10, 40)
    model = make_model(digits_run, X_train, 10)
    assert [layer.units for layer in model.layers] == [12, 6, 10]
    assert model.layers[-1].activation.name == "softmax"


def test_checkpoints_resume_to_the_same_bits(runs, tmp_path, monkeypatch):
    reference = train_group(runs)
    save = trainer._save_checkpoint
    saved = []

    def save_then_die(*args):
        save(*args)
        saved.append(args[-1])
        if len(saved) == 20:  # in the middle: some runs at a later epoch than others
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_group(runs, str(tmp_path), checkpoint_seconds=0)
    monkeypatch.setattr(trainer, "_save_checkpoint", save)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 * len(runs)  # one model and its costs per run: older ones removed
    epochs = {name.split(".e")[1].split(".")[0] for name in files}
    assert len(epochs) == 2  # the group was caught between two slices
    assert same(train_group(runs, str(tmp_path), checkpoint_seconds=0), reference)


def test_a_damaged_checkpoint_is_passed_over(runs, tmp_path):
    run = runs[0]
    model = make_model(run, make_data(run)[0], 1)
    model.fit(*make_data(run)[:2], epochs=1)
    trainer._save_checkpoint(str(tmp_path), run, model, np.zeros(1), 1)
    with open(tmp_path / f"{run.key}.e1.npz", "r+b") as handle:
        handle.truncate(100)
    assert trainer._load_checkpoint(str(tmp_path), run)[0] == 0
    assert same(train_group([run], str(tmp_path)), train_group([run]))
    assert len(checkpoint_files(str(tmp_path), run.key)) == 2  # the caller removes them


def test_a_group_must_share_an_architecture():
    mixed = plan_runs(parse_spec("[sweep]\n'model.hidden' = [[3], [4]]\n[train]\nepochs = 2"))
    with pytest.raises(ValueError, match="one architecture"):
        train_group(mixed)


def test_networks_per_kernel_gives_one_network_per_activation_and_kind_of_output(new_machine):
    spec = parse_spec(
        SPEC.replace('scheme = ["he", "random_normal:3", "lsuv", "zeros"]', "")
        + '"model.activation" = ["relu", "tanh"]\nscheme = ["he", "zeros"]\n'
        + '"data.name" = ["moons", "circles", "digits"]\n'
    )
    runs = plan_runs(spec)
    networks = trainer.networks_per_kernel(runs)
    # moons and circles share a sigmoid output, digits has a softmax over ten classes.
    kinds = {(n.layers[0].activation.name, n.layers[-1].activation.name) for n in networks}
    assert len(networks) == 4
    assert kinds == {(a, o) for a in ("relu", "tanh") for o in ("sigmoid", "softmax")}
    sources = set()
    for network in networks:
        # Each is the network its runs train, not built (nothing drawn), and needs its own kernel.
        run = next(
            run
            for run in runs
            if run.settings["model.activation"] == network.layers[0].activation.name
            and (run.settings["data.name"] == "digits") == (network.layers[-1].units == 10)
        )
        X_train, Y_train = make_data(run)[:2]
        trained = make_model(run, X_train, Y_train.shape[0])
        assert not network.built
        assert [(layer.units, layer.activation.name) for layer in network.layers] == [
            (layer.units, layer.activation.name) for layer in trained.layers
        ]
        assert type(network.loss) is type(trained.loss)
        assert not new_machine.is_compiled(network.layers, network.loss, network.dtype)
        sources.add(new_machine._source_of(network.layers, network.loss, network.dtype)[0])
    assert len(sources) == 4


@pytest.mark.parametrize("training", ["", "batch_size = 64\noptimizer = 'adam'\n"])
def test_group_bytes_covers_what_a_group_allocates(training):
    # The sweep refuses a spec by this estimate: below what train_group takes, a spec could
    # pass and then run out of memory; far above, it would refuse what fits. (The kernel's own
    # buffers, allocated by Numba, are not traced: the estimate has room for them.)
    import tracemalloc

    text = "[data]\ntrain = 5000\ntest = 2000\n[model]\nhidden = [32, 16]\n[train]\nepochs = 20\n"
    runs = plan_runs(parse_spec(text + training + "[sweep]\nseeds = 4\n"))
    train_group(runs[:1])  # imports and compiles outside the trace
    tracemalloc.start()
    try:
        train_group(runs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= trainer.group_bytes(runs) <= 3 * peak
