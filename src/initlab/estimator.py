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

from initlab import checks
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
        """Train on X (n_samples, n_features) and labels y (n_samples,) of any hashable kind.

        All or nothing: a fit that fails leaves a fitted Classifier as it was (its classes_ and
        model_ from the same fit), so predict never mixes two problems.
        """
        X = _batch_first("X", X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(
                f"y must be 1-D with one label per row of X ({len(X)}), got shape {y.shape}"
            )
        _check_labels(y)
        classes, indices = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y must hold at least 2 classes, got {classes.tolist()}")
        binary = len(classes) == 2
        # scikit-learn's MLPClassifier takes one integer for a single hidden layer too.
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if isinstance(sizes, (list, tuple, np.ndarray)) else [sizes]
        model = NeuralNetwork(seed=self.seed, dtype=self.dtype)
        for k, units in enumerate(sizes):
            try:
                layer = Dense(units, activation=self.activation, initializer=self.initializer)
            except ValueError as error:
                raise ValueError(f"hidden_layer_sizes[{k}]: {error}") from None
            model.add(layer)
        model.add(Dense(1 if binary else len(classes),
                        activation="sigmoid" if binary else "softmax",
                        initializer=self.initializer))
        model.compile(loss="crossentropy" if binary else "categorical_crossentropy",
                      optimizer=self.optimizer)
        targets = indices.reshape(1, -1).astype(float)
        model.fit(X.T, targets, epochs=self.epochs, learning_rate=self.learning_rate,
                  batch_size=self.batch_size)
        # Trained: only now does the estimator change, all at once.
        self.classes_, self.model_ = classes, model
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


def _check_labels(y):
    """ValueError if a label is missing: NaN (or None), which np.unique would make a class."""
    if y.dtype.kind in "fc":
        missing = ~np.isfinite(y)
    elif y.dtype.kind == "O":
        missing = np.array([label is None or label != label for label in y], dtype=bool)
    else:
        return
    if missing.any():
        raise ValueError(f"y must hold a label for every sample; y[{int(np.argmax(missing))}] "
                         f"is {y[np.argmax(missing)]!r}")


def _batch_first(name, X):
    X = checks.real_array(name, X, np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, (n_samples, n_features), got shape {X.shape}")
    return X
