"""Loss functions: each defined once, as the loss of every entry and its derivative.

Arrays are (..., n_outputs, m). A loss returns one cost per model: a float for a single model, an
array over the leading axes for an ensemble. Gradients already carry the 1/count of the average,
so the layers below never divide again.

A loss says what it is in one class:
    definition(y_pred, y, math)      (loss, dL/dy_pred) of each entry, before the mean
    logit_definition(z, y, math)     the same from the logits z of `output_activation`, for the
                                     pair it fuses with (sigmoid, softmax), if it has one
    count(y)                         how many numbers the mean runs over
written with `math` as activations are (see expressions.py). Every path derives from them:
    __call__(y_true, y_pred) -> cost, gradient(y_true, y_pred) -> dL/dy_pred and
    from_logits(y_true, z) -> (cost, dL/dz) evaluate them with NumPy (the reference);
    training_step(...) binds them to buffers allocated once (the training loop); the compiled
    kernel writes them as scalar code.
The model fuses the output activation into the loss when it is `loss.output_activation`: the cost
is then computed from the logits with log-sum-exp (exact and finite at any weight scale), and
dL/dz is the familiar p - y, which holds only for these matching pairs.

    >>> import numpy as np
    >>> bce = get("crossentropy")
    >>> float(bce.from_logits(np.array([[1.0, 0.0]]), np.zeros((1, 2)))[0])  # ln 2
    0.6931471805599453
"""

import functools

import numpy as np

from initlab.blocks import expressions
from initlab.blocks.activations import logistic
from initlab.blocks.products import dot as _dot
from initlab.registry import Block, Registry

# np.copyto without its Python-level dispatch, as products.dot does for np.dot.
_copyto = getattr(np.copyto, "_implementation", np.copyto)

_SUM_AXES = (-2, -1)


def _count(y):
    """How many numbers a cost averages over: samples x outputs."""
    return y.shape[-1] * y.shape[-2]


class Loss(Block):
    """Base contract: a subclass gives `definition` (and `logit_definition` for a fused pair);
    see the module docstring."""

    output_activation = None

    def definition(self, y_pred, y_true, math):
        """(loss, dL/dy_pred) of each (output, sample), before the mean's 1/count."""
        raise NotImplementedError

    def logit_definition(self, z, y_true, math):
        """Likewise from the logits z of `output_activation`, for the fused pair; a loss without
        one leaves this unimplemented."""
        raise NotImplementedError

    def count(self, y):
        """How many numbers the cost averages over: samples x outputs."""
        return _count(y)

    # --- the reference path: the definitions evaluated with NumPy ----------------------------
    def __call__(self, y_true, y_pred):
        values, _ = expressions.evaluate(self._definition(y_pred), y_pred, y_true)
        return values.sum(axis=_SUM_AXES) / self.count(y_true)

    def gradient(self, y_true, y_pred):
        _, grad = expressions.evaluate(self._definition(y_pred), y_pred, y_true)
        return grad * (1.0 / self.count(y_true))

    def from_logits(self, y_true, z, out=None):
        """(cost, dL/dz) of the fused pair, from the logits z."""
        values, grad = expressions.evaluate(self.logit_definition, z, y_true)
        grad = np.multiply(grad, 1.0 / self.count(y_true), out=out)
        return values.sum(axis=_SUM_AXES) / self.count(y_true), grad

    def _definition(self, y_pred):
        return self.definition

    def prepare_targets(self, y, n_outputs):
        """Check (and for sparse labels, encode) targets; raise ValueError naming `Y` if invalid."""
        return y

    # --- the training loop's path: the same definitions bound to buffers ---------------------
    def training_step(self, y_true, output, grad_output, from_logits):
        """Bind the cost and its gradient to fixed buffers, for the training loop.

        y_true : (..., n_outputs, m); the loop writes each batch's targets into it.
        output : the output layer's buffer; logits z when `from_logits` (the fused pair).
        grad_output : buffer that step() fills with dL/d(output).
        Returns (step, load): step() -> cost, a float or one cost per stacked model; load(),
        to be called after new targets are written into y_true, precomputes what depends on
        them alone (the calls of the definition that read only the targets).
        """
        definition = self.logit_definition if from_logits else self._definition(output)
        output, copy_output = _c_ordered(output)
        shape = np.broadcast_shapes(output.shape, y_true.shape)
        # Full-shape operands throughout: see _full_targets for why nothing broadcasts.
        targets, copy_targets = _full_targets(y_true, shape)
        scale = 1.0 / self.count(y_true)
        ops, (values, _), hoisted = expressions.bind(
            expressions.trace(definition, 2, n_outputs=2),
            [output, targets],
            out=[None, grad_output],
            constant_shape=shape,
            hoist=(1,),
        )
        ops = list(copy_output) + ops
        ops.append(
            functools.partial(
                np.multiply, grad_output, _constant(scale, grad_output.dtype), grad_output
            )
        )

        def load():
            copy_targets()
            for op in hoisted:
                op()

        return _run_all(ops, _bound_cost(values, scale)), load


LOSSES = Registry("loss", Loss, default="crossentropy")
register = LOSSES.register
get = LOSSES.get


def _nothing():
    pass


def _scaled_sum(values, axes, scale):
    return np.add.reduce(values, axes) * scale


def _bound_cost(values, scale):
    """cost() -> scale * sum over the last two axes of values: one cost per model.

    For one model this is a single BLAS dot product with a vector of `scale`, which costs less
    than a reduction (0.6 against 1 µs for the post's batch); a stacked cost is one reduction.
    The cost returned is a new scalar or array every step: callers keep it.
    """
    if values.ndim == 2 and values.flags.c_contiguous:  # reshape(-1) is then a view
        return functools.partial(
            _dot, values.reshape(-1), np.full(values.size, scale, values.dtype)
        )
    return functools.partial(_scaled_sum, values, _SUM_AXES, scale)


def _full_targets(y_true, shape):
    """(targets, copy): y_true itself if it is a C-ordered array of `shape`, else such a buffer
    and the call that refreshes it from y_true (load() runs it).

    Why: NumPy (2.4) allocates a temporary as large as the output, and runs about 2x slower, for
    a ufunc whose operands are not all laid out alike: one that broadcasts (targets shared by
    stacked models), a transposed view (the loop's minibatch targets, each sample's numbers side
    by side) or one with gaps; np.copyto does neither. A dot product also needs the targets laid
    out like the loss's own buffers.
    """
    if y_true.shape == shape and y_true.flags.c_contiguous:
        return y_true, _nothing
    targets = np.empty(shape, y_true.dtype)
    return targets, functools.partial(_copyto, targets, y_true)


def _c_ordered(output):
    """(array, ops): the output buffer itself and no op if it is C-ordered; else a C-ordered
    buffer and the op that copies the output into it, to run first.

    Stacked models' output is a view that skips each model's row of ones: mixed with the loss's
    C-ordered buffers it would make every ufunc allocate a temporary (see _full_targets).
    """
    if output.flags.c_contiguous:
        return output, ()
    buffer = np.empty(output.shape, output.dtype)
    return buffer, (functools.partial(_copyto, buffer, output),)


def _constant(value, dtype):
    """A 0-d array: NumPy converts a Python float operand on every call, which costs a bound
    ufunc call about 0.2 µs more (0.45 against 0.25 µs on 10 x 32)."""
    return np.array(value, dtype)


def _run_all(ops, cost):
    """step() -> cost, after running the bound calls `ops` in order."""

    def step():
        for op in ops:
            op()
        return cost()

    return step


@register("crossentropy", "binary_crossentropy")
class BinaryCrossentropy(Loss):
    """L = -mean(y ln p + (1 - y) ln(1 - p)), over samples and outputs (as Keras does).

    From logits z (p = sigmoid(z)), the fused pair: targets are 0 or 1 (prepare_targets
    checks), so with s = 1 - 2y (+1 or -1) and u = s z, each sample's loss softplus(z) - y z is
    softplus(u), and dL/dz = s sigmoid(u) = p - y. Both come from the one exponential e =
    exp(-|u|), which never overflows: softplus(u) = max(u, 0) + log1p(e), and sigmoid(u) is
    1 / (1 + e) for u >= 0 and e / (1 + e) below. Unlike ln(p + 1e-5), this never caps the loss or
    its gradient, and each call runs a SIMD loop (np.logaddexp would run a scalar one).
    """

    output_activation = "sigmoid"
    # Used only on the unfused path (an output activation other than sigmoid): p can be 0 or 1.
    # The float64 bound; see eps_for for other dtypes.
    eps = 1e-15

    def eps_for(self, dtype):
        """The clipping bound for probabilities of `dtype`: p is clipped to [eps, 1 - eps].

        max(self.eps, np.finfo(dtype).eps): 1e-15 in float64, 2^-23 (1.2e-7) in float32.
        Why: 1 - eps must stay below 1, or ln(1 - p) is -inf and dL/dp divides by 0 at p = 1.
        The float32 numbers next to 1 are 2^-24 apart, so 1 - 1e-15 rounds to 1.0 there, while
        1 - 2^-23 is exact. The same eps at both ends keeps the loss symmetric: p = 0 against a
        target 1 costs what p = 1 against a target 0 does.
        """
        return max(self.eps, float(np.finfo(dtype).eps))

    def logit_definition(self, z, y, math):
        s = 1.0 - 2.0 * y
        u = s * z
        e = math.exp(-math.abs(u))
        softplus = math.maximum(u, 0.0) + math.log1p(e)
        # One exponential serves both: a second, exp(u - softplus), would cost as much again.
        return softplus, s * logistic(u, e, math)

    def _definition(self, y_pred):
        # The clipping bound depends on the dtype the probabilities are computed in.
        eps = self.eps_for(np.result_type(np.asarray(y_pred).dtype, np.float32))
        return functools.partial(self.definition, eps=eps)

    def definition(self, p, y, math, eps=1e-15):
        p = math.minimum(math.maximum(p, eps), 1.0 - eps)
        return (-(y * math.log(p) + (1.0 - y) * math.log1p(-p)), (p - y) / (p * (1.0 - p)))

    def prepare_targets(self, y, n_outputs):
        bad = (y != 0) & (y != 1)
        if bad.any():
            raise ValueError(
                f"Y must hold labels 0 or 1 for loss {self.name!r}; "
                f"found {np.unique(y[bad])[:5].tolist()}"
            )
        return y


@register("categorical_crossentropy")
class CategoricalCrossentropy(Loss):
    """L = -mean over samples of sum_k y_k ln p_k, for one-hot (or probability) targets.

    From logits z (p = softmax(z) over the units axis): L = mean(logsumexp(z) - sum_k y_k z_k) and
    dL/dz = (p - y) / m. Targets of shape (1, m) holding class indices are one-hot encoded. Not
    elementwise (it sums over the units), so the compiled kernel does not cover it.
    """

    output_activation = "softmax"
    # The plain path clips p to [eps, 1]: no 1 - p is taken, and 1e-15 is a normal float32
    # (above finfo(float32).tiny, 1.2e-38), so ln p and -y / p stay finite in either dtype,
    # unlike binary cross-entropy's 1 - eps (see BinaryCrossentropy.eps_for).
    eps = 1e-15

    def count(self, y):
        """The cost is a mean over samples only: the outputs' terms add up to one sample's."""
        return y.shape[-1]

    def logit_definition(self, z, y, math):
        # logsumexp(z) - y.z, written with the shift s = z - max(z): y (ln(total) - s) summed
        # over the units is ln(total) - y.s, as y sums to 1; exp(s) never overflows.
        shifted = z - math.column_max(z)
        e = math.exp(shifted)
        total = math.column_sum(e)
        return y * (math.log(total) - shifted), e / total - y

    def definition(self, p, y, math):
        p = math.minimum(math.maximum(p, self.eps), 1.0)
        return -(y * math.log(p)), -y / p

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


@register("mse", "mean_squared_error")
class MeanSquaredError(Loss):
    """L = mean((y_pred - y)^2) over samples and outputs, as Keras's mse.

    dL/dy_pred = 2 (y_pred - y) / count.
    """

    def definition(self, y_pred, y, math):
        d = y_pred - y
        return d * d, 2.0 * d

    def training_step(self, y_true, output, grad_output, from_logits):
        if from_logits:
            raise ValueError(
                f"loss {self.name!r} has no fused path with an output activation: "
                f"from_logits must be False, got {from_logits!r}"
            )
        return super().training_step(y_true, output, grad_output, from_logits)
