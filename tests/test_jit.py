"""jit: the compiled training step gives the NumPy path's numbers, to rounding."""

import os
import signal
import threading
import time
import types

import numpy as np
import pytest

from conftest import post_model, run_python
from initlab import Dense, NeuralNetwork
from initlab.blocks import activations, datasets, expressions, losses
from initlab.blocks.activations import LeakyReLU
from initlab.blocks.initializers import Initializer
from initlab.fast import jit
from initlab.tools.ensemble import Ensemble

pytest.importorskip("numba")

X, Y = datasets.moons(120, noise=0.2, seed=0)


def two_output_model(seed=0):
    """leaky_relu and linear hidden layers, two sigmoid outputs with cross-entropy."""
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=5, activation=LeakyReLU(alpha=0.2), initializer="glorot_uniform"))
    model.add(Dense(units=4, activation="linear", initializer="glorot_uniform"))
    model.add(Dense(units=2, activation="sigmoid", initializer="glorot_uniform"))
    model.compile(loss="crossentropy", optimizer="momentum")
    return model


def mse_model(seed=0):
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=6, activation="relu", initializer="he"))
    model.add(Dense(units=1, activation="linear", initializer="he"))
    model.compile(loss="mse", optimizer="adam")
    return model


def tanh_sigmoid_model(seed=0):
    """Glorot and Bengio's tanh, a sigmoid hidden layer, and a sigmoid output under mse."""
    model = NeuralNetwork(seed=seed)
    model.add(Dense(units=8, activation="tanh", initializer="glorot_normal"))
    model.add(Dense(units=5, activation="sigmoid", initializer="glorot_normal"))
    model.add(Dense(units=1, activation="sigmoid", initializer="glorot_normal"))
    model.compile(loss="mse")
    return model


TWO_OUTPUTS = np.vstack([Y, 1 - Y])
CASES = {
    "post": (post_model, Y),
    "two outputs": (two_output_model, TWO_OUTPUTS),
    "mse": (mse_model, Y),
    "tanh and sigmoid": (tanh_sigmoid_model, Y),
}


# --- the vectorised exp, expm1, logaddexp, log, log1p and tanh ---------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_math_is_within_a_few_ulps_of_numpy(dtype):
    module = types.SimpleNamespace(**jit.math_functions(dtype))
    eps, cast = np.finfo(dtype).eps, np.dtype(dtype).type
    lowest = -708.0 if dtype == "float64" else -87.0
    highest = 709.7 if dtype == "float64" else 88.7
    # Near 0 too, where expm1 and tanh must not lose their digits to cancellation.
    tiny = np.geomspace(np.finfo(dtype).tiny, 1, 400)
    grid = np.concatenate([np.linspace(lowest, highest, 4001), tiny, -tiny]).astype(dtype)
    for t in grid:
        # expm1 above 0 and tanh compose two roundings: 4 ulps.
        for ours, theirs, ulps in (
            (module.exp_any, np.exp, 2),
            (module.expm1_any, np.expm1, 4),
            (module.tanh, np.tanh, 4),
        ):
            expected = theirs(t)
            if np.isfinite(expected):
                assert abs(ours(t) - expected) <= ulps * eps * abs(expected), (ours, t)
        assert abs(module.tanh(-t) + module.tanh(t)) == 0  # odd, exactly
        expected = np.logaddexp(cast(0.5), t)
        assert abs(module.logaddexp(cast(0.5), t) - expected) <= 4 * eps * abs(expected), t
    assert module.tanh(cast(0)) == 0 and module.exp_any(cast(0)) == 1
    for e in np.linspace(0, 1, 2001).astype(dtype)[1:]:
        expected = np.log1p(e)
        assert abs(module.log1p_unit(e) - expected) <= 2 * eps * expected, e
    # log and log1p over the whole range, subnormals and the neighbourhood of -1 included.
    finfo = np.finfo(dtype)
    with np.errstate(over="ignore"):  # geomspace's own steps overflow on the way to max
        positive = np.geomspace(finfo.smallest_subnormal, finfo.max, 3001)
    near_zero = np.geomspace(finfo.tiny, 0.999, 1001)
    for x in np.concatenate([positive, -near_zero, np.linspace(-0.999, 3, 2001)]).astype(dtype):
        for ours, theirs in ((module.log_any, np.log), (module.log1p_any, np.log1p)):
            with np.errstate(divide="ignore", invalid="ignore"):
                expected = theirs(x)
            if np.isfinite(expected):
                assert abs(ours(x) - expected) <= 2 * eps * abs(expected), (ours, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        for x in map(cast, (0.0, -0.0, -1.0, -2.0, np.inf, -np.inf, np.nan)):
            for ours, theirs in ((module.log_any, np.log), (module.log1p_any, np.log1p)):
                np.testing.assert_equal(ours(x), theirs(x))  # the sign of a zero as well
                assert np.signbit(ours(x)) == np.signbit(theirs(x)) or np.isnan(theirs(x))
    # Below the normal range exp is flushed to 0 and expm1 to -1, above it exp is inf; NaN stays.
    assert module.exp_any(cast(lowest - 1)) == 0 and module.expm1_any(cast(-np.inf)) == -1
    assert module.exp_any(cast(np.inf)) == np.inf and module.expm1_any(cast(np.inf)) == np.inf
    for function in (module.exp_any, module.expm1_any, module.log1p_unit, module.tanh):
        assert np.isnan(function(cast(np.nan)))
    assert np.isnan(module.logaddexp(cast(np.nan), cast(0))) and np.isnan(
        module.logaddexp(cast(0), cast(np.nan))
    )


def test_a_log1p_known_to_see_only_0_to_1_needs_no_range_reduction():
    # The fused loss's log1p(exp(-|u|)) is written as log1p_unit, within 2 ulps of NumPy's there;
    # a log1p whose argument may leave [0, 1] keeps the general log1p_any.
    def written(definition):
        lines, _ = jit._scalar_code(expressions.trace(definition, 1), ["u"], "e")
        return "\n".join(lines)

    for inside in (
        lambda u, math: math.log1p(math.exp(-math.abs(u))),
        lambda u, math: math.log1p(math.exp(-math.abs(-u))),
        lambda u, math: math.log1p(0.5),
    ):
        assert "log1p_unit(" in written(inside) and "log1p_any(" not in written(inside)
    for outside in (
        lambda u, math: math.log1p(math.exp(math.abs(u))),  # [1, inf]
        lambda u, math: math.log1p(-math.exp(-math.abs(u))),  # [-1, 0]
        lambda u, math: math.log1p(math.exp(-u)),  # [0, inf]
        lambda u, math: math.log1p(math.exp(-math.abs(u)) * 0.5),  # a product: any float
        lambda u, math: math.log1p(u),
    ):
        assert "log1p_any(" in written(outside) and "log1p_unit(" not in written(outside)
    source, _ = jit._source_of(post_model().layers, losses.get("crossentropy"), "float64")
    assert "log1p_unit(" in source.split("def loss_terms", 1)[1].split("def kernel", 1)[0]


# --- one model -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_fit_equals_the_numpy_path(case):
    make, targets = CASES[case]
    numpy_model, jit_model = make(), make()
    expected = numpy_model.fit(X, targets, epochs=150, learning_rate=0.05, jit_compile=False)[
        "loss"
    ]
    history = jit_model.fit(X, targets, epochs=150, learning_rate=0.05, jit_compile=True)["loss"]
    np.testing.assert_allclose(history, expected, rtol=1e-12)
    np.testing.assert_allclose(jit_model.parameters, numpy_model.parameters, rtol=1e-10, atol=1e-13)


def test_float32_equals_the_numpy_path_to_float32_rounding():
    numpy_model, jit_model = post_model(dtype="float32"), post_model(dtype="float32")
    expected = numpy_model.fit(X, Y, epochs=200, learning_rate=0.05, jit_compile=False)["loss"]
    history = jit_model.fit(X, Y, epochs=200, learning_rate=0.05, jit_compile=True)["loss"]
    np.testing.assert_allclose(history, expected, rtol=2e-5)
    assert jit_model.parameters.dtype == np.float32


def test_the_post_s_huge_weights_stay_finite_and_exact():
    # Initializer(scale=1000): logits near 1e6, where exp underflows and the loss is |z|-sized.
    numpy_model = post_model(initializer=Initializer(scale=1000))
    jit_model = post_model(initializer=Initializer(scale=1000))
    expected = numpy_model.fit(X, Y, epochs=20, jit_compile=False)["loss"]
    history = jit_model.fit(X, Y, epochs=20, jit_compile=True)["loss"]
    assert np.all(np.isfinite(history)) and history[0] > 100
    np.testing.assert_allclose(history, expected, rtol=1e-12)


def test_minibatches_equal_the_numpy_path():
    # 120 samples in batches of 32: three full batches and one of 24, each shuffled.
    numpy_model, jit_model = post_model(seed=4), post_model(seed=4)
    expected = numpy_model.fit(X, Y, epochs=30, batch_size=32, jit_compile=False)["loss"]
    history = jit_model.fit(X, Y, epochs=30, batch_size=32, jit_compile=True)["loss"]
    np.testing.assert_allclose(history, expected, rtol=1e-12)


def test_the_same_seed_gives_the_same_bits():
    first = post_model(seed=7).fit(X, Y, epochs=50, jit_compile=True)["loss"]
    second = post_model(seed=7).fit(X, Y, epochs=50, jit_compile=True)["loss"]
    np.testing.assert_array_equal(first, second)


class _EveryEpoch:
    """A callback that looks at every epoch, so the fit runs its epochs one call at a time."""

    def on_epoch_end(self, model, epoch, cost):
        pass


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_epochs_run_in_one_call_give_the_bits_of_one_call_per_epoch(dtype, capsys):
    # Gradient descent inside the kernel rounds as optimizers.SGD does: params - grads * rate.
    def fit(callbacks):
        model = post_model(seed=2, dtype=dtype)
        history = model.fit(
            X.astype(dtype),
            Y.astype(dtype),
            epochs=300,
            learning_rate=0.3,
            log_every=7,
            print_log=True,
            callbacks=callbacks,
            jit_compile=True,
        )["loss"]
        return history, model.costs, model.parameters, capsys.readouterr().out

    at_once, one_by_one = fit(()), fit([_EveryEpoch()])
    np.testing.assert_array_equal(at_once[0], one_by_one[0])
    np.testing.assert_array_equal(at_once[1], one_by_one[1])  # the logged costs, 0, 7, ..., 299
    assert len(at_once[1]) == len(range(0, 300, 7)) + 1
    np.testing.assert_array_equal(at_once[2], one_by_one[2])
    assert at_once[3] == one_by_one[3] and at_once[3].count("Epochs: ") == len(at_once[1])


def _record_descents(monkeypatch):
    """The (epochs, learning rate) of every call of the kernel's gradient descent, as a list
    that fills as the fits run."""
    calls = []
    original = jit.training_step

    def recording(*args):
        step = original(*args)
        descend = step.descend
        step.descend = lambda epochs, rate: calls.append((epochs, rate)) or descend(epochs, rate)
        return step

    monkeypatch.setattr(jit, "training_step", recording)
    return calls


def test_epochs_in_one_call_go_in_calls_that_double_until_they_take_a_moment(monkeypatch):
    calls = _record_descents(monkeypatch)
    model = post_model()
    model.fit(X, Y, epochs=100, jit_compile=True)
    epochs = [count for count, _ in calls]
    assert sum(epochs) == 100 and epochs[:4] == [1, 2, 4, 8]
    calls.clear()
    monkeypatch.setattr("initlab.engine.training.CALL_SECONDS", 0.0)  # every call is long
    model.fit(X, Y, epochs=5, jit_compile=True)
    assert [count for count, _ in calls] == [1, 1, 1, 1, 1]


def test_minibatches_of_plain_gradient_descent_update_in_the_kernels_call(monkeypatch):
    calls = _record_descents(monkeypatch)
    model = post_model(seed=4)
    model.fit(X, Y, epochs=3, batch_size=32, learning_rate=0.05, jit_compile=True)
    # 120 samples: batches of 32, 32, 32 and 24, each one call that also updates, at the rate.
    assert calls == [(1, 0.05)] * 12


def test_a_stop_asked_before_the_first_epoch_is_kept_when_epochs_run_in_one_call():
    class StopAtOnce:
        def on_train_begin(self, model):
            model.stop_training = True

    history = post_model().fit(X, Y, epochs=50, callbacks=[StopAtOnce()], jit_compile=True)
    expected = post_model().fit(X, Y, epochs=50, callbacks=[StopAtOnce()], jit_compile=False)
    assert len(history["loss"]) == len(expected["loss"]) == 1


def test_other_optimizers_step_with_numpy_between_compiled_steps():
    # Only plain gradient descent runs inside the kernel; momentum keeps its NumPy update.
    model, reference = two_output_model(), two_output_model()
    history = model.fit(X, TWO_OUTPUTS, epochs=40, jit_compile=True)["loss"]
    expected = reference.fit(X, TWO_OUTPUTS, epochs=40, jit_compile=False)["loss"]
    np.testing.assert_allclose(history, expected, rtol=1e-12)


# --- ensembles -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shared_data", [True, False])
def test_ensemble_equals_its_models_trained_alone(shared_data):
    models = [post_model(seed=seed) for seed in range(5)]
    data_x = X if shared_data else np.stack([X + 0.1 * k for k in range(5)])
    data_y = Y if shared_data else np.stack([Y] * 5)
    history = Ensemble(models).fit(data_x, data_y, epochs=80, learning_rate=0.05, jit_compile=True)[
        "loss"
    ]
    for k in range(5):
        alone = post_model(seed=k)
        x = data_x if shared_data else data_x[k]
        # The same kernel and the same order of sums: the bits of the model trained alone.
        expected = alone.fit(x, Y, epochs=80, learning_rate=0.05, jit_compile=True)["loss"]
        np.testing.assert_array_equal(history[:, k], expected)
        np.testing.assert_array_equal(models[k].parameters, alone.parameters)


def test_ensemble_threads_give_the_bits_of_one_thread(monkeypatch):
    def fit(threads):
        monkeypatch.setattr(jit, "thread_count", lambda: threads)
        models = [post_model(seed=seed) for seed in range(6)]
        return Ensemble(models).fit(X, Y, epochs=40, jit_compile=True)["loss"]

    np.testing.assert_array_equal(fit(1), fit(3))


def test_ensemble_threads_get_their_kernels_from_the_calling_thread(monkeypatch):
    # A kernel may compile for many seconds, and Ctrl-C reaches only the main thread: compiled in
    # a group's thread, it would hold up the interrupted fit until the compilation ended.
    import threading

    binding_threads = []
    training_step = jit.training_step

    def recording(*args):
        binding_threads.append(threading.current_thread())
        return training_step(*args)

    monkeypatch.setattr(jit, "thread_count", lambda: 3)
    monkeypatch.setattr(jit, "training_step", recording)
    Ensemble([post_model(seed=seed) for seed in range(6)]).fit(X, Y, epochs=3, jit_compile=True)
    assert binding_threads == [threading.current_thread()] * 3


def test_ensemble_with_callbacks_sees_every_model_every_epoch():
    seen = []

    class Record:
        def on_epoch_end(self, ensemble, epoch, costs):
            seen.append(costs.copy())

    models = [post_model(seed=seed) for seed in range(3)]
    history = Ensemble(models).fit(X, Y, epochs=15, callbacks=[Record()], jit_compile=True)["loss"]
    np.testing.assert_array_equal(np.array(seen), history)
    expected = post_model(seed=2).fit(X, Y, epochs=15, jit_compile=False)["loss"]
    np.testing.assert_allclose(history[:, 2], expected, rtol=1e-12)


# --- what it refuses -----------------------------------------------------------------------------
def _with(activation=None, loss="crossentropy", units=12, output="sigmoid", outputs=1):
    model = NeuralNetwork(seed=0)
    model.add(Dense(units=units, activation=activation or "relu"))
    model.add(Dense(units=outputs, activation=output))
    model.compile(loss=loss)
    return model


class _Doubled(activations.Activation):
    """Overrides forward and backward instead of defining its function: NumPy runs it as it is,
    and the compiled kernel has nothing to write."""

    def forward(self, z, out=None):
        return np.multiply(np.maximum(z, 0), 2.0, out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, 2.0 * (z > 0), out=out)


def test_an_uncovered_model_raises_before_anything_changes():
    model = _with(activation=_Doubled())
    model.build(2)
    before = model.parameters.copy()
    with pytest.raises(
        ValueError,
        match=r"jit_compile=True: layer 1's activation _Doubled\(\) has no definition the "
        r"compiled kernel can write.*the default.*with NumPy",
    ):
        model.fit(X, Y, epochs=3, jit_compile=True)
    np.testing.assert_array_equal(model.parameters, before)
    assert model.history is None and model.last_fit_path is None
    # "auto" trains it with NumPy instead, and says so.
    model.fit(X, Y, epochs=3)
    assert model.last_fit_path == "NumPy"


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_jit_compile_must_be_a_bool_or_auto(value):
    message = f"jit_compile must be True, False or 'auto', got {value!r}"
    with pytest.raises(ValueError, match=message):
        post_model().fit(X, Y, epochs=1, jit_compile=value)
    with pytest.raises(ValueError, match=message):
        Ensemble([post_model(seed=1), post_model(seed=2)]).fit(X, Y, jit_compile=value)


def test_auto_is_the_default_and_compiles_what_it_covers():
    model = post_model()
    model.fit(X, Y, epochs=3)
    assert model.last_fit_path == "compiled (initlab.fast.jit)"
    ensemble = Ensemble([post_model(seed=1), post_model(seed=2)])
    ensemble.fit(X, Y, epochs=3)
    assert ensemble.last_fit_path == "compiled (initlab.fast.jit)"


# --- what it covers: every size, activation and loss, against the NumPy path ------------------
def _stack(sizes, activation="relu", output="sigmoid", loss="crossentropy", seed=0, **kw):
    model = NeuralNetwork(seed=seed, **kw)
    for units in sizes[:-1]:
        model.add(Dense(units, activation, initializer="glorot_uniform"))
    model.add(Dense(sizes[-1], output, initializer="glorot_uniform"))
    model.compile(loss=loss, optimizer="momentum")
    return model


def _agree(make, data_x, data_y, epochs=20, rtol=1e-11, **fit):
    numpy_model, jit_model = make(), make()
    expected = numpy_model.fit(data_x, data_y, epochs=epochs, jit_compile=False, **fit)["loss"]
    history = jit_model.fit(data_x, data_y, epochs=epochs, jit_compile=True, **fit)["loss"]
    np.testing.assert_allclose(history, expected, rtol=rtol)
    np.testing.assert_allclose(jit_model.parameters, numpy_model.parameters, rtol=1e-9, atol=1e-12)


def test_every_registered_activation_equals_the_numpy_path():
    # Every activation through its one definition, one per hidden layer (softmax included), in
    # one model: one kernel holds them all.
    names = sorted({cls.name for cls in activations.ACTIVATIONS.values()})

    def make():
        model = NeuralNetwork(seed=3)
        for name in names:
            model.add(Dense(5, name, initializer="glorot_normal"))
        model.add(Dense(1, "sigmoid"))
        model.compile(loss="crossentropy")
        return model

    _agree(make, X, Y, epochs=10, rtol=1e-10)


def test_softmax_with_categorical_crossentropy_equals_the_numpy_path():
    labels = (X[0] > 0).astype(float) + (X[1] > 0.5)  # three classes
    onehot = np.stack([labels == k for k in range(3)]).astype(float)
    make = lambda: _stack([8, 3], output="softmax", loss="categorical_crossentropy")  # noqa: E731
    _agree(make, X, onehot)


def test_deep_wide_and_minibatched_models_equal_the_numpy_path():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((40, 300))
    target = (data[:2].sum(axis=0, keepdims=True) > 0).astype(float)
    # Twelve layers; then layers of 1024 units, whose products go to BLAS.
    _agree(lambda: _stack([7] * 11 + [1], activation="tanh"), data, target, epochs=5)
    _agree(lambda: _stack([1024, 1]), data, target, epochs=3, rtol=1e-10)
    _agree(lambda: _stack([16, 8, 1]), data, target, epochs=3, batch_size=64)
    _agree(lambda: _stack([16, 1], loss="mse", output="linear"), data, target, epochs=5)


def test_without_numba_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(jit, "numba", None)
    with pytest.raises(ValueError, match=r"needs Numba.*pip install numba.*\.\[fast\]"):
        post_model().fit(X, Y, epochs=1, jit_compile=True)


# --- compilations ------------------------------------------------------------------------------
def test_one_kernel_serves_every_size_and_batch(monkeypatch):
    monkeypatch.setattr(jit, "_LOADED", {})
    for sizes in ([12, 6, 1], [3, 1], [20, 20, 20, 1]):
        model = _stack(sizes)
        model.fit(X, Y, epochs=2, batch_size=50, jit_compile=True)
        model.fit(X[:, :100], Y[:, :100], epochs=2, jit_compile=True)
    assert len(jit._LOADED) == 1


# --- what a user might do ------------------------------------------------------------------------
def test_a_nan_weight_spreads_as_it_does_in_numpy():
    def make():
        model = post_model(seed=5)
        model.build(2)
        model.layers[0].weights[0, 0] = np.nan
        return model

    with np.errstate(invalid="ignore"):
        expected, jitted = make(), make()
        expected.fit(X, Y, epochs=2, jit_compile=False)
        jitted.fit(X, Y, epochs=2, jit_compile=True)
    np.testing.assert_array_equal(np.isnan(jitted.parameters), np.isnan(expected.parameters))
    assert np.isnan(jitted.history["loss"][-1])


def test_an_activation_subclass_is_not_mistaken_for_its_parent():
    class DoubledReLU(type(post_model().layers[0].activation)):
        def forward(self, z, out=None):
            return 2 * np.maximum(z, 0)

    model = NeuralNetwork(seed=0)
    model.add(Dense(units=4, activation=DoubledReLU()))
    model.add(Dense(units=1, activation="sigmoid"))
    model.compile(loss="crossentropy")
    with pytest.raises(ValueError, match="layer 1.s activation DoubledReLU.*no definition"):
        model.fit(X, Y, epochs=2, jit_compile=True)


def test_ctrl_c_stops_a_threaded_ensemble_fit_within_moments(monkeypatch):
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    models = [post_model(seed=seed) for seed in range(4)]
    ensemble = Ensemble(models)
    ensemble.fit(X, Y, epochs=2, jit_compile=True)  # compiles
    before = [model.parameters.copy() for model in models]
    # Python's own handler, even if the tests were started with SIGINT ignored (conftest's
    # default_interrupt says when that happens).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ensemble.fit(X, Y, epochs=10**7, jit_compile=True)  # hours, if nothing stopped it
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < 5
    # Every model got the weights its group reached: trained, and still finite.
    for model, weights in zip(models, before):
        assert not np.array_equal(model.parameters, weights)
        assert np.all(np.isfinite(model.parameters))


def test_an_error_in_one_group_stops_the_others(monkeypatch):
    monkeypatch.setattr(jit, "thread_count", lambda: 2)
    real = jit.training_step
    calls = []

    def failing_for_the_second_group(layers, loss, params, grads, x, y):
        step = real(layers, loss, params, grads, x, y)
        calls.append(len(calls))
        if len(calls) == 2:

            def broken(*args):
                raise RuntimeError("the second group fails")

            broken.descend = broken  # the epochs run many at a time through descend
            return broken
        return step

    monkeypatch.setattr(jit, "training_step", failing_for_the_second_group)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="the second group fails"):
        Ensemble([post_model(seed=seed) for seed in range(4)]).fit(
            X, Y, epochs=10**7, jit_compile=True
        )
    assert time.perf_counter() - start < 5


def test_float32_divergence_reaches_inf_then_nan_at_the_same_epochs_on_both_paths():
    # Weights x300 and a rate of 1e4: the cost overflows float32 in two steps. Both paths must
    # report the same inf and NaN costs and end with NaN weights, not a clean-looking model.
    def diverging():
        model = NeuralNetwork(seed=0, dtype="float32")
        for units, activation in ((12, "relu"), (6, "relu"), (1, "sigmoid")):
            model.add(Dense(units, activation, initializer=Initializer(scale=300)))
        model.compile(loss="crossentropy")
        return model

    numpy_model, jit_model = diverging(), diverging()
    with np.errstate(all="ignore"):
        expected = numpy_model.fit(X, Y, epochs=8, learning_rate=1e4, jit_compile=False)["loss"]
        history = jit_model.fit(X, Y, epochs=8, learning_rate=1e4, jit_compile=True)["loss"]
    np.testing.assert_array_equal(np.isinf(history), np.isinf(expected))
    np.testing.assert_array_equal(np.isnan(history), np.isnan(expected))
    assert np.isinf(expected).any() and np.isnan(expected[-1])
    assert np.isnan(numpy_model.parameters).any() and np.isnan(jit_model.parameters).any()


# --- the same bits on any CPU ------------------------------------------------------------------
_RANDN_X10_FIT = """
import hashlib, sys
import numpy as np
from initlab import Dense, NeuralNetwork
from initlab.blocks import datasets
from initlab.blocks.initializers import Initializer
X, Y = datasets.moons(400, noise=0.2, seed=1)
model = NeuralNetwork(seed=11)
model.add(Dense(12, "relu", initializer=Initializer("random_normal", scale=10)))
model.add(Dense(6, "relu", initializer=Initializer("random_normal", scale=10)))
model.add(Dense(1, "sigmoid", initializer=Initializer("random_normal")))
model.compile(loss="crossentropy")
costs = model.fit(X, Y, epochs=2000, jit_compile=True)["loss"]
print(hashlib.sha256(costs.tobytes() + model.parameters.tobytes()).hexdigest())
"""


def test_the_same_bits_on_a_generic_x86_64_cpu_as_on_this_one(tmp_path):
    # The post's randn x 10 runs are chaotic: a different order of sums anywhere shows within
    # 2000 epochs. Numba's generic target has no vectors wider than SSE2 and no FMA.
    def run(**environment):
        done = run_python(_RANDN_X10_FIT, INITLAB_CACHE_DIR=str(tmp_path / "cache"), **environment)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="") == run()


# --- the cache ---------------------------------------------------------------------------------
def _tiny():
    model = NeuralNetwork(seed=0)
    model.add(Dense(3, "elu"))
    model.add(Dense(1, "sigmoid"))
    model.compile(loss="crossentropy")
    return model


def test_a_damaged_cache_is_removed_and_the_kernel_recompiled(tmp_path, monkeypatch):
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jit, "_LOADED", {})
    tiny = _tiny()
    assert not jit.is_compiled(tiny.layers, tiny.loss, tiny.dtype)  # an empty cache
    expected = tiny.fit(X, Y, epochs=5, jit_compile=True)["loss"]
    assert jit.is_compiled(tiny.layers, tiny.loss, tiny.dtype)
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"
    compiled = sorted((tmp_path / "__pycache__").glob("kernel_*"))
    assert compiled and all(file.stat().st_size > 0 for file in compiled)
    for file in compiled:  # flip bytes in the middle of every file Numba wrote
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    monkeypatch.setattr(jit, "_LOADED", {})
    # In the cache but damaged: the next fit compiles, and is_compiled says so.
    assert not jit.is_compiled(tiny.layers, tiny.loss, tiny.dtype)
    history = _tiny().fit(X, Y, epochs=5, jit_compile=True)["loss"]
    np.testing.assert_array_equal(history, expected)
    # Recompiled and cached again, with a manifest that matches.
    digest = compiled[0].name.split(".")[0].removeprefix("kernel_")
    assert jit._manifest_holds(tmp_path, digest)


def test_a_cache_directory_others_may_write_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(shared))
    assert jit.cache_directory() is None
    private = tmp_path / "private"
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(private))
    assert jit.cache_directory() == private and oct(private.stat().st_mode & 0o777) == "0o700"
    if os.getuid() == 0:  # as root, a directory someone else owns can be made
        os.chown(private, 12345, -1)
        assert jit.cache_directory() is None
    # Numba's own cache directory would take the compiled files elsewhere: no cache then.
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(tmp_path / "other"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert jit.cache_directory() is None


def test_the_cache_keeps_the_kernels_loaded_most_recently(tmp_path, monkeypatch):
    monkeypatch.setenv("INITLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jit, "CACHE_KERNELS", 2)
    (tmp_path / "__pycache__").mkdir(mode=0o700)
    for age, old in enumerate(["a" * 24, "b" * 24, "c" * 24], start=1):  # c the oldest
        for path in (
            tmp_path / f"kernel_{old}.py",
            tmp_path / "__pycache__" / f"kernel_{old}.index",
            tmp_path / f"manifest-{old}.json",
        ):
            path.write_text("{}")
            os.utime(path, (1e9 - age, 1e9 - age))
    monkeypatch.setattr(jit, "_LOADED", {})
    expected = _tiny().fit(X, Y, epochs=5, jit_compile=False)["loss"]
    history = _tiny().fit(X, Y, epochs=5, jit_compile=True)["loss"]
    np.testing.assert_allclose(history, expected, rtol=1e-12)
    kept = sorted(path.name for path in tmp_path.glob("manifest-*.json"))
    # The kernel just loaded and the most recent other one stay; b and c, and their files, go.
    assert len(kept) == 2 and "manifest-" + "a" * 24 + ".json" in kept
    for gone in ("b" * 24, "c" * 24):
        assert not list(tmp_path.rglob(f"*{gone}*"))
