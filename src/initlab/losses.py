"""Loss functions: the cost averaged over samples, and its gradient, side by side.

Arrays are (..., n_outputs, m). A loss returns one cost per model: a float for a single model, an
array over the leading axes for an ensemble. Gradients already carry the 1/m of the average, so the
layers below never divide again.

Every loss has
    __call__(y_true, y_pred)         -> cost
    gradient(y_true, y_pred)         -> dL/dy_pred
Cross-entropies also have a fused path for the activation they pair with:
    from_logits(y_true, z, out=None) -> (cost, dL/dz)
The model takes it when the output layer's activation is `loss.output_activation`: the cost is then
computed from the logits with log-sum-exp (exact and finite at any weight scale), and dL/dz is the
familiar p - y, which holds only for these matching pairs.

    >>> import numpy as np
    >>> bce = get("crossentropy")
    >>> float(bce.from_logits(np.array([[1.0, 0.0]]), np.zeros((1, 2)))[0])  # ln 2
    0.6931471805599453
"""

import numpy as np

_SUM_AXES = (-2, -1)


def _count(y):
    """How many numbers a cost averages over: samples x outputs."""
    return y.shape[-1] * y.shape[-2]


class Loss:
    """Base contract. Subclasses set `name` and implement the methods named in the module doc."""

    name = "loss"
    output_activation = None

    def __call__(self, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, y_true, y_pred):
        raise NotImplementedError

    def prepare_targets(self, y, n_outputs):
        """Check (and for sparse labels, encode) targets; raise ValueError naming `Y` if invalid."""
        return y

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}()"


class BinaryCrossentropy(Loss):
    """L = -mean(y ln p + (1 - y) ln(1 - p)), over samples and outputs (as Keras does).

    From logits z (p = sigmoid(z)): L = mean(softplus(z) - y z), softplus(z) = logaddexp(0, z),
    and dL/dz = (p - y) / count. Unlike ln(p + 1e-5), this never caps the loss or its gradient.
    """

    name = "crossentropy"
    output_activation = "sigmoid"
    # Used only on the unfused path (an output activation other than sigmoid): p can be 0 or 1.
    eps = 1e-15

    def __call__(self, y_true, y_pred):
        p = np.clip(y_pred, self.eps, 1 - self.eps)
        losses = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p))
        return losses.sum(axis=_SUM_AXES) / _count(y_true)

    def gradient(self, y_true, y_pred):
        p = np.clip(y_pred, self.eps, 1 - self.eps)
        return (p - y_true) / (p * (1 - p)) / _count(y_true)

    def from_logits(self, y_true, z, out=None):
        softplus = np.logaddexp(0.0, z, out=out)
        cost = (softplus.sum(axis=_SUM_AXES) - (z * y_true).sum(axis=_SUM_AXES)) / _count(y_true)
        # sigmoid(z) = exp(z - softplus(z)); the exponent is <= 0, so this never overflows.
        grad = np.subtract(z, softplus, out=softplus)
        np.exp(grad, out=grad)
        grad -= y_true
        grad *= 1.0 / _count(y_true)
        return cost, grad

    def prepare_targets(self, y, n_outputs):
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise ValueError(
                f"Y must hold labels 0 or 1 for loss {self.name!r}; "
                f"found {np.unique(y[bad])[:5].tolist()}"
            )
        return y


class CategoricalCrossentropy(Loss):
    """L = -mean over samples of sum_k y_k ln p_k, for one-hot (or probability) targets.

    From logits z (p = softmax(z) over the units axis): L = mean(logsumexp(z) - sum_k y_k z_k) and
    dL/dz = (p - y) / m. Targets of shape (1, m) holding class indices are one-hot encoded.
    """

    name = "categorical_crossentropy"
    output_activation = "softmax"
    eps = 1e-15

    def __call__(self, y_true, y_pred):
        p = np.clip(y_pred, self.eps, 1.0)
        return -(y_true * np.log(p)).sum(axis=_SUM_AXES) / y_true.shape[-1]

    def gradient(self, y_true, y_pred):
        return -y_true / np.clip(y_pred, self.eps, 1.0) / y_true.shape[-1]

    def from_logits(self, y_true, z, out=None):
        m = y_true.shape[-1]
        shifted = np.subtract(z, z.max(axis=-2, keepdims=True), out=out)
        exp = np.exp(shifted)
        total = exp.sum(axis=-2, keepdims=True)
        # logsumexp(z) - y.z, written with the shift: ln(total) - y.(z - max), as y sums to 1.
        cost = (np.log(total).sum(axis=_SUM_AXES) - (shifted * y_true).sum(axis=_SUM_AXES)) / m
        grad = np.divide(exp, total, out=shifted)
        grad -= y_true
        grad *= 1.0 / m
        return cost, grad

    def prepare_targets(self, y, n_outputs):
        if y.shape[-2] == 1 and n_outputs > 1:
            labels = y[..., 0, :]
            if not np.all((labels == np.round(labels)) & (labels >= 0) & (labels < n_outputs)):
                raise ValueError(
                    f"Y of shape {y.shape} is read as class indices for loss {self.name!r}; "
                    f"they must be whole numbers in [0, {n_outputs}), found "
                    f"{np.unique(labels)[:5].tolist()}"
                )
            onehot = np.zeros(labels.shape[:-1] + (n_outputs, labels.shape[-1]), dtype=y.dtype)
            np.put_along_axis(onehot, labels.astype(np.intp)[..., None, :], 1.0, axis=-2)
            return onehot
        if np.any(y < 0) or np.any(y > 1) or not np.allclose(y.sum(axis=-2), 1.0):
            raise ValueError(
                f"Y must be one-hot (or probabilities summing to 1 over each column) for loss "
                f"{self.name!r}, or class indices of shape (1, m)"
            )
        return y


class MeanSquaredError(Loss):
    """L = mean((y_pred - y)^2) over samples and outputs, as Keras's mse.

    dL/dy_pred = 2 (y_pred - y) / count.
    """

    name = "mse"

    def __call__(self, y_true, y_pred):
        diff = y_pred - y_true
        return (diff * diff).sum(axis=_SUM_AXES) / _count(y_true)

    def gradient(self, y_true, y_pred):
        return (y_pred - y_true) * (2.0 / _count(y_true))


LOSSES = {
    "crossentropy": BinaryCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get(identifier):
    """Return a Loss from a registered name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        identifier = identifier.get("name")
    key = identifier.lower() if isinstance(identifier, str) else identifier
    if key not in LOSSES:
        raise ValueError(f"loss {identifier!r} is not known; expected one of {sorted(LOSSES)}")
    return LOSSES[key]()
