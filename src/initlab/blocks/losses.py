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

# np.dot without its Python-level dispatch, and the cheapest bound call for a product
from initlab.blocks.activations import ignoring_underflow
from initlab.blocks.layers import _bound_product, _dot

_copyto = getattr(np.copyto, "_implementation", np.copyto)  # likewise

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
        This default runs the plain methods, which allocate every step; each loss of this module
        overrides it with NumPy calls bound to buffers allocated here, once.
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


def _bound_cost(values, scale, weights=None):
    """cost() -> scale * sum over the last two axes of values (times weights): one per model.

    values : the caller's buffer, which the stacked case may overwrite (it is read last).
    weights : None, or a C-ordered buffer of the shape of values.
    For one model this is a single BLAS dot product (with a vector of `scale` when there are no
    weights), which costs less than a reduction (0.6 against 1 µs for the post's batch); a
    stacked cost is one reduction.
    The cost returned is a new scalar or array every step: callers keep it.
    """
    call = functools.partial
    flat = values.ndim == 2 and values.flags.c_contiguous  # reshape(-1) is then a view
    if flat and (weights is None or (weights.shape == values.shape
                                     and weights.flags.c_contiguous)):
        if weights is None:
            return call(_dot, values.reshape(-1), np.full(values.size, scale, values.dtype))
        dot = call(_dot, values.reshape(-1), weights.reshape(-1))
        return dot if scale == 1 else lambda: dot() * scale
    if weights is None:
        return call(_scaled_sum, values, _SUM_AXES, scale)
    multiply = call(np.multiply, values, weights, values)

    def cost():
        multiply()
        return np.add.reduce(values, _SUM_AXES) * scale

    return cost


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


class BinaryCrossentropy(Loss):
    """L = -mean(y ln p + (1 - y) ln(1 - p)), over samples and outputs (as Keras does).

    From logits z (p = sigmoid(z)): L = mean(softplus(z) - y z), softplus(z) = logaddexp(0, z),
    and dL/dz = (p - y) / count. Unlike ln(p + 1e-5), this never caps the loss or its gradient.
    """

    name = "crossentropy"
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
        target 1 costs what p = 1 against a target 0 does, as with 1e-15 in float64 (where
        finfo's 2.2e-16 is smaller, so float64 results are unchanged).
        """
        return max(self.eps, float(np.finfo(dtype).eps))

    def _clip(self, y_pred):
        p = np.asarray(y_pred)
        eps = self.eps_for(np.result_type(p, 1.0))  # the dtype np.clip computes in
        return np.clip(p, eps, 1 - eps)

    def __call__(self, y_true, y_pred):
        p = self._clip(y_pred)
        losses = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p))
        return losses.sum(axis=_SUM_AXES) / _count(y_true)

    def gradient(self, y_true, y_pred):
        p = self._clip(y_pred)
        return (p - y_true) / (p * (1 - p)) / _count(y_true)

    def from_logits(self, y_true, z, out=None):
        with np.errstate(under="ignore"):  # exp(-800) is 0, the right answer: ignoring_underflow
            softplus = np.logaddexp(0.0, z, out=out)
        cost = (softplus.sum(axis=_SUM_AXES) - (z * y_true).sum(axis=_SUM_AXES)) / _count(y_true)
        # sigmoid(z) = exp(z - softplus(z)); the exponent is <= 0, so this never overflows.
        grad = np.subtract(z, softplus, out=softplus)
        with np.errstate(under="ignore"):
            np.exp(grad, out=grad)
        grad -= y_true
        grad *= 1.0 / _count(y_true)
        return cost, grad

    def training_step(self, y_true, output, grad_output, from_logits):
        """Both paths over fixed buffers; the fused one gets from_logits's cost and dL/dz in fewer
        calls.

        Targets are 0 or 1 (prepare_targets checks), so with s = 1 - 2y (+1 or -1) and u = s z,
        each sample's loss softplus(z) - y z is softplus(u), and dL/dz = s sigmoid(u) / count.
        softplus(u) = max(u, 0) + log1p(exp(-|u|)) is exact and never overflows (exp sees only
        values <= 0); sigmoid(u) = exp(u - softplus(u)), an exponent <= 0 too. Every call but
        log1p runs a SIMD loop; np.logaddexp would run a scalar one, about 12 ns an element here.
        """
        if not from_logits:
            return self._plain_training_step(y_true, output, grad_output)
        (z, copy_z), grad = _c_ordered(output), grad_output
        shape = np.broadcast_shapes(z.shape, y_true.shape)
        # Full-shape operands throughout: see _full_targets for why nothing broadcasts.
        sign, sign_over_count, u, softplus, scratch = (np.empty(shape, z.dtype) for _ in range(5))
        zeros = np.zeros(shape, z.dtype)
        scale = 1.0 / _count(y_true)
        call = functools.partial
        exp = ignoring_underflow(np.exp)  # exp(-|u|) and sigmoid(u) are 0 for u < -745
        targets, copy_targets = _full_targets(y_true, shape)

        def load():
            copy_targets()
            np.multiply(targets, -2.0, sign)
            np.add(sign, 1.0, sign)
            np.multiply(sign, scale, sign_over_count)

        ops = copy_z + (
            call(np.multiply, z, sign, u),                   # u = s z
            call(np.abs, u, scratch),                        # log1p(exp(-|u|))
            call(np.negative, scratch, scratch),
            call(exp, scratch, scratch),
            call(np.log1p, scratch, scratch),
            call(np.maximum, u, zeros, out=softplus),        # softplus(u) = max(u, 0) + that
            call(np.add, softplus, scratch, softplus),
            call(np.subtract, u, softplus, grad),            # sigmoid(u) = exp(u - softplus(u))
            call(exp, grad, grad),
            call(np.multiply, grad, sign_over_count, grad),  # dL/dz = s sigmoid(u) / count
        )
        return _run_all(ops, _bound_cost(softplus, scale)), load

    def _plain_training_step(self, y_true, p_out, grad):
        """__call__ and gradient over fixed buffers, with the reference's operations.

        With p clipped to [eps, 1 - eps] (eps_for the buffers' dtype):
        cost = -sum(y (ln p - ln(1 - p)) + ln(1 - p)) / count (the reference's
        y ln p + (1 - y) ln(1 - p), regrouped to reuse one buffer), and
        dL/dp = (p - y) / (p (1 - p)) / count, bit for bit the reference's gradient.
        """
        shape, dtype = grad.shape, grad.dtype
        eps = self.eps_for(dtype)
        p, log_1mp, one_minus_p = (np.empty(shape, dtype) for _ in range(3))
        count = float(_count(y_true))
        call = functools.partial
        targets, load = _full_targets(y_true, shape)
        p_out, copy_p = _c_ordered(p_out)
        ops = copy_p + (
            call(np.maximum, p_out, _constant(eps, dtype), out=p),
            call(np.minimum, p, _constant(1 - eps, dtype), out=p),
            call(np.subtract, p, targets, grad),
            call(np.subtract, _constant(1.0, dtype), p, one_minus_p),
            call(np.negative, p, log_1mp),
            call(np.log1p, log_1mp, log_1mp),
            call(np.multiply, one_minus_p, p, one_minus_p),
            call(np.divide, grad, one_minus_p, grad),
            call(np.divide, grad, _constant(count, dtype), grad),
            call(np.log, p, p),                          # p is not needed any more: ln p
            call(np.subtract, p, log_1mp, p),
            call(np.multiply, p, targets, p),
            call(np.add, p, log_1mp, p),
        )
        return _run_all(ops, _bound_cost(p, -1.0 / count)), load

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
    # The plain path clips p to [eps, 1]: no 1 - p is taken, and 1e-15 is a normal float32
    # (above finfo(float32).tiny, 1.2e-38), so ln p and -y / p stay finite in either dtype,
    # unlike binary cross-entropy's 1 - eps (see BinaryCrossentropy.eps_for).
    eps = 1e-15

    def __call__(self, y_true, y_pred):
        p = np.clip(y_pred, self.eps, 1.0)
        return -(y_true * np.log(p)).sum(axis=_SUM_AXES) / y_true.shape[-1]

    def gradient(self, y_true, y_pred):
        return -y_true / np.clip(y_pred, self.eps, 1.0) / y_true.shape[-1]

    def from_logits(self, y_true, z, out=None):
        m = y_true.shape[-1]
        shifted = np.subtract(z, z.max(axis=-2, keepdims=True), out=out)
        with np.errstate(under="ignore"):  # a class far below the best has p = 0
            exp = np.exp(shifted)
        total = exp.sum(axis=-2, keepdims=True)
        # logsumexp(z) - y.z, written with the shift: ln(total) - y.(z - max), as y sums to 1.
        cost = (np.log(total).sum(axis=_SUM_AXES) - (shifted * y_true).sum(axis=_SUM_AXES)) / m
        grad = np.divide(exp, total, out=shifted)
        grad -= y_true
        grad *= 1.0 / m
        return cost, grad

    def training_step(self, y_true, output, grad_output, from_logits):
        """from_logits, or __call__ and gradient, over fixed buffers (see Loss.training_step).

        Fused, from logits z: from_logits's formulas. With s = z - max(z) and e = exp(s), the
        column sums of e come from one product with a matrix of ones, which gives them in every
        row: a BLAS call that costs less than a reduction, and a divide by a full array runs a
        SIMD loop where one broadcasting a row does not (about 1 against 2 µs for 10 x 32).
        cost = (sum ln(total) - sum(y s)) / m, a dot product each for one model.
        Plain, from probabilities: p = clip(output, eps, 1), cost = -sum(y ln p) / m and
        dL/dp = -y / p / m (bit for bit the reference's).
        Sparse labels are one-hot by now (prepare_targets), so y is (..., n_outputs, m).
        """
        grad, dtype = grad_output, grad_output.dtype
        m = y_true.shape[-1]
        call = functools.partial
        targets, copy_targets = _full_targets(y_true, grad.shape)
        if from_logits:
            z, copy_z = _c_ordered(output)
            n_outputs = grad.shape[-2]
            columns = grad.shape[:-2] + (1, m)
            shifted, totals = np.empty(grad.shape, dtype), np.empty(grad.shape, dtype)
            peak, log_total = np.empty(columns, dtype), np.empty(columns, dtype)
            ops = copy_z + (
                call(np.maximum.reduce, z, -2, None, peak, True),
                call(_copyto, shifted, peak),                 # (a subtract would broadcast)
                call(np.subtract, z, shifted, shifted),       # exp(shifted) never overflows
                call(ignoring_underflow(np.exp), shifted, grad),  # p = 0 far below the best
                _bound_product(np.ones((n_outputs, n_outputs), dtype), grad, totals),
                call(np.divide, grad, totals, grad),          # p = softmax(z)
                call(np.subtract, grad, targets, grad),
                call(np.multiply, grad, _constant(1.0 / m, dtype), grad),
                call(np.log, totals[..., :1, :], log_total),
            )
            log_totals = _bound_cost(log_total, 1.0 / m)
            target_logits = _bound_cost(shifted, 1.0 / m, targets)

            def cost():
                return log_totals() - target_logits()

            return _run_all(ops, cost), copy_targets
        # The plain path weighs ln p by -y, which load() writes once a batch.
        log_p, negative_targets = np.empty(grad.shape, dtype), np.empty(grad.shape, dtype)
        output, copy_output = _c_ordered(output)
        ops = copy_output + (
            call(np.maximum, output, _constant(self.eps, dtype), out=log_p),
            call(np.minimum, log_p, _constant(1.0, dtype), out=log_p),   # p, clipped
            call(np.divide, negative_targets, log_p, grad),
            call(np.divide, grad, _constant(m, dtype), grad),
            call(np.log, log_p, log_p),
        )
        negate_targets = call(np.negative, targets, negative_targets)

        def load():
            copy_targets()
            negate_targets()

        return _run_all(ops, _bound_cost(log_p, 1.0 / m, negative_targets)), load

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

    def training_step(self, y_true, output, grad_output, from_logits):
        """__call__ and gradient over fixed buffers: d = y_pred - y, dL/dy_pred = d (2 / count)
        (bit for bit the reference's), cost = d.d / count (one dot product for one model)."""
        if from_logits:
            raise ValueError(f"loss {self.name!r} has no fused path with an output activation: "
                             f"from_logits must be False, got {from_logits!r}")
        dtype = grad_output.dtype
        diff = np.empty(grad_output.shape, dtype)
        count = _count(y_true)
        call = functools.partial
        targets, load = _full_targets(y_true, diff.shape)
        output, copy_output = _c_ordered(output)
        ops = copy_output + (
            call(np.subtract, output, targets, diff),
            call(np.multiply, diff, _constant(2.0 / count, dtype), grad_output),
        )
        return _run_all(ops, _bound_cost(diff, 1.0 / count, diff)), load


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
    key = identifier.lower() if isinstance(identifier, str) else None
    if key not in LOSSES:
        raise ValueError(f"loss {identifier!r} is not known; expected one of {sorted(LOSSES)}")
    return LOSSES[key]()
