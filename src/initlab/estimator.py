"""scikit-learn estimators over NeuralNetwork, for data held batch-first: Classifier, Regressor.

scikit-learn holds data as X (n_samples, n_features) and y (n_samples,); the core, like the post,
holds (n_features, m). These wrappers are the one place that transposes. They are real
scikit-learn estimators (they pass `sklearn.utils.estimator_checks.check_estimator`; clone,
cross_val_score, GridSearchCV, pipelines), so unlike the core they need scikit-learn:
`pip install 'initlab[study]'`. Input is checked by scikit-learn's own validation, so bad input
gets scikit-learn's messages: a continuous target given to Classifier is refused ("Unknown label
type"), a column y of shape (n, 1) is flattened with a DataConversionWarning.

    >>> from initlab.blocks.datasets import moons
    >>> X, Y = moons(200, seed=0)
    >>> clf = Classifier(hidden_layer_sizes=(12, 6), initializer="he", epochs=500, random_state=0)
    >>> clf.fit(X.T, Y[0]).score(X.T, Y[0]) > 0.8
    True
"""

import contextlib

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from initlab import checks
from initlab.blocks.layers import Dense
from initlab.engine.model import NeuralNetwork


class _Network(BaseEstimator):
    """What Classifier and Regressor share: the parameters, the hidden stack, fit and forward."""

    def __init__(
        self,
        hidden_layer_sizes=(12, 6),
        activation="relu",
        initializer="he",
        optimizer="sgd",
        learning_rate=0.01,
        epochs=1000,
        batch_size=None,
        random_state=None,
        dtype="float64",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.initializer = initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state
        self.dtype = dtype

    @contextlib.contextmanager
    def _all_or_nothing(self):
        """A fit that fails leaves the estimator as it was: its classes_, model_ and
        n_features_in_ always come from one fit, so predict never mixes two problems."""
        saved = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    def _hidden_sizes(self):
        # scikit-learn's MLPs take one integer for a single hidden layer too.
        sizes = self.hidden_layer_sizes
        return list(sizes) if isinstance(sizes, (list, tuple, np.ndarray)) else [sizes]

    def _train(self, X, targets, units, output_activation, loss):
        """Build the network (hidden layers, then `units` outputs) and fit X (m, n) to targets."""
        # random_state, scikit-learn's name for it, is the model's seed: an int, or None for fresh
        # entropy. Under that name scikit-learn's tools (set_random_state, the estimator checks)
        # find it.
        model = NeuralNetwork(seed=self.random_state, dtype=self.dtype)
        for k, hidden_units in enumerate(self._hidden_sizes()):
            # Dense's own errors name activation and initializer, as this estimator does; its
            # units are the k-th hidden layer size here.
            units_k = checks.integer(f"hidden_layer_sizes[{k}]", hidden_units, minimum=1)
            model.add(Dense(units_k, activation=self.activation, initializer=self.initializer))
        model.add(Dense(units, activation=output_activation, initializer=self.initializer))
        model.compile(loss=loss, optimizer=self.optimizer)
        # The core's layout, (features, samples), from here on.
        model.fit(
            X.T,
            targets.T,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
        )
        self.model_ = model
        self.loss_curve_ = model.history["loss"]
        return self

    def _network_output(self, X):
        """The network's output for X (n_samples, n_features): (n_samples, units)."""
        # NotFittedError is a ValueError, as scikit-learn's own estimators raise.
        check_is_fitted(self, "model_")
        X = validate_data(self, _real_features(X), dtype=np.float64, reset=False)
        return self.model_.predict(X.T).T


class Classifier(ClassifierMixin, _Network):
    """Multi-layer perceptron classifier: hidden Dense layers, then sigmoid (2 classes) or softmax.

    Trained with cross-entropy (binary or categorical). Labels may be of any kind scikit-learn
    classifies (numbers, strings); a continuous target raises ValueError.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Units of each hidden layer; the post's network is (12, 6).
    activation : str
        Activation of the hidden layers.
    initializer : str, Initializer or function
        How every layer's weights are drawn (see initlab.blocks.initializers).
    optimizer, learning_rate, epochs, batch_size, dtype
        Passed to NeuralNetwork.compile and NeuralNetwork.fit.
    random_state : int or None
        The NeuralNetwork's seed: the same int gives the same weights and minibatch order.

    Attributes
    ----------
    classes_ : (n_classes,) array; model_ : the trained NeuralNetwork; loss_curve_ : cost per
    epoch; n_features_in_ : int.
    """

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,)."""
        with self._all_or_nothing():
            X = _real_features(X)
            _check_labels(y)
            X, y = validate_data(self, X, y, dtype=np.float64)
            check_classification_targets(y)  # "Unknown label type: continuous" for real targets
            self.classes_, indices = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"Classifier needs samples of at least 2 classes, got 1 class: "
                    f"{self.classes_.tolist()}"
                )
            targets = indices.reshape(-1, 1).astype(float)
            if len(self.classes_) == 2:
                return self._train(X, targets, 1, "sigmoid", "crossentropy")
            # Categorical cross-entropy one-hot encodes a single row of class indices itself.
            return self._train(
                X, targets, len(self.classes_), "softmax", "categorical_crossentropy"
            )

    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in the order of classes_."""
        p = self._network_output(X)
        if len(self.classes_) == 2:
            p = np.hstack([1 - p, p])
        return p

    def predict(self, X):
        """The most probable class of each row of X: (n_samples,)."""
        most_probable = self.predict_proba(X).argmax(axis=1)  # checks fitting first
        return self.classes_[most_probable]


class Regressor(RegressorMixin, _Network):
    """Multi-layer perceptron regressor: hidden Dense layers, then a linear output, trained by MSE.

    y may be (n_samples,) or (n_samples, n_outputs); predict returns the same shape. Parameters
    and attributes as Classifier (without classes_). Targets are fitted as given: standardise them
    (sklearn.compose.TransformedTargetRegressor) when they are far from unit scale.
    """

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and targets y (n_samples,) or (n_samples, k)."""
        with self._all_or_nothing():
            X = _real_features(X)
            X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, multi_output=True)
            self._single_output = y.ndim == 1
            targets = y.reshape(-1, 1) if self._single_output else y
            return self._train(X, targets.astype(float), targets.shape[1], "linear", "mse")

    def predict(self, X):
        """Predicted targets: (n_samples,), or (n_samples, n_outputs) if fitted on columns."""
        output = self._network_output(X)
        return output[:, 0] if self._single_output else output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _real_features(X):
    """X, refused if it holds strings or booleans, which scikit-learn's validation would parse
    as numbers; complex, object and sparse data go on to scikit-learn, which refuses or converts
    them in its own words."""
    if not hasattr(X, "tocsr") and np.asarray(X).dtype.kind in "USb":
        checks.real_array("X", X, np.float64)  # raises, naming the kind
    return X


def _check_labels(y):
    """ValueError if a label is missing: NaN or None, which np.unique would make a class.
    (No y at all is scikit-learn's to refuse, in the words its checks expect.)"""
    if y is None:
        return
    y = np.asarray(y)
    if y.dtype.kind in "fc":
        missing = ~np.isfinite(y)
    elif y.dtype.kind == "O":
        missing = np.array([label is None or label != label for label in y.ravel()], bool)
    else:
        return
    if missing.any():
        first = int(np.argmax(missing.ravel()))
        raise ValueError(
            f"y must hold a label for every sample; y[{first}] is {y.ravel()[first]!r}"
        )
