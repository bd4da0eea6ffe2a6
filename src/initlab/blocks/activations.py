"""Activation functions: a forward map and its backward step, side by side.

Arrays are laid out as (..., units, m): units along the second-to-last axis, samples along the last,
and any leading axes (an ensemble of models) broadcast through untouched.

Each activation has
    forward(z, out=None)                    -> a = f(z)
    backward(z, a, grad_a, out=None)        -> grad_z = grad_a * f'(z)   (softmax: Jacobian product)
    training_steps(z, a, grad)              -> (forward_ops, backward_ops) bound to these buffers
`out` lets a caller reuse its buffers; `backward` may write into `grad_a` itself (out=grad_a),
since the model never needs dL/da once it has dL/dz. `training_steps` is what the training loop
runs every epoch: lists of functions of no arguments, bound to the buffers. By default they call
`forward` and `backward`; an activation may specialise them with scratch buffers of its own.

    >>> import numpy as np
    >>> relu = get("relu")
    >>> relu.forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
"""

import functools

import numpy as np

from initlab import checks


def ignoring_underflow(function):
    """`function` run under np.errstate(under="ignore"), for a call whose underflow is harmless.

    exp of a very negative number rounds to 0 (sigmoid(-800), a softmax's losing class): the
    right answer, not an error, even for a caller who runs under np.errstate(all="raise"). The
    choice is made when the call is bound: where underflow is ignored already (NumPy's default),
    `function` itself comes back, so the training loop pays nothing for it.
    """
    if np.geterr()["under"] == "ignore":
        return function

    def quiet(*args, **kwargs):
        with np.errstate(under="ignore"):
            return function(*args, **kwargs)

    return quiet


class Activation:
    """Base contract. Subclasses set `name` and implement `forward` and `backward`."""

    name = "activation"

    def forward(self, z, out=None):
        raise NotImplementedError

    def backward(self, z, a, grad_a, out=None):
        raise NotImplementedError

    def training_steps(self, z, a, grad):
        """Bind forward (z -> a) and backward (grad holds dL/da, then dL/dz) to fixed buffers.

        Returns (forward_ops, backward_ops): lists of functions of no arguments, run in order.
        """
        return ([functools.partial(self.forward, z, out=a)],
                [functools.partial(self.backward, z, a, grad, out=grad)])

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}()"


class Linear(Activation):
    """f(z) = z."""

    name = "linear"

    def forward(self, z, out=None):
        if out is None:
            return z
        np.copyto(out, z)
        return out

    def backward(self, z, a, grad_a, out=None):
        if out is None or out is grad_a:
            return grad_a
        np.copyto(out, grad_a)
        return out


class ReLU(Activation):
    """f(z) = max(z, 0); f'(z) = 1 where z > 0, else 0 (PyTorch's choice at z = 0)."""

    name = "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0.0, out=out)

    def backward(self, z, a, grad_a, out=None):
        # a > 0 exactly where z > 0, and `a` is what the layer keeps anyway.
        return np.multiply(grad_a, a > 0, out=out)

    def training_steps(self, z, a, grad):
        # The same two formulas over scratch buffers allocated once.
        # - Against an array of zeros np.maximum runs its SIMD loop; against the scalar 0 (a
        #   stride-0 operand) it does not, and takes about twice as long. One (units, m) block of
        #   zeros (and of ones) serves every stacked model.
        # - The mask is a float: since a >= 0, ceil(min(a, 1)) is exactly 1 where a > 0 and 0
        #   where a = 0 (a NaN stays NaN). Two SIMD calls and a float multiply cost about 0.5 µs
        #   less here than a bool mask, whose multiply converts it to float on the fly.
        zeros, ones = np.zeros(z.shape[-2:], z.dtype), np.ones(z.shape[-2:], z.dtype)
        mask = np.empty(a.shape, a.dtype)
        forward = [functools.partial(np.maximum, z, zeros, out=a)]
        backward = [functools.partial(np.minimum, a, ones, out=mask),
                    functools.partial(np.ceil, mask, mask),
                    functools.partial(np.multiply, grad, mask, grad)]
        return forward, backward


class LeakyReLU(Activation):
    """f(z) = z where z > 0, else alpha * z. Keras's default slope is 0.3, PyTorch's 0.01."""

    name = "leaky_relu"

    def __init__(self, alpha=0.01):
        self.alpha = checks.number("alpha", alpha, minimum=0)

    def _slope(self, z):
        return np.where(z > 0, 1.0, self.alpha).astype(z.dtype, copy=False)

    def forward(self, z, out=None):
        return np.multiply(z, self._slope(z), out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, self._slope(z), out=out)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)); f'(z) = f(z) (1 - f(z)).

    Computed as exp(-logaddexp(0, -z)), which never overflows: exp(-z) alone does for z < -709.
    """

    name = "sigmoid"

    def forward(self, z, out=None):
        with np.errstate(under="ignore"):  # f(z) is 0 for z < -745: see ignoring_underflow
            return self._forward(z, out)

    def _forward(self, z, out=None):
        out = np.logaddexp(0.0, -z, out=out)
        np.negative(out, out=out)
        return np.exp(out, out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, a * (1.0 - a), out=out)

    def training_steps(self, z, a, grad):
        _, backward_ops = super().training_steps(z, a, grad)
        return [ignoring_underflow(functools.partial(self._forward, z, out=a))], backward_ops


class Tanh(Activation):
    """f(z) = tanh(z); f'(z) = 1 - tanh(z)^2."""

    name = "tanh"

    def forward(self, z, out=None):
        return np.tanh(z, out=out)

    def backward(self, z, a, grad_a, out=None):
        return np.multiply(grad_a, 1.0 - a * a, out=out)


class Softmax(Activation):
    """f(z)_i = exp(z_i) / sum_j exp(z_j), over the units axis (-2).

    Its Jacobian is diag(a) - a aᵀ, so grad_z = a * (grad_a - sum_i(grad_a_i a_i)). Paired with
    categorical cross-entropy the model skips this and uses the fused gradient a - y instead.
    """

    name = "softmax"

    def forward(self, z, out=None):
        with np.errstate(under="ignore"):  # a unit far below the best has 0: ignoring_underflow
            return self._forward(z, out)

    def _forward(self, z, out=None):
        # Shifting by the column maximum keeps exp from overflowing; softmax is shift-invariant.
        out = np.subtract(z, z.max(axis=-2, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=-2, keepdims=True)
        return out

    def training_steps(self, z, a, grad):
        _, backward_ops = super().training_steps(z, a, grad)
        return [ignoring_underflow(functools.partial(self._forward, z, out=a))], backward_ops

    def backward(self, z, a, grad_a, out=None):
        dot = (grad_a * a).sum(axis=-2, keepdims=True)
        return np.multiply(a, grad_a - dot, out=out)


ACTIVATIONS = {
    "linear": Linear,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def get(identifier):
    """Return an Activation from a registered name, an Activation instance, or None (linear)."""
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        name = config.pop("name", None)
        return _construct(_by_name(name, "activation"), config, "activation")
    if isinstance(identifier, str):
        return _by_name(identifier, "activation")()
    raise ValueError(
        f"activation must be a name, an Activation or None, got {identifier!r} "
        f"of type {type(identifier).__name__}"
    )


def _construct(cls, config, argument):
    """cls(**config), with parameters it does not take reported as a ValueError."""
    try:
        return cls(**config)
    except TypeError as error:  # an unexpected or missing keyword
        raise ValueError(f"{argument} {cls.__name__}: {error}") from None


def _by_name(name, argument):
    key = name.lower() if isinstance(name, str) else None
    if key not in ACTIVATIONS:
        raise ValueError(
            f"{argument} {name!r} is not known; expected one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]
