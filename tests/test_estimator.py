"""The batch-first Classifier: scikit-learn's protocol, and the same numbers as the core."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from initlab import Dense, NeuralNetwork
from initlab.blocks.datasets import moons
from initlab.estimator import Classifier


def test_matches_the_core_model_it_wraps():
    X, Y = moons(120, noise=0.2, seed=0)
    clf = Classifier(hidden_layer_sizes=(12, 6), initializer="he", epochs=200, seed=3)
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
    clf = Classifier(hidden_layer_sizes=(16,), optimizer="adam", learning_rate=0.05, epochs=300,
                     seed=0).fit(X, y)
    assert list(clf.classes_) == ["left", "middle", "right"]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert clf.score(X, y) > 0.9


def test_works_with_scikit_learn_clone_and_cross_validation():
    from sklearn import base, model_selection

    X, Y = moons(90, noise=0.2, seed=1)
    clf = Classifier(epochs=100, seed=0)
    clone = base.clone(clf)
    assert clone.get_params() == clf.get_params() and clone is not clf
    scores = model_selection.cross_val_score(clf, X.T, Y[0], cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_bad_input():
    clf = Classifier(epochs=5)
    with pytest.raises(ValueError, match="not fitted"):
        clf.predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"y must be 1-D with one label per row of X \(3\)"):
        clf.fit(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"X must be 2-D.*shape \(3,\)"):
        clf.fit(np.zeros(3), np.zeros(3))


def test_wrong_feature_count_is_reported_batch_first():
    X, Y = moons(40, seed=0)
    clf = Classifier(hidden_layer_sizes=(4,), epochs=2, seed=0).fit(X.T, Y[0])
    with pytest.raises(ValueError, match=r"X has 3 features, but Classifier is expecting 2 .*"
                                         r"shape \(5, 3\)"):
        clf.predict(np.ones((5, 3)))


# --- all or nothing, and labels that are no labels ----------------------------------------------

def _fitted(**params):
    X, Y = moons(60, noise=0.2, seed=0)
    clf = Classifier(hidden_layer_sizes=(6,), epochs=20, seed=0, **params).fit(X.T, Y[0])
    return clf, X.T, Y[0]


@pytest.mark.parametrize("change, message", [
    (lambda clf, X, y: clf.set_params(epochs=10**12).fit(X, np.where(y > 0, "b", "a")),
     "use fewer epochs"),
    (lambda clf, X, y: clf.set_params(optimizer="rmsprop").fit(X, np.where(y > 0, "b", "a")),
     "optimizer 'rmsprop' is not known"),
    (lambda clf, X, y: clf.fit(X, np.where(np.arange(len(y)) == 3, np.nan, y)),
     r"y must hold a label for every sample; y\[3\] is np.float64\(nan\)|y\[3\] is nan"),
    (lambda clf, X, y: clf.fit(X, np.where(np.arange(len(y)) == 5, None, y.astype(object))),
     r"y\[5\] is None"),
    (lambda clf, X, y: clf.fit(X + 1j, y), r"X must hold real numbers .*\(complex\)"),
    (lambda clf, X, y: clf.fit(X.astype(str), y), r"X must hold real numbers .*\(strings\)"),
    (lambda clf, X, y: clf.set_params(hidden_layer_sizes=(4, 0)).fit(X, y),
     r"hidden_layer_sizes\[1\]: units must be an integer >= 1, got 0"),
])
def test_a_failed_refit_leaves_the_fitted_classifier_as_it_was(change, message):
    from conftest import object_state

    clf, X, y = _fitted()
    before = object_state({key: value for key, value in vars(clf).items()
                           if key.endswith("_")})  # what fit learned
    with pytest.raises(ValueError, match=message):
        change(clf, X, y)
    assert object_state({key: value for key, value in vars(clf).items()
                         if key.endswith("_")}) == before
    # predict still answers with the labels of the problem it was trained on.
    assert set(clf.predict(X)) <= {0.0, 1.0}


def test_an_integer_hidden_layer_sizes_means_one_hidden_layer_as_in_scikit_learn():
    X, Y = moons(60, noise=0.2, seed=0)
    one = Classifier(hidden_layer_sizes=7, epochs=20, seed=0).fit(X.T, Y[0])
    tuple_ = Classifier(hidden_layer_sizes=(7,), epochs=20, seed=0).fit(X.T, Y[0])
    assert [layer.units for layer in one.model_.layers] == [7, 1]
    np.testing.assert_array_equal(one.predict_proba(X.T), tuple_.predict_proba(X.T))
