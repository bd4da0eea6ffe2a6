"""The post's experiment over many seeds: seeding, data, model, schemes and training."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from conftest import run_python  # noqa: E402
from initlab import Initializer  # noqa: E402
from initlab.studies import post_study as post  # noqa: E402


def test_seed_plan_is_reproducible_and_run_k_does_not_depend_on_the_number_of_runs():
    assert post.seed_plan(7, 3) == post.seed_plan(7, 3)
    assert post.seed_plan(7, 5)[:3] == post.seed_plan(7, 3)
    assert post.seed_plan(7, 3) != post.seed_plan(8, 3)


def test_seed_plan_follows_the_documented_derivation():
    run = np.random.SeedSequence(3).spawn(4)[2]
    train, test, weights = run.spawn(3)
    plan = post.seed_plan(3, 4)[2]
    assert plan.index == 2
    assert plan.train_data_seed == train.generate_state(1, np.uint32)[0]
    assert plan.test_data_seed == test.generate_state(1, np.uint32)[0]
    assert plan.weights_seed == weights.generate_state(1, np.uint64)[0]


def test_every_run_gets_different_data_and_weights():
    plan = post.seed_plan(0, 10)
    seeds = [s for run in plan for s in (run.train_data_seed, run.test_data_seed, run.weights_seed)]
    assert len(set(seeds)) == len(seeds)


@pytest.mark.parametrize(
    "seed, n_seeds, name",
    [(-1, 2, "seed"), (0, 0, "n_seeds"), (0, 1.5, "n_seeds"), (True, 2, "seed")],
)
def test_seed_plan_rejects_bad_arguments(seed, n_seeds, name):
    with pytest.raises(ValueError, match=name):
        post.seed_plan(seed, n_seeds)


def test_moons_data_is_sklearn_make_moons_in_the_posts_layout():
    from sklearn.datasets import make_moons

    X, Y = post.moons_data(400, random_state=5)
    X_ref, y_ref = make_moons(n_samples=400, noise=0.2, random_state=5)
    assert X.shape == (2, 400) and Y.shape == (1, 400)
    np.testing.assert_array_equal(X, X_ref.T)
    np.testing.assert_array_equal(Y[0], y_ref)


def test_post_model_is_the_posts_architecture():
    model = post.post_model("he", seed=0)
    assert [layer.units for layer in model.layers] == [12, 6, 1]
    assert [layer.activation.name for layer in model.layers] == ["relu", "relu", "sigmoid"]
    assert model.loss.name == "crossentropy"
    assert model.optimizer.learning_rate == post.LEARNING_RATE


def _layer_draws(seed, n_layers=3):
    """The standard normals each layer's Generator yields first, as NeuralNetwork derives them."""
    children = np.random.SeedSequence(seed).spawn(n_layers + 1)[1:]
    shapes = [(12, 2), (6, 12), (1, 6)]
    return [
        np.random.default_rng(child).standard_normal(shape)
        for child, shape in zip(children, shapes, strict=True)
    ]


@pytest.mark.parametrize(
    "scheme, hidden_scale",
    [
        ("he", lambda fan_in: np.sqrt(2.0 / fan_in)),  # the post's randn * sqrt(2 / fan_in)
        ("random_normal_x10", lambda fan_in: 10.0),
        ("zeros", lambda fan_in: 0.0),
    ],
)
def test_schemes_draw_the_posts_formulas_and_the_output_layer_is_randn_x1(scheme, hidden_scale):
    model = post.post_model(post.POST_SCHEMES[scheme].initializer(), seed=11)
    model.build(2)
    draws = _layer_draws(11)
    for layer, draw in zip(model.layers[:2], draws[:2], strict=True):
        np.testing.assert_allclose(layer.weights, draw * hidden_scale(layer.fan_in), rtol=1e-15)
        np.testing.assert_array_equal(layer.bias, 0.0)
    np.testing.assert_allclose(model.layers[2].weights, draws[2], rtol=1e-15)


def test_resolve_schemes_starts_with_the_posts_three_and_adds_each_extra_once():
    names = [s.name for s in post.resolve_schemes(["random_normal", "he", "random_normal"])]
    assert names == ["zeros", "random_normal_x10", "he", "random_normal"]
    # Another spelling of a scheme already there is that scheme: one row, not two alike.
    names = [s.name for s in post.resolve_schemes(["he_normal,HeNormal", "LSUV", "lsuv"])]
    assert names == ["zeros", "random_normal_x10", "he", "he_normal", "LSUV"]
    names = [s.name for s in post.resolve_schemes(["RandomNormal:10", "random_normal:0.010"])]
    assert names == ["zeros", "random_normal_x10", "he", "random_normal:0.010"]
    names = [s.name for s in post.resolve_schemes(["random_normal:10.00001"])]
    assert names[3:] == ["random_normal:10.00001"]  # not the post's x 10, though it prints so
    assert [s.post_train for s in post.resolve_schemes()] == [50, 85, 95]
    assert [s.post_test for s in post.resolve_schemes()] == [50, 82, 94]


def test_extra_schemes_are_written_as_the_other_study_commands_write_them():
    schemes = post.resolve_schemes(["random_normal:0.5,lsuv", "HeNormal"])
    assert [s.name for s in schemes][3:] == ["random_normal:0.5", "lsuv", "HeNormal"]
    assert [s.label for s in schemes][3:] == [
        "Random normal x 0.5",
        "LSUV",
        "He normal (truncated)",
    ]
    # random_normal:0.5 scales the post's randn x 10 draw by 0.5 / 10 in the hidden layers.
    a = post.post_model(schemes[3].initializer(), seed=9)
    b = post.post_model(post.POST_SCHEMES["random_normal_x10"].initializer(), seed=9)
    a.build(2)
    b.build(2)
    for layer_a, layer_b in zip(a.layers[:2], b.layers[:2], strict=True):
        np.testing.assert_allclose(layer_a.weights, layer_b.weights * 0.05, rtol=1e-15)
    np.testing.assert_array_equal(a.layers[2].weights, b.layers[2].weights)


def test_an_unknown_scheme_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match=r"'no_such_init' is not known.*'he'"):
        post.resolve_schemes(["no_such_init"])


def test_train_models_matches_training_each_model_alone():
    X, Y = post.moons_data(60, random_state=1)
    X2, Y2 = post.moons_data(60, random_state=2)
    models = [post.post_model(Initializer("he"), seed=s) for s in (1, 2)]
    costs = post.train_models(models, [X, X2], [Y, Y2], epochs=30)
    assert costs.shape == (30, 2)
    for k, (data_X, data_Y) in enumerate([(X, Y), (X2, Y2)]):
        alone = post.post_model(Initializer("he"), seed=k + 1)
        history = alone.fit(data_X, data_Y, epochs=30, learning_rate=post.LEARNING_RATE)["loss"]
        np.testing.assert_allclose(costs[:, k], history, rtol=1e-12)
        np.testing.assert_allclose(models[k].predict(data_X), alone.predict(data_X), rtol=1e-12)


@pytest.fixture(scope="module")
def small_study():
    return post.run_study(seed=3, n_seeds=2, epochs=200)


def test_zeros_learns_nothing_exactly_fifty_percent_and_a_flat_cost(small_study):
    s = [scheme.name for scheme in small_study.schemes].index("zeros")
    np.testing.assert_array_equal(small_study.train_accuracy[s], 50.0)
    np.testing.assert_array_equal(small_study.test_accuracy[s], 50.0)
    # ln 2 at every epoch. The output bias alone gets a gradient, sum(p - y) / m with p = 1/2 on
    # balanced classes, which is zero up to the rounding of the sum (~1e-16).
    np.testing.assert_allclose(small_study.costs[s], np.log(2), rtol=0, atol=1e-12)
    assert np.all(small_study.epoch_below()[s] == -1)


def test_run_study_shapes_and_the_trained_models_give_the_reported_accuracies(small_study):
    assert small_study.costs.shape == (3, 2, 200)
    assert small_study.train_accuracy.shape == small_study.test_accuracy.shape == (3, 2)
    X_test, Y_test = small_study.data[1][2:]
    model = small_study.models[2][1]
    assert model.evaluate(X_test, Y_test)["accuracy"] == small_study.test_accuracy[2, 1]
    # He learns something in 200 epochs: the cost falls from its first value.
    assert np.all(small_study.costs[2, :, -1] < small_study.costs[2, :, 0])


def test_run_study_is_bit_identical_for_the_same_seed(small_study):
    again = post.run_study(seed=3, n_seeds=2, epochs=200)
    np.testing.assert_array_equal(again.costs, small_study.costs)
    np.testing.assert_array_equal(again.test_accuracy, small_study.test_accuracy)


def test_epoch_below_is_the_first_epoch_under_the_threshold():
    result = post.StudyResult(
        settings={},
        schemes=[],
        runs=[],
        costs=np.array([[[0.9, 0.4, 0.29, 0.31, 0.1], [0.7, 0.6, 0.5, 0.4, 0.3]]]),
        train_accuracy=np.zeros((1, 2)),
        test_accuracy=np.zeros((1, 2)),
        data=[],
        models=[],
    )
    np.testing.assert_array_equal(result.epoch_below(0.3), [[2, -1]])
    np.testing.assert_array_equal(result.final_cost, [[0.1, 0.3]])


def test_run_study_rejects_bad_arguments_before_training():
    with pytest.raises(ValueError, match="epochs"):
        post.run_study(n_seeds=1, epochs=0)
    with pytest.raises(ValueError, match="n_seeds"):
        post.run_study(n_seeds=0, epochs=1)


def test_extra_schemes_draw_the_hidden_layers_and_keep_the_posts_output_layer():
    (scheme,) = [s for s in post.resolve_schemes(["glorot_uniform"]) if s.name == "glorot_uniform"]
    model = post.post_model(scheme.initializer(), seed=4)
    model.build(2)
    rngs = [np.random.default_rng(c) for c in np.random.SeedSequence(4).spawn(4)[1:]]
    for layer, rng in zip(model.layers[:2], rngs[:2], strict=True):
        expected, _ = Initializer("glorot_uniform")((layer.units, layer.fan_in), rng=rng)
        np.testing.assert_array_equal(layer.weights, expected)
    np.testing.assert_allclose(model.layers[2].weights, _layer_draws(4)[2], rtol=1e-15)


def test_lsuv_is_drawn_on_each_runs_training_set():
    names = [s.name for s in post.resolve_schemes(["lsuv"])]
    assert names[-1] == "lsuv" and post.resolve_schemes(["lsuv"])[-1].initialize == "lsuv"
    result = post.run_study(seed=2, n_seeds=2, epochs=1, schemes=["lsuv"])
    run = result.runs[1]
    X_train, Y_train = result.data[1][:2]
    by_hand = post.post_model(None, seed=run.weights_seed)
    by_hand.initialize(X_train, method="lsuv")
    # The cost at epoch 0 is that of the initial weights, before any update.
    assert result.costs[3, 1, 0] == pytest.approx(
        by_hand.evaluate(X_train, Y_train)["loss"], rel=1e-12
    )


@pytest.mark.parametrize("n_seeds, epochs", [(6, 50), (2, 3000), (20, 500)])
def test_the_memory_estimate_is_above_the_peak_and_less_than_twice_it(n_seeds, epochs):
    import tracemalloc

    def peak(jit_compile):
        post.run_study(seed=0, n_seeds=1, epochs=2, jit_compile=jit_compile)  # imports, caches
        tracemalloc.start()
        post.run_study(seed=0, n_seeds=n_seeds, epochs=epochs, jit_compile=jit_compile)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    # The estimate follows the NumPy path's buffers; the compiled path needs fewer.
    estimate = post.study_bytes(3, n_seeds, epochs)
    numpy_peak = peak(False)
    assert numpy_peak < estimate < 2 * numpy_peak, (estimate, numpy_peak)
    assert peak("auto") < estimate


def test_the_time_estimate_is_near_the_time_a_small_study_takes():
    import time

    post.run_study(seed=0, n_seeds=1, epochs=2)  # imports, the kernel: what the estimate skips
    start = time.perf_counter()
    post.run_study(seed=0, n_seeds=4, epochs=400)
    took = time.perf_counter() - start
    estimate = post.study_seconds(3, 4, 400)
    # Rough, on a shared machine: the right order of magnitude is what the first line needs.
    assert took / 5 < estimate < 5 * took, (estimate, took)


def test_the_time_estimate_calibrates_on_the_studys_path():
    # A study on the NumPy path is timed on it: the compiled path, three times faster, would
    # cut its estimate to a third (and load Numba, 130 MB, into a process that never uses it).
    code = (
        "import sys; from initlab.studies.post_study import study_seconds; "
        "study_seconds(3, 1, 10, jit_compile=False); print('numba' in sys.modules)"
    )
    done = run_python(code)
    assert done.stdout == "False\n", done.stderr


def test_the_posts_names_and_their_other_spellings_are_accepted_and_run_once():
    # What reproduce prints and writes (random_normal_x10) is a name it accepts.
    for extra in (["random_normal_x10"], ["random_normal:10"], ["zeros he"], ["he,zeros"]):
        assert [s.name for s in post.resolve_schemes(extra)] == list(post.POST_SCHEMES)
    assert [s.label for s in post.resolve_schemes()] == [
        "Zeros",
        "Large random values (randn x 10)",
        "He",
    ]
