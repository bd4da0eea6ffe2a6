"""A scikit-learn classifier over NeuralNetwork, for data held batch-first.

scikit-learn holds data as X (n_samples, n_features) and y (n_samples,); the core, like the post,
holds (n_features, m). This wrapper is the one place that transposes. It is a real scikit-learn
estimator (clone, cross_val_score, GridSearchCV, pipelines), so unlike the core it needs
scikit-learn: `pip install 'initlab[study]'`.

    >>> from initlab.blocks.datasets import moons
    >>> X, Y = moons(200, seed=0)
    >>> clf = Classifier(hidden_layer_sizes=(12, 6), initializer="he", epochs=500, seed=0)
    >>> clf.fit(X.T, Y[0]).score(X.T, Y[0]) > 0.8
    True
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from initlab.blocks.layers import Dense
from initlab.engine.model import NeuralNetwork


class Classifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier: hidden Dense layers, then sigmoid (2 classes) or softmax.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Units of each hidden layer; the post's network is (12, 6).
    activation : str
        Activation of the hidden layers.
    initializer : str, Initializer or function
        How every layer's weights are drawn (see initlab.blocks.initializers).
    optimizer, learning_rate, epochs, batch_size, seed, dtype
        Passed to NeuralNetwork.compile and NeuralNetwork.fit.
    """

    def __init__(self, hidden_layer_sizes=(12, 6), activation="relu", initializer="he",
                 optimizer="sgd", learning_rate=0.01, epochs=1000, batch_size=None, seed=None,
                 dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.initializer = initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.dtype = dtype

    # learning -------------------------------------------------------------------------------
    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,) of any hashable kind."""
        X = _batch_first("X", X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        self.classes_, indices = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least 2 classes, got {self.classes_.tolist()}")
        binary = len(self.classes_) == 2
        model = NeuralNetwork(seed=self.seed, dtype=self.dtype)
        for units in self.hidden_layer_sizes:
            model.add(Dense(units, activation=self.activation, initializer=self.initializer))
        model.add(Dense(1 if binary else len(self.classes_),
                        activation="sigmoid" if binary else "softmax",
                        initializer=self.initializer))
        model.compile(loss="crossentropy" if binary else "categorical_crossentropy",
                      optimizer=self.optimizer)
        targets = indices.reshape(1, -1).astype(float)
        model.fit(X.T, targets, epochs=self.epochs, learning_rate=self.learning_rate,
                  batch_size=self.batch_size)
        self.model_ = model
        self.n_features_in_ = X.shape[1]
        self.loss_curve_ = model.history["loss"]
        return self

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in the order of classes_."""
        self._check_fitted()
        X = _batch_first("X", X)
        if X.shape[1] != self.n_features_in_:
            # Checked here, batch-first: the model would report the transposed shape.
            raise ValueError(f"X has {X.shape[1]} features, but Classifier is expecting "
                             f"{self.n_features_in_} features as input (X is (n_samples, "
                             f"n_features)), got shape {X.shape}")
        p = self.model_.predict(X.T)
        if len(self.classes_) == 2:
            p = np.vstack([1 - p, p])
        return p.T

    def predict(self, X):
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def _check_fitted(self):
        # NotFittedError is a ValueError, as scikit-learn's own estimators raise.
        check_is_fitted(self, "model_")


def _batch_first(name, X):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, (n_samples, n_features), got shape {X.shape}")
    return X
