"""Shared fixtures: small seeded data in the post's (features, samples) layout."""

import numpy as np
import pytest

from initlab import Dense, NeuralNetwork
from initlab.blocks.datasets import moons


@pytest.fixture
def moons_data():
    X, Y = moons(64, noise=0.2, seed=3)
    return X, Y


def numerical_gradient(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of `array`, in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def post_model(seed=0, dtype="float64", initializer="he"):
    """The post's network, 2-12-6-1: relu, relu, sigmoid with cross-entropy."""
    model = NeuralNetwork(seed=seed, dtype=dtype)
    model.add(Dense(units=12, activation="relu", initializer=initializer))
    model.add(Dense(units=6, activation="relu", initializer=initializer))
    model.add(Dense(units=1, activation="sigmoid", initializer=initializer))
    model.compile(loss="crossentropy")
    return model
