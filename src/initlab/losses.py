"""Loss functions: the cost averaged over samples, and its gradient, side by side.

Arrays are (..., n_outputs, m). A loss returns one cost per model: a float for a single model, an
array over the leading axes for an ensemble. Gradients already carry the 1/m of the average, so the
layers below never divide again.

Every loss has
    __call__(y_true, y_pred)         -> cost
    gradient(y_true, y_pred)         -> dL/dy_pred
    training_step(y_true, output, grad_output, from_logits) -> step() -> cost, over fixed buffers
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

import functools

import numpy as np

from initlab.layers import _dot  # np.dot without its Python-level dispatch

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

    def training_step(self, y_true, output, grad_output, from_logits):
        """Bind the cost and its gradient to fixed buffers, for the training loop.

        y_true : (..., n_outputs, m); the loop writes each batch's targets into it.
        output : the output layer's buffer; logits z when `from_logits` (the fused pair).
        grad_output : buffer that step() fills with dL/d(output).
        Returns (step, load): step() -> cost, a float or one cost per stacked model; load(),
        to be called after new targets are written into y_true, precomputes what depends on
        them alone (nothing, by default).
        """
        if from_logits:
            def step():
                return self.from_logits(y_true, output, out=grad_output)[0]
        else:
            def step():
                np.copyto(grad_output, self.gradient(y_true, output))
                return self(y_true, output)
        return step, _nothing

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}()"


def _nothing():
    pass


def _scaled_sum(values, axes, scale):
    return np.add.reduce(values, axes) * scale


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

    def training_step(self, y_true, output, grad_output, from_logits):
        """The fused path over fixed buffers: the cost and dL/dz of from_logits, in fewer calls.

        Targets are 0 or 1 (prepare_targets checks), so with s = 1 - 2y (+1 or -1) and u = s z,
        each sample's loss softplus(z) - y z is softplus(u), and dL/dz = s sigmoid(u) / count.
        softplus(u) = max(u, 0) + log1p(exp(-|u|)) is exact and never overflows (exp sees only
        values <= 0); sigmoid(u) = exp(u - softplus(u)), an exponent <= 0 too. Every call but
        log1p runs a SIMD loop; np.logaddexp would run a scalar one, about 12 ns an element here.
        """
        if not from_logits:
            return super().training_step(y_true, output, grad_output, from_logits)
        z, grad = output, grad_output
        shape = np.broadcast_shapes(z.shape, y_true.shape)
        sign, sign_over_count = np.empty(y_true.shape, z.dtype), np.empty(y_true.shape, z.dtype)
        u, softplus, scratch = (np.empty(shape, z.dtype) for _ in range(3))
        zeros = np.zeros(shape[-2:], z.dtype)  # broadcast over stacked models
        scale = 1.0 / _count(y_true)
        call = functools.partial

        def load():
            np.multiply(y_true, -2.0, sign)
            np.add(sign, 1.0, sign)
            np.multiply(sign, scale, sign_over_count)

        ops = (
            call(np.multiply, z, sign, u),                   # u = s z
            call(np.abs, u, scratch),                        # log1p(exp(-|u|))
            call(np.negative, scratch, scratch),
            call(np.exp, scratch, scratch),
            call(np.log1p, scratch, scratch),
            call(np.maximum, u, zeros, out=softplus),        # softplus(u) = max(u, 0) + that
            call(np.add, softplus, scratch, softplus),
            call(np.subtract, u, softplus, grad),            # sigmoid(u) = exp(u - softplus(u))
            call(np.exp, grad, grad),
            call(np.multiply, grad, sign_over_count, grad),  # dL/dz = s sigmoid(u) / count
        )
        if len(shape) == 2:
            # One model: the mean is one dot product with a vector of 1/count, a single BLAS
            # call that costs less than a reduction (0.6 against 1 µs here).
            cost = functools.partial(_dot, softplus.reshape(-1),
                                     np.full(softplus.size, scale, z.dtype))
        else:
            cost = functools.partial(_scaled_sum, softplus, _SUM_AXES, scale)

        def step():
            for op in ops:
                op()
            return cost()

        return step, load

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
