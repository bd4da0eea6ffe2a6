"""The post's own code, with only its import lines changed, runs and shows what the post shows."""

import numpy as np
import pytest

sklearn_datasets = pytest.importorskip("sklearn.datasets")

from initlab import *  # noqa: E402,F403 - the post's `from Layer import *` style, on purpose


@pytest.fixture
def post_data():
    # The post draws from NumPy's global state; seeding it here makes the test repeatable.
    np.random.seed(1)
    X_train, Y_train = sklearn_datasets.make_moons(n_samples=400, noise=0.2)
    X_test, Y_test = sklearn_datasets.make_moons(n_samples=100, noise=0.2)
    X_train = X_train.T
    Y_train = np.reshape(Y_train, (1, -1))
    X_test = X_test.T
    Y_test = np.reshape(Y_test, (1, -1))
    return X_train, Y_train, X_test, Y_test


def get_model(initializer):
    model = NeuralNetwork()  # noqa: F405
    model.add(Dense(units=12, activation="relu", initializer=initializer))  # noqa: F405
    model.add(Dense(units=6, activation="relu", initializer=initializer))  # noqa: F405
    model.add(Dense(units=1, activation="sigmoid"))  # noqa: F405
    model.compile(loss="crossentropy")
    return model


def random_normal(self):
    weights = np.random.randn(*self.shape) * self.scale
    bias = np.zeros((self.shape[0], 1)) * self.scale
    return weights, bias


def he(self):
    scale = np.sqrt(2 / self.shape[1])
    weights = np.random.randn(*self.shape) * scale
    bias = np.zeros((self.shape[0], 1)) * scale
    return weights, bias


@pytest.fixture
def patched_initializer(monkeypatch):
    # The post assigns Initializer.random_normal and Initializer.he; monkeypatch undoes it after.
    monkeypatch.setattr(Initializer, "random_normal", random_normal, raising=False)  # noqa: F405
    monkeypatch.setattr(Initializer, "he", he, raising=False)  # noqa: F405


def test_zeros_initialization_learns_nothing(post_data, patched_initializer, capsys):
    X_train, Y_train, X_test, Y_test = post_data
    initializer = Initializer(scale=0)  # noqa: F405
    dnn_model = get_model(initializer)
    dnn_model.fit(X_train, Y_train, learning_rate=0.01, epochs=15000, print_log=True)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 16 and printed[-1].startswith("Epochs: 14999 - Cost: 0.69314718")
    assert len(dnn_model.costs) == 16
    np.testing.assert_allclose(dnn_model.costs, np.log(2))
    assert dnn_model.learning_rate == 0.01
    assert dnn_model.evaluate(X_train, Y_train)["accuracy"] == 50.0
    assert dnn_model.evaluate(X_test, Y_test)["accuracy"] == 50.0
    # plot_decision_boundary's call: predict on (m, 2) points transposed, thresholded.
    grid = np.c_[np.linspace(-1, 2, 7), np.linspace(-1, 1.5, 7)]
    assert (dnn_model.predict(grid.T) > 0.5).shape == (1, 7)


def test_he_initialization_learns_the_moons(post_data, patched_initializer):
    X_train, Y_train, X_test, Y_test = post_data
    dnn_model = get_model(initializer="he")
    dnn_model.fit(X_train, Y_train, learning_rate=0.01, epochs=15000, print_log=False)
    assert dnn_model.costs[0] > 0.5 and dnn_model.costs[-1] < 0.12
    assert np.all(np.diff(dnn_model.costs) < 0)
    assert dnn_model.evaluate(X_train, Y_train)["accuracy"] >= 93
    assert dnn_model.evaluate(X_test, Y_test)["accuracy"] >= 90


def test_patched_method_reads_shape_and_scale(patched_initializer):
    np.random.seed(0)
    weights, bias = Initializer(scale=10)((12, 2))  # noqa: F405
    np.random.seed(0)
    np.testing.assert_array_equal(weights, np.random.randn(12, 2) * 10)
    assert bias.shape == (12, 1) and not bias.any()
