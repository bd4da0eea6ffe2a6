"""Ensemble: K stacked models give what the K models give trained one by one."""

import numpy as np
import pytest

from initlab import Dense, NeuralNetwork
from initlab.blocks import datasets, optimizers
from initlab.blocks.initializers import Initializer
from initlab.tools import ensemble as ensemble_module
from initlab.tools.ensemble import Ensemble

X, Y = datasets.moons(120, noise=0.2, seed=0)


def post_model(initializer="he", seed=0, optimizer=None, dtype="float64", units=(12, 6)):
    model = NeuralNetwork(seed=seed, dtype=dtype)
    model.add(Dense(units=units[0], activation="relu", initializer=initializer))
    model.add(Dense(units=units[1], activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid", initializer=initializer))
    model.compile(loss="crossentropy", optimizer=optimizer)
    return model


def test_64_models_at_once_equal_64_trained_one_by_one():
    seeds = range(64)
    initializers = ["he", Initializer(scale=0.5), "random_normal", "zeros"]

    def make(k):
        return post_model(initializers[k % 4], seed=seeds[k])

    ens = Ensemble([make(k) for k in range(64)])
    history = ens.fit(X, Y, epochs=60, learning_rate=0.05, log_every=25)
    assert history["loss"].shape == (60, 64)
    assert [cost.shape for cost in ens.costs] == [(64,)] * 4  # epochs 0, 25, 50 and 59
    for k in range(64):
        alone = make(k)
        expected = alone.fit(X, Y, epochs=60, learning_rate=0.05, log_every=25)["loss"]
        np.testing.assert_allclose(history["loss"][:, k], expected, rtol=1e-12)
        np.testing.assert_allclose(
            ens.models[k].parameters, alone.parameters, rtol=1e-10, atol=1e-14
        )
        np.testing.assert_allclose(ens.models[k].costs, alone.costs, rtol=1e-12)
        np.testing.assert_allclose(ens.models[k].history["loss"], expected, rtol=1e-12)
    # zeros learn nothing, in the stack as alone: the cost stays ln 2
    np.testing.assert_allclose(history["loss"][-1, 3::4], np.log(2), rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("batch_size", [None, 32])
def test_optimizers_and_minibatches_match_one_by_one(optimizer, batch_size):
    # With minibatches each model draws its own order from its own seed, as it does alone.
    models = [post_model(seed=s, optimizer=optimizer) for s in (4, 5, 6)]
    history = Ensemble(models).fit(X, Y, epochs=8, batch_size=batch_size)["loss"]
    for k, seed in enumerate((4, 5, 6)):
        alone = post_model(seed=seed, optimizer=optimizer)
        expected = alone.fit(X, Y, epochs=8, batch_size=batch_size)["loss"]
        np.testing.assert_allclose(history[:, k], expected, rtol=1e-11)
        np.testing.assert_allclose(models[k].parameters, alone.parameters, rtol=1e-9, atol=1e-13)


def test_one_data_set_per_model():
    data = [datasets.moons(80, noise=0.1 * (k + 1), seed=k) for k in range(3)]
    Xs, Ys = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])
    models = [post_model(seed=k) for k in range(3)]
    ens = Ensemble(models)
    history = ens.fit(Xs, Ys, epochs=20, batch_size=16)["loss"]
    for k in range(3):
        alone = post_model(seed=k)
        expected = alone.fit(data[k][0], data[k][1], epochs=20, batch_size=16)["loss"]
        np.testing.assert_allclose(history[:, k], expected, rtol=1e-11)
    predictions = ens.predict(Xs)
    assert predictions.shape == (3, 1, 80)
    for k in range(3):
        np.testing.assert_allclose(predictions[k], models[k].predict(data[k][0]), rtol=1e-12)


def test_softmax_models_match_one_by_one():
    Xc, labels = datasets.moons(90, noise=0.3, seed=1)
    Yc = np.vstack([labels, 1 - labels])

    def make(seed):
        model = NeuralNetwork(seed=seed)
        model.add(Dense(units=8, activation="tanh", initializer="he"))
        model.add(Dense(units=2, activation="softmax"))
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        return model

    ens = Ensemble([make(s) for s in range(4)])
    history = ens.fit(Xc, Yc, epochs=30)["loss"]
    result = ens.evaluate(Xc, Yc)
    for k in range(4):
        alone = make(k)
        np.testing.assert_allclose(history[:, k], alone.fit(Xc, Yc, epochs=30)["loss"], rtol=1e-11)
        expected = alone.evaluate(Xc, Yc)
        assert result["accuracy"][k] == expected["accuracy"]
        assert result["loss"][k] == pytest.approx(expected["loss"], rel=1e-10)


def test_predict_and_evaluate_report_each_model():
    models = [post_model(seed=s) for s in range(5)]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=40, learning_rate=0.1)
    predictions = ens.predict(X)
    result = ens.evaluate(X, Y)
    assert predictions.shape == (5, 1, X.shape[1])
    assert result["accuracy"].shape == result["loss"].shape == (5,)
    for k, model in enumerate(models):
        np.testing.assert_allclose(predictions[k], model.predict(X), rtol=1e-12)
        expected = model.evaluate(X, Y)
        assert result["accuracy"][k] == expected["accuracy"]
        assert result["loss"][k] == pytest.approx(expected["loss"], rel=1e-12)


def test_models_are_built_as_they_build_themselves_and_keep_prior_changes():
    fresh = [post_model(seed=s) for s in (10, 11)]
    for model in fresh:
        model.build(2)
    models = [post_model(seed=s) for s in (10, 11, 12)]
    models[2].build(2)
    models[2].layers[0].weights = np.full((12, 2), 0.25)  # a re-initialisation before stacking
    prior = models[2].parameters.copy()
    ens = Ensemble(models)
    ens.predict(X)  # builds the unbuilt ones
    for model, reference in zip(models[:2], fresh, strict=True):
        np.testing.assert_array_equal(model.parameters, reference.parameters)
    np.testing.assert_array_equal(models[2].parameters, prior)


def test_fit_continues_and_trained_models_save_and_load(tmp_path):
    models = [post_model(seed=s) for s in range(3)]
    ens = Ensemble(models)
    first = ens.fit(X, Y, epochs=20, learning_rate=0.05)["loss"]
    second = ens.fit(X, Y, epochs=20, learning_rate=0.05)["loss"]
    alone = post_model(seed=1)
    expected = alone.fit(X, Y, epochs=40, learning_rate=0.05)["loss"]
    np.testing.assert_allclose(np.concatenate([first[:, 1], second[:, 1]]), expected, rtol=1e-11)
    assert ens.learning_rate == models[1].learning_rate == 0.05
    path = tmp_path / "model1.npz"
    models[1].save(path)
    np.testing.assert_array_equal(NeuralNetwork.load(path).predict(X), models[1].predict(X))


def test_changes_to_a_model_between_fits_are_picked_up():
    models = [post_model(seed=s) for s in range(2)]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=5)
    models[0].layers[2].bias = np.array([[3.0]])
    np.testing.assert_allclose(ens.predict(X)[0], models[0].predict(X), rtol=1e-12)


def test_callbacks_get_the_ensemble_and_one_cost_per_model_and_can_stop():
    class Recorder:
        def __init__(self):
            self.calls = []

        def on_train_begin(self, owner):
            self.calls.append(("begin", owner))

        def on_epoch_end(self, owner, epoch, cost):
            self.calls.append(("epoch", epoch, np.array(cost)))
            if epoch == 6:
                owner.stop_training = True

        def on_train_end(self, owner):
            self.calls.append(("end", owner))

    models = [post_model(seed=s) for s in range(4)]
    ens = Ensemble(models)
    recorder = Recorder()
    history = ens.fit(X, Y, epochs=50, callbacks=[recorder])["loss"]
    assert history.shape == (7, 4)
    assert recorder.calls[0] == ("begin", ens) and recorder.calls[-1] == ("end", ens)
    epochs = [call for call in recorder.calls if call[0] == "epoch"]
    assert [call[1] for call in epochs] == list(range(7))
    for _, epoch, cost in epochs:
        np.testing.assert_array_equal(cost, history[epoch])
    assert models[0].history["loss"].shape == (7,)


def test_float32_ensemble():
    models = [post_model(seed=s, dtype="float32") for s in range(3)]
    history = Ensemble(models).fit(X, Y, epochs=30)["loss"]
    alone = post_model(seed=2, dtype="float32")
    np.testing.assert_allclose(history[:, 2], alone.fit(X, Y, epochs=30)["loss"], rtol=1e-5)
    assert models[2].parameters.dtype == np.float32


# --- validation ------------------------------------------------------------------------------


def uncompiled():
    model = NeuralNetwork()
    model.add(Dense(units=3))
    return model


def other_loss():
    model = post_model()
    model.compile(loss="mse")
    return model


@pytest.mark.parametrize(
    "odd, message",
    [
        (
            lambda: post_model(units=(12, 8)),
            r"models\[1\] differs from models\[0\]: layer 2's units",
        ),
        (lambda: post_model(optimizer="adam"), r"models\[1\].*the optimizer"),
        (lambda: post_model(dtype="float32"), r"models\[1\].*dtype"),
        (other_loss, r"models\[1\].*the loss"),
        (uncompiled, r"models\[1\] is not compiled"),
        (lambda: "model", r"models\[1\] must be a NeuralNetwork"),
    ],
)
def test_mismatched_models_are_named(odd, message):
    with pytest.raises(ValueError, match=message):
        Ensemble([post_model(), odd()])


def test_mismatched_activation_and_depth_are_named():
    model = NeuralNetwork()
    model.add(Dense(units=12, activation="tanh"))
    model.add(Dense(units=6, activation="relu"))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    with pytest.raises(ValueError, match=r"layer 1's activation"):
        Ensemble([post_model(), model])
    shallow = NeuralNetwork()
    shallow.add(Dense(units=1, activation="sigmoid"))
    shallow.compile(loss="crossentropy")
    with pytest.raises(ValueError, match="the number of layers is 1"):
        Ensemble([post_model(), shallow])


def test_bad_model_lists():
    model = post_model()
    with pytest.raises(ValueError, match="same object"):
        Ensemble([model, model])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="must be a list"):
        Ensemble(model)


def _built(n_features):
    model = post_model()
    model.build(n_features)
    return model


def test_models_built_for_other_data_are_named():
    with pytest.raises(ValueError, match="layer 1's fan_in is 3, models.0. has 2"):
        Ensemble([_built(2), _built(3)])
    ens = Ensemble([post_model(), _built(3)])  # the unbuilt one would be built for X
    with pytest.raises(ValueError, match="X must have 3 features"):
        ens.fit(X, Y, epochs=1)


@pytest.mark.parametrize(
    "bad_X, bad_Y, message",
    [
        (X[0], Y, r"X must be \(n_features, m\)"),
        (np.stack([X] * 3), Y, r"holds 3 data sets, but the ensemble has K = 2"),
        (X, Y[:, :50], "as many samples"),
        (X, Y * 2, "labels 0 or 1"),
        (np.where(X > 1, np.nan, X), Y, "nan or inf"),
        (X[:1], Y, "X must have 2 features"),
    ],
)
def test_bad_data_raises_and_leaves_models_unchanged(bad_X, bad_Y, message):
    models = [_built(2), _built(2)]
    before = [model.parameters.copy() for model in models]
    ens = Ensemble(models)
    with pytest.raises(ValueError, match=message):
        ens.fit(bad_X, bad_Y, epochs=3)
    for model, params in zip(models, before, strict=True):
        np.testing.assert_array_equal(model.parameters, params)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        ens.fit(X, Y, epochs=0)
    with pytest.raises(ValueError, match="learning_rate"):
        ens.fit(X, Y, learning_rate=-1.0)


@pytest.mark.parametrize("with_callback", [False, True])
def test_groups_give_the_numbers_of_one_stack(monkeypatch, with_callback):
    # Groups of 2 (tiny cache budget) against one stack of all 5, with and without a callback
    # (which makes the groups take turns every epoch instead of training one after another).
    data = [datasets.moons(60, noise=0.2, seed=k) for k in range(5)]
    Xs, Ys = np.stack([d[0] for d in data]), np.stack([d[1] for d in data])

    class Costs:
        def on_epoch_end(self, owner, epoch, cost):
            assert cost.shape == (5,)

    def fit(group_bytes):
        monkeypatch.setattr(ensemble_module, "GROUP_BYTES", group_bytes)
        ens = Ensemble([post_model(seed=s, optimizer="momentum") for s in range(5)])
        history = ens.fit(
            Xs,
            Ys,
            epochs=12,
            batch_size=25,
            log_every=5,
            callbacks=[Costs()] if with_callback else (),
            jit_compile=False,  # groups by memory are the NumPy path's
        )["loss"]
        return ens, history

    grouped, history = fit(2 * 84 * 25 * 8)
    whole, expected = fit(2**40)
    assert len(grouped._groups) == 3 and len(whole._groups) == 1
    np.testing.assert_array_equal(history, expected)
    np.testing.assert_array_equal(np.stack(grouped.costs), np.stack(whole.costs))
    for a, b in zip(grouped.models, whole.models, strict=True):
        np.testing.assert_array_equal(a.parameters, b.parameters)
    np.testing.assert_array_equal(grouped.predict(Xs), whole.predict(Xs))


# --- optimizer state: the models are the reference --------------------------------------------

STATEFUL = [("momentum", None), ("momentum", 32), ("adam", None), ("adam", 32)]
SEEDS = (7, 8, 9)


def _alone(seed, optimizer, batch_size, epochs):
    """A model trained alone, in one fit per entry of `epochs`."""
    # Compiled with the rate it is fit with, so that fresh and trained ones may share an ensemble.
    model = post_model(seed=seed, optimizer={"name": optimizer, "learning_rate": 0.02})
    for count in epochs:
        model.fit(X, Y, epochs=count, learning_rate=0.02, batch_size=batch_size)
    return model


def _assert_same_training(model, reference):
    np.testing.assert_allclose(model.parameters, reference.parameters, rtol=1e-12, atol=1e-15)
    for ours, theirs in zip(
        model.optimizer.moments(model.parameters),
        reference.optimizer.moments(reference.parameters),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert getattr(model.optimizer, "iterations", None) == getattr(
        reference.optimizer, "iterations", None
    )


@pytest.mark.parametrize("optimizer, batch_size", STATEFUL)
def test_two_ensemble_fits_equal_two_fits_alone(optimizer, batch_size):
    models = [post_model(seed=s, optimizer=optimizer) for s in SEEDS]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)
    second = ens.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)["loss"]
    for k, seed in enumerate(SEEDS):
        model = post_model(seed=seed, optimizer=optimizer)
        model.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)
        expected = model.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)["loss"]
        np.testing.assert_allclose(second[:, k], expected, rtol=1e-12)
        _assert_same_training(models[k], model)


@pytest.mark.parametrize("optimizer, batch_size", STATEFUL)
def test_a_model_trained_in_an_ensemble_continues_alone_as_if_alone(optimizer, batch_size):
    models = [post_model(seed=s, optimizer=optimizer) for s in SEEDS]
    Ensemble(models).fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)
    for model in models:
        model.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)
    for model, seed in zip(models, SEEDS, strict=True):
        _assert_same_training(model, _alone(seed, optimizer, batch_size, (30, 30)))


@pytest.mark.parametrize("optimizer, batch_size", STATEFUL)
def test_a_model_trained_alone_keeps_its_state_in_an_ensemble(optimizer, batch_size):
    models = [_alone(seed, optimizer, batch_size, (30,)) for seed in SEEDS]
    history = Ensemble(models).fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)[
        "loss"
    ]
    for k, seed in enumerate(SEEDS):
        reference = _alone(seed, optimizer, batch_size, (30,))
        expected = reference.fit(X, Y, epochs=30, learning_rate=0.02, batch_size=batch_size)["loss"]
        np.testing.assert_allclose(history[:, k], expected, rtol=1e-12)
        _assert_same_training(models[k], reference)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_fresh_and_trained_models_each_train_as_alone(optimizer):
    # Adam's step counts differ here (0, 30, 45, 0): each model keeps its own, as it would alone.
    epochs = [(), (30,), (30, 15), ()]
    models = [
        _alone(seed, optimizer, 32, counts) for seed, counts in zip(range(4), epochs, strict=True)
    ]
    if optimizer == "adam":
        assert [model.optimizer.iterations for model in models[1:3]] == [120, 180]
    ens = Ensemble(models)
    for _ in range(2):  # twice: the counts stay apart from one fit to the next
        ens.fit(X, Y, epochs=10, learning_rate=0.02, batch_size=32)
    for k, counts in enumerate(epochs):
        _assert_same_training(models[k], _alone(k, optimizer, 32, counts + (10, 10)))


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_state_is_written_back_when_a_callback_stops_or_an_error_interrupts(optimizer):
    class StopAt:
        def __init__(self, epoch, error=False):
            self.epoch, self.error = epoch, error

        def on_epoch_end(self, owner, epoch, cost):
            if epoch == self.epoch:
                if self.error:
                    raise KeyboardInterrupt
                owner.stop_training = True

    models = [post_model(seed=s, optimizer=optimizer) for s in SEEDS]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=30, learning_rate=0.02, callbacks=[StopAt(11)])  # 12 epochs
    with pytest.raises(KeyboardInterrupt):
        ens.fit(X, Y, epochs=30, learning_rate=0.02, callbacks=[StopAt(4, error=True)])
    for model, seed in zip(models, SEEDS, strict=True):
        _assert_same_training(model, _alone(seed, optimizer, None, (12, 5)))


def test_groups_keep_each_models_state(monkeypatch):
    # Groups of 2: each model's state goes to and comes from the right group and slot.
    monkeypatch.setattr(ensemble_module, "GROUP_BYTES", 2 * 84 * 32 * 8)
    before = [(5,) if seed % 2 else () for seed in range(5)]
    models = [_alone(seed, "adam", 32, before[seed]) for seed in range(5)]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=10, learning_rate=0.02, batch_size=32, jit_compile=False)
    assert len(ens._groups) == 3
    for seed, model in enumerate(models):
        _assert_same_training(model, _alone(seed, "adam", 32, before[seed] + (10,)))


def test_a_fit_that_fails_before_training_leaves_the_models_state_alone():
    class Fails:
        def on_train_begin(self, owner):
            raise RuntimeError("before any epoch")

    models = [post_model(seed=s, optimizer="adam") for s in SEEDS]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=5)
    models[0].fit(X, Y, epochs=5)  # alone: the stack's copy of its state is now stale
    state = [moment.copy() for moment in models[0].optimizer.moments(models[0].parameters)]
    with pytest.raises(RuntimeError, match="before any epoch"):
        ens.fit(X, Y, epochs=5, callbacks=[Fails()])
    assert models[0].optimizer.iterations == 10
    for moment, before in zip(
        models[0].optimizer.moments(models[0].parameters), state, strict=True
    ):
        np.testing.assert_array_equal(moment, before)


def test_models_sharing_a_stateful_optimizer_are_named():
    shared = optimizers.Adam()
    models = [post_model(seed=s, optimizer=shared) for s in range(3)]
    with pytest.raises(ValueError, match=r"models\[1\] shares its optimizer .* models\[0\]"):
        Ensemble(models)
    plain = optimizers.SGD()  # keeps nothing between steps: sharing it is harmless
    Ensemble([post_model(seed=s, optimizer=plain) for s in range(3)]).fit(X, Y, epochs=2)


def test_state_follows_a_model_whose_arrays_were_rebound():
    # Rebinding a layer's array unpacks the model's flat vector; packed again, in the same order,
    # its optimizer state still lines up, in an ensemble as alone.
    def rebound(model):
        layer = model.layers[1]
        layer.params["weights"] = layer.params["weights"] * 0.5
        return model

    models = [rebound(_alone(seed, "adam", 32, (10,))) for seed in SEEDS]
    Ensemble(models).fit(X, Y, epochs=10, learning_rate=0.02, batch_size=32)
    for model, seed in zip(models, SEEDS, strict=True):
        reference = rebound(_alone(seed, "adam", 32, (10,)))
        reference.fit(X, Y, epochs=10, learning_rate=0.02, batch_size=32)
        _assert_same_training(model, reference)


# --- learning rates: fit sets one rate for all K ----------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_model_fitted_alone_at_another_rate_joins_and_trains_as_alone(optimizer):
    def made(seed):
        model = post_model(seed=seed, optimizer=optimizer)
        if seed == SEEDS[1]:
            model.fit(X, Y, epochs=10, learning_rate=0.05, batch_size=32)
        return model

    models = [made(seed) for seed in SEEDS]
    assert models[1].optimizer.learning_rate == 0.05 != models[0].optimizer.learning_rate
    history = Ensemble(models).fit(X, Y, epochs=20, learning_rate=0.02, batch_size=32)["loss"]
    for k, seed in enumerate(SEEDS):
        alone = made(seed)
        expected = alone.fit(X, Y, epochs=20, learning_rate=0.02, batch_size=32)["loss"]
        np.testing.assert_allclose(history[:, k], expected, rtol=1e-12)
        _assert_same_training(models[k], alone)
        assert models[k].optimizer.learning_rate == models[k].learning_rate == 0.02


def test_differing_rates_without_learning_rate_raise_and_change_nothing():
    models = [post_model(seed=s, optimizer="momentum") for s in SEEDS]
    models[2].fit(X, Y, epochs=3, learning_rate=0.05)
    before = [model.parameters.copy() for model in models[2:]]
    ens = Ensemble(models)
    with pytest.raises(
        ValueError,
        match=r"models\[2\] has 0\.05, models\[0\] has 0\.01; pass "
        r"learning_rate= to fit",
    ):
        ens.fit(X, Y, epochs=3)
    assert not models[0].built and ens._groups is None  # checked before anything changes
    assert [model.optimizer.learning_rate for model in models] == [0.01, 0.01, 0.05]
    np.testing.assert_array_equal(models[2].parameters, before[0])


def test_one_rate_for_all_without_learning_rate_is_the_rate_used():
    # The stacks were made at 0.01; the models now all hold 0.05, which the next fit must use.
    models = [post_model(seed=s) for s in SEEDS]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=5)
    for model in models:
        model.fit(X, Y, epochs=5, learning_rate=0.05)
    history = ens.fit(X, Y, epochs=5)["loss"]
    assert ens.learning_rate == 0.05
    for k, seed in enumerate(SEEDS):
        alone = post_model(seed=seed)
        alone.fit(X, Y, epochs=5)
        alone.fit(X, Y, epochs=5, learning_rate=0.05)
        np.testing.assert_allclose(history[:, k], alone.fit(X, Y, epochs=5)["loss"], rtol=1e-12)
        _assert_same_training(models[k], alone)
        assert models[k].optimizer.learning_rate == 0.05


# --- weights: fit writes back only what it synced into the stacks -----------------------------


class FailsToBegin:
    def on_train_begin(self, owner):
        raise RuntimeError("before any epoch")


def _set_weights(model, value):
    # The user's own change between fits, through the public setter.
    model.layers[0].set_params(weights=np.full_like(model.layers[0].weights, value))


@pytest.mark.parametrize("before", ["fit", "predict"])
def test_a_fit_that_fails_to_begin_leaves_every_models_weights_alone(before):
    models = [post_model(seed=s, optimizer="momentum") for s in SEEDS]
    ens = Ensemble(models)
    if before == "fit":
        ens.fit(X, Y, epochs=5)
    else:
        ens.predict(X)  # the stacks now hold these weights, which the user then changes
    for k, model in enumerate(models):
        _set_weights(model, 0.1 * (k + 1))
    params = [model.parameters.copy() for model in models]
    state = [[m.copy() for m in model.optimizer.moments(model.parameters)] for model in models]
    with pytest.raises(RuntimeError, match="before any epoch"):
        ens.fit(X, Y, epochs=5, callbacks=[FailsToBegin()])
    for model, before_params, before_state in zip(models, params, state, strict=True):
        np.testing.assert_array_equal(model.parameters, before_params)
        for moment, expected in zip(
            model.optimizer.moments(model.parameters), before_state, strict=True
        ):
            np.testing.assert_array_equal(moment, expected)
    # Then a fit trains from the user's weights, as each model would alone.
    ens.fit(X, Y, epochs=5)
    for k, (model, seed) in enumerate(zip(models, SEEDS, strict=True)):
        alone = post_model(seed=seed, optimizer="momentum")
        if before == "fit":
            alone.fit(X, Y, epochs=5)
        else:
            alone.build(2)
        _set_weights(alone, 0.1 * (k + 1))
        alone.fit(X, Y, epochs=5)
        _assert_same_training(model, alone)


def test_an_interrupt_after_some_epochs_writes_back_the_trained_weights():
    class InterruptAt:
        def on_epoch_end(self, owner, epoch, cost):
            if epoch == 3:
                raise KeyboardInterrupt

    models = [post_model(seed=s) for s in SEEDS]
    ens = Ensemble(models)
    ens.fit(X, Y, epochs=5)
    _set_weights(models[1], 0.3)
    with pytest.raises(KeyboardInterrupt):
        ens.fit(X, Y, epochs=30, callbacks=[InterruptAt()])  # 4 epochs
    for k, seed in enumerate(SEEDS):
        alone = post_model(seed=seed)
        alone.fit(X, Y, epochs=5)
        if k == 1:
            _set_weights(alone, 0.3)
        alone.fit(X, Y, epochs=4)
        np.testing.assert_allclose(models[k].parameters, alone.parameters, rtol=1e-12, atol=1e-15)


def test_predict_and_evaluate_in_a_callback_see_the_weights_being_trained():
    X_check, Y_check = datasets.moons(50, noise=0.2, seed=1)
    seen = []

    class Evaluates:
        def on_epoch_end(self, owner, epoch, cost):
            seen.append((owner.evaluate(X, Y)["loss"], owner.predict(X_check)))

    models = [post_model(seed=s) for s in SEEDS]
    history = Ensemble(models).fit(X, Y, epochs=6, callbacks=[Evaluates()])["loss"]
    plain = Ensemble([post_model(seed=s) for s in SEEDS]).fit(X, Y, epochs=6)["loss"]
    np.testing.assert_array_equal(history, plain)  # looking does not change the training
    for epoch in range(5):  # the loss after epoch e is the cost the full batch sees at e + 1
        np.testing.assert_allclose(seen[epoch][0], history[epoch + 1], rtol=1e-12)
    np.testing.assert_allclose(seen[-1][1], Ensemble(models).predict(X_check), rtol=1e-12)


def test_evaluate_first_builds_the_stacks():
    models = [post_model(seed=s) for s in SEEDS]
    result = Ensemble(models).evaluate(X, Y)
    for k, model in enumerate(models):
        assert result["loss"][k] == pytest.approx(model.evaluate(X, Y)["loss"], rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 10**12}, r"fit with epochs=1000000000000 would need about 32 TB"),
        ({"callbacks": 5}, "callbacks must be an object with a method"),
        ({"jit_compile": "yes"}, "jit_compile must be True, False or 'auto'"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0"),
    ],
)
def test_a_failed_fit_leaves_the_ensemble_and_its_models_as_they_were(kwargs, message):
    from conftest import object_state

    X, Y = datasets.moons(40, noise=0.2, seed=0)
    models = [post_model(seed=k, optimizer="adam") for k in range(4)]
    ensemble = Ensemble(models)
    ensemble.fit(X, Y, epochs=3, learning_rate=0.01)
    before = object_state(ensemble)
    with pytest.raises(ValueError, match=message):
        ensemble.fit(X, Y, **kwargs)
    assert object_state(ensemble) == before


def test_the_module_docstring_example_runs():
    import doctest

    from initlab.tools import ensemble

    result = doctest.testmod(ensemble)
    assert result.attempted >= 8 and result.failed == 0


@pytest.mark.parametrize("trained", [True, False])
@pytest.mark.parametrize("with_callback", [False, True])
def test_a_fit_whose_allocation_fails_leaves_the_ensemble_as_it_was(
    monkeypatch, trained, with_callback
):
    # The memory estimate passes, then the history (8 PB) cannot be allocated: the models'
    # weights, optimizer state and rates, and the ensemble's costs and history are as before.
    from conftest import object_state
    from initlab import checks

    ens = Ensemble([post_model(seed=s, optimizer="adam") for s in range(3)])
    if trained:
        ens.fit(X, Y, epochs=3, batch_size=32)
    monkeypatch.setattr(checks, "available_memory", lambda: 10**30)

    class Watcher:
        def on_epoch_end(self, owner, epoch, costs):
            pass

    callbacks = [Watcher()] if with_callback else ()
    before = object_state([ens.models, ens.costs, ens.history, ens.learning_rate])
    with pytest.raises(MemoryError):
        ens.fit(X, Y, epochs=10**15, learning_rate=0.5, batch_size=32, callbacks=callbacks)
    assert object_state([ens.models, ens.costs, ens.history, ens.learning_rate]) == before
    assert all(model.built == trained for model in ens.models)
