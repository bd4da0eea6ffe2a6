"""The batch-first Classifier and Regressor: scikit-learn's protocol, the core's numbers."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from initlab import Dense, NeuralNetwork
from initlab.blocks.datasets import moons
from initlab.estimator import Classifier, Regressor


def test_matches_the_core_model_it_wraps():
    X, Y = moons(120, noise=0.2, seed=0)
    clf = Classifier(hidden_layer_sizes=(12, 6), initializer="he", epochs=200, random_state=3)
    clf.fit(X.T, Y[0])
    model = NeuralNetwork(seed=3)
    model.add(Dense(12, activation="relu", initializer="he"))
    model.add(Dense(6, activation="relu", initializer="he"))
    model.add(Dense(1, activation="sigmoid", initializer="he"))
    model.compile(loss="crossentropy")
    model.fit(X, Y, epochs=200, learning_rate=0.01)
    np.testing.assert_array_equal(clf.loss_curve_, model.history["loss"])
    p = model.predict(X)[0]
    np.testing.assert_array_equal(clf.predict_proba(X.T)[:, 1], p)
    assert clf.score(X.T, Y[0]) == pytest.approx(model.evaluate(X, Y)["accuracy"] / 100)


def test_string_labels_and_many_classes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    names = np.array(["left", "middle", "right"])
    y = names[np.digitize(X[:, 0], [-0.5, 0.5])]
    clf = Classifier(
        hidden_layer_sizes=(16,), optimizer="adam", learning_rate=0.05, epochs=300, random_state=0
    ).fit(X, y)
    assert list(clf.classes_) == ["left", "middle", "right"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert clf.score(X, y) > 0.9


def test_works_with_scikit_learn_clone_and_cross_validation():
    from sklearn import base, model_selection

    X, Y = moons(90, noise=0.2, seed=1)
    clf = Classifier(epochs=100, random_state=0)
    clone = base.clone(clf)
    assert clone.get_params() == clf.get_params() and clone is not clf
    scores = model_selection.cross_val_score(clf, X.T, Y[0], cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_bad_input():
    clf = Classifier(epochs=5)
    with pytest.raises(ValueError, match="not fitted"):
        clf.predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[3, 4\]"):
        clf.fit(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 classes, got 1 class"):
        clf.fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"Expected 2D array(?s:.*)Reshape your data"):
        clf.fit(np.zeros(3), np.zeros(3))


def test_a_continuous_target_is_refused_not_turned_into_classes():
    X, Y = moons(40, seed=0)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        Classifier(epochs=2).fit(X.T, X[0])


def test_a_column_y_is_flattened_with_a_warning():
    from sklearn.exceptions import DataConversionWarning

    X, Y = moons(60, seed=0)
    with pytest.warns(DataConversionWarning, match="column-vector y was passed"):
        column = Classifier(epochs=20, random_state=0).fit(X.T, Y.T)
    flat = Classifier(epochs=20, random_state=0).fit(X.T, Y[0])
    np.testing.assert_array_equal(column.loss_curve_, flat.loss_curve_)


def test_wrong_feature_count_is_reported_batch_first():
    X, Y = moons(40, seed=0)
    clf = Classifier(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X.T, Y[0])
    with pytest.raises(ValueError, match=r"X has 3 features, but Classifier is expecting 2"):
        clf.predict(np.ones((5, 3)))


def test_regressor_matches_the_core_model_it_wraps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    reg = Regressor(
        hidden_layer_sizes=(16, 8),
        activation="tanh",
        initializer="glorot_uniform",
        optimizer="adam",
        epochs=300,
        random_state=4,
    ).fit(X, y)
    model = NeuralNetwork(seed=4)
    model.add(Dense(16, activation="tanh", initializer="glorot_uniform"))
    model.add(Dense(8, activation="tanh", initializer="glorot_uniform"))
    model.add(Dense(1, activation="linear", initializer="glorot_uniform"))
    model.compile(loss="mse", optimizer="adam")
    model.fit(X.T, y.reshape(1, -1), epochs=300, learning_rate=0.01)
    np.testing.assert_array_equal(reg.loss_curve_, model.history["loss"])
    np.testing.assert_array_equal(reg.predict(X), model.predict(X.T)[0])
    assert reg.predict(X).shape == (80,)
    # R² from its definition, 1 - SS_res / SS_tot.
    residual = ((y - reg.predict(X)) ** 2).sum()
    assert reg.score(X, y) == pytest.approx(1 - residual / ((y - y.mean()) ** 2).sum())
    assert reg.score(X, y) > 0.9


def test_regressor_multi_output_keeps_columns():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    Y = np.column_stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1]])
    reg = Regressor(hidden_layer_sizes=(8,), optimizer="adam", epochs=400, random_state=0).fit(X, Y)
    assert reg.model_.layers[-1].units == 2 and reg.predict(X).shape == (50, 2)
    assert reg.score(X, Y) > 0.95


# As constructed by default: random_state=None, which the checks set as they set any estimator's.
@pytest.mark.parametrize("estimator", [Classifier(), Regressor()], ids=["Classifier", "Regressor"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_passes_every_scikit_learn_estimator_check(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(estimator, on_fail=None)
    failed = [
        (r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"
    ]
    assert failed == []
    # Skipped only where the environment lacks something (pandas, the array API flag).
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert len(results) > 40 and skipped <= {
        "check_array_api_input",
        "check_classifier_data_not_an_array",
        "check_regressor_data_not_an_array",
        "check_dataframe_column_names_consistency",
        "check_pandas_series",
    }


@pytest.mark.parametrize(
    "make, data",
    [
        (
            lambda: Classifier(
                hidden_layer_sizes=(8,), optimizer="adam", epochs=150, random_state=0
            ),
            "moons",
        ),
        (
            lambda: Regressor(
                hidden_layer_sizes=(8,), optimizer="adam", epochs=150, random_state=0
            ),
            "curve",
        ),
    ],
    ids=["Classifier", "Regressor"],
)
def test_pipeline_grid_search_and_cross_validation(make, data):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if data == "moons":
        X, Y = moons(120, noise=0.2, seed=2)
        X, y = X.T * 3 + 5, Y[0]  # off-centre, so the scaler matters
    else:
        X = np.random.default_rng(2).uniform(-2, 2, size=(120, 1))
        y = X[:, 0] ** 2
    pipeline = make_pipeline(StandardScaler(), make())
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.6)
    step = pipeline.steps[-1][0]
    search = GridSearchCV(pipeline, {f"{step}__learning_rate": [1e-4, 0.02]}, cv=3).fit(X, y)
    # A rate of 1e-4 barely moves Adam's weights in 150 epochs: the search must see that.
    assert search.best_params_ == {f"{step}__learning_rate": 0.02}
    assert search.best_estimator_.predict(X).shape == (120,)


def test_the_module_docstring_example_runs():
    import doctest

    from initlab import estimator

    result = doctest.testmod(estimator)
    assert result.attempted >= 3 and result.failed == 0


# --- all or nothing, and labels that are no labels ----------------------------------------------


def _fitted(**params):
    X, Y = moons(60, noise=0.2, seed=0)
    clf = Classifier(hidden_layer_sizes=(6,), epochs=20, random_state=0, **params).fit(X.T, Y[0])
    return clf, X.T, Y[0]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda clf, X, y: clf.set_params(epochs=10**12).fit(X, np.where(y > 0, "b", "a")),
            "use fewer epochs",
        ),
        (
            lambda clf, X, y: clf.set_params(optimizer="rmsprop").fit(X, np.where(y > 0, "b", "a")),
            "optimizer 'rmsprop' is not known",
        ),
        (
            lambda clf, X, y: clf.fit(X, np.where(np.arange(len(y)) == 3, np.nan, y)),
            r"y must hold a label for every sample; y\[3\] is np.float64\(nan\)|y\[3\] is nan",
        ),
        (
            lambda clf, X, y: clf.fit(X, np.where(np.arange(len(y)) == 5, None, y.astype(object))),
            r"y\[5\] is None",
        ),
        (lambda clf, X, y: clf.fit(X + 1j, y), "Complex data not supported"),
        (lambda clf, X, y: clf.fit(X.astype(str), y), r"X must hold real numbers .*\(strings\)"),
        (
            lambda clf, X, y: clf.set_params(hidden_layer_sizes=(4, 0)).fit(X, y),
            r"hidden_layer_sizes\[1\] must be an integer >= 1, got 0",
        ),
    ],
)
def test_a_failed_refit_leaves_the_fitted_classifier_as_it_was(change, message):
    from conftest import object_state

    clf, X, y = _fitted()
    before = object_state(
        {key: value for key, value in vars(clf).items() if key.endswith("_")}
    )  # what fit learned
    with pytest.raises(ValueError, match=message):
        change(clf, X, y)
    assert (
        object_state({key: value for key, value in vars(clf).items() if key.endswith("_")})
        == before
    )
    # predict still answers with the labels of the problem it was trained on.
    assert set(clf.predict(X)) <= {0.0, 1.0}


def test_an_integer_hidden_layer_sizes_means_one_hidden_layer_as_in_scikit_learn():
    X, Y = moons(60, noise=0.2, seed=0)
    one = Classifier(hidden_layer_sizes=7, epochs=20, random_state=0).fit(X.T, Y[0])
    tuple_ = Classifier(hidden_layer_sizes=(7,), epochs=20, random_state=0).fit(X.T, Y[0])
    assert [layer.units for layer in one.model_.layers] == [7, 1]
    np.testing.assert_array_equal(one.predict_proba(X.T), tuple_.predict_proba(X.T))


@pytest.mark.parametrize("estimator", [Classifier, Regressor])
def test_a_refit_whose_allocation_fails_leaves_the_estimator_as_it_was(monkeypatch, estimator):
    # The memory estimate passes, then the history (8 PB) cannot be allocated.
    from conftest import object_state
    from initlab import checks

    X, Y = moons(60, noise=0.2, seed=0)
    fitted = estimator(hidden_layer_sizes=(6,), epochs=20, random_state=0).fit(X.T, Y[0])
    before = object_state(fitted)
    monkeypatch.setattr(checks, "available_memory", lambda: 10**30)
    with pytest.raises(MemoryError):
        fitted.set_params(epochs=10**15).fit(X.T, Y[0])
    fitted.set_params(epochs=20)  # the one change the caller made
    assert object_state(fitted) == before


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes[1] must be an integer >= 1, got 0"),
        ({"initializer": "hee"}, "method 'hee' is not known"),
        ({"activation": "relux"}, "activation 'relux' is not known"),
    ],
)
def test_each_bad_setting_is_named_as_the_estimator_names_it(settings, message):
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError) as refused:
        Classifier(epochs=2, **settings).fit(X, y)
    assert str(refused.value).startswith(message)
