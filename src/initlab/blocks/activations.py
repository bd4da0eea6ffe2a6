"""Activation functions: each defined once, with every fact the rest of initlab asks of it.

An activation says what it is in one class:

    function(z, math)        a = f(z), elementwise, written with `math` (see expressions.py)
    derivative(z, a, math)   f'(z), given a = f(z) too (often the cheaper form)
    gain                     the gain PyTorch's calculate_gain gives it, or None (it has none)
    dead(z, a, math)         where a unit passes back no gradient at all (rectifiers), or None
    asymptotes               the values it saturates towards (tanh: -1 and 1), possibly empty
    initializer              the scheme its papers pair it with (selu: lecun_normal)

Everything else derives from those: `forward` and `backward`, the reference path, evaluate them
with NumPy; `training_steps`, the training loop's allocation-free path, binds the same
definition to buffers; the compiled kernel (initlab.fast.jit) writes it as scalar code; the
diagnostics count dead and saturated units by `dead` and `asymptotes`; the theory integrates
`function` and `derivative` against a Gaussian. An activation that is not elementwise (softmax)
defines `vjp` (dL/dz from dL/da) instead of `derivative`, and may sum or take the maximum over
the units (`math.column_sum`, `math.column_max`); the paths that need an elementwise definition
(the compiled kernel) say they cannot serve it.

Arrays are laid out as (..., units, m): units on the second-to-last axis, samples on the last,
and any leading axes (an ensemble of models) broadcast through untouched.

A new activation, from a user's code, is one class (see initlab.registry):

    >>> import numpy as np
    >>> relu = get("relu")
    >>> relu.forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
"""

import functools
import math

import numpy as np

from initlab import checks
from initlab.blocks import expressions
from initlab.registry import Block, Registry

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Activation(Block):
    """Base contract; see the module docstring. Subclasses set the facts and the definition."""

    gain = None
    dead = None
    asymptotes = ()
    initializer = None

    def function(self, z, math):
        raise NotImplementedError

    def derivative(self, z, a, math):
        raise NotImplementedError

    def vjp(self, z, a, grad, math):
        """dL/dz from dL/da = grad: grad * f'(z) for an elementwise activation (f' = 1 leaves
        grad as it is); an activation that is not elementwise (softmax) defines this instead of
        `derivative`."""
        derivative = self.derivative(z, a, math)
        if isinstance(derivative, (int, float)) and derivative == 1:
            return grad
        return grad * derivative

    @property
    def elementwise(self):
        """Whether f acts on each entry alone (no sum or maximum over the units)."""
        return expressions.trace(self.function, 1).elementwise

    @property
    def follows_definition(self):
        """Whether forward and backward are this class's elementwise definition evaluated, so
        that the other paths may derive from the definition. A subclass that overrides forward
        or backward (rather than function and derivative) computes something the definition
        does not say: the training loop then runs its forward and backward as they are, and
        the compiled kernel refuses it."""
        cls = type(self)
        return cls.forward is Activation.forward and cls.backward is Activation.backward

    # --- the reference path: the definition evaluated with NumPy -------------------------------
    def forward(self, z, out=None):
        """a = f(z); into `out` if given."""
        a = expressions.evaluate(self.function, z)
        if out is None:
            return a if isinstance(a, np.ndarray) or np.ndim(a) == 0 else np.asarray(a)
        np.copyto(out, a)
        return out

    def backward(self, z, a, grad_a, out=None):
        """dL/dz from dL/da (`vjp`), as a new array or into `out` (which may be grad_a itself)."""
        grad_z = expressions.evaluate(self.vjp, z, a, grad_a)
        if out is None:
            return grad_z if grad_z is not grad_a else grad_a.copy()
        np.copyto(out, grad_z)
        return out

    def is_dead(self, z, a):
        """Boolean (..., units, m): where the unit passes back no gradient, or None if it never
        stops doing so (no `dead` definition)."""
        return None if self.dead is None else expressions.evaluate(self.dead, z, a)

    # --- the training loop's path: the definition bound to buffers ---------------------------
    def training_steps(self, z, a, grad):
        """Bind forward (z -> a) and backward (grad holds dL/da, then dL/dz, in place) to fixed
        buffers. Returns (forward_ops, backward_ops): functions of no arguments, run in order."""
        if not self.follows_definition:
            return (
                [functools.partial(self.forward, z, out=a)],
                [functools.partial(self.backward, z, a, grad, out=grad)],
            )
        constant_shape = z.shape[-2:]  # one block of constants serves every stacked model
        forward, _, _ = expressions.bind(
            self.forward_graph(), [z], out=a, constant_shape=constant_shape
        )
        backward, _, _ = expressions.bind(
            self.backward_graph(), [z, a, grad], out=grad, constant_shape=constant_shape
        )
        return forward, backward

    def forward_graph(self):
        return expressions.trace(self.function, 1)

    def backward_graph(self):
        return expressions.trace(self.vjp, 3)


ACTIVATIONS = Registry("activation", Activation, default="linear")
register = ACTIVATIONS.register
get = ACTIVATIONS.get


@register("linear", "identity")
class Linear(Activation):
    """f(z) = z."""

    gain = 1.0
    initializer = "lecun_normal"

    def function(self, z, math):
        return z

    def derivative(self, z, a, math):
        return 1


@register("relu")
class ReLU(Activation):
    """f(z) = max(z, 0); f'(z) = 1 where z > 0, else 0 (PyTorch's choice at z = 0).

    The derivative is read off a: since a >= 0, ceil(min(a, 1)) is exactly 1 where a > 0 and 0
    where a = 0, and a NaN stays NaN (a diverged unit must not pass back a clean 0). Two SIMD
    calls, cheaper than a comparison whose boolean the multiply would convert on the fly.
    Reference: Nair & Hinton 2010; He et al. 2015 for its gain sqrt(2).
    """

    gain = math.sqrt(2.0)
    initializer = "he_normal"

    def function(self, z, math):
        return math.maximum(z, 0.0)

    def derivative(self, z, a, math):
        return math.ceil(math.minimum(a, 1.0))

    def dead(self, z, a, math):
        return a <= 0.0


@register("leaky_relu")
class LeakyReLU(Activation):
    """f(z) = z where z > 0, else alpha * z. Keras's default slope is 0.3, PyTorch's 0.01.

    A unit is dead where z <= 0: it still passes back alpha of the gradient, but it no longer
    tells its inputs apart by anything but that small slope (Maas et al. 2013).
    """

    initializer = "he_normal"
    config_keys = ("alpha",)

    def __init__(self, alpha=0.01):
        self.alpha = checks.number("alpha", alpha, minimum=0)

    @property
    def gain(self):
        return math.sqrt(2.0 / (1 + self.alpha**2))

    def function(self, z, math):
        return math.where(z > 0.0, z, self.alpha * z)

    def derivative(self, z, a, math):
        # + 0 z: a NaN z gives a NaN slope (a diverged unit must not pass back a clean one);
        # for finite z it adds an exact 0.
        return math.where(z > 0.0, 1.0, self.alpha) + 0.0 * z

    def dead(self, z, a, math):
        return z <= 0.0


def logistic(z, e, math):
    """1 / (1 + exp(-z)) from e = exp(-|z|): 1 / (1 + e) for z >= 0 and e / (1 + e) below. The
    fused cross-entropy has e already, for its softplus."""
    return math.where(z >= 0.0, 1.0, e) / (1.0 + e)


@register("sigmoid")
class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)); f'(z) = f(z) (1 - f(z)).

    Computed from e = exp(-|z|), which never overflows (exp(-z) alone does for z < -709): f(z) is
    1 / (1 + e) for z >= 0 and e / (1 + e) below: within 2 ulps of the exact value in float64
    (tests/test_activations.py). exp(-logaddexp(0, -z)) would carry the rounding of logaddexp's
    large value into the exponent: 16 ulps at z = -30.
    """

    gain = 1.0
    asymptotes = (0.0, 1.0)
    initializer = "glorot_uniform"

    def function(self, z, math):
        return logistic(z, math.exp(-math.abs(z)), math)

    def derivative(self, z, a, math):
        return a * (1.0 - a)


@register("tanh")
class Tanh(Activation):
    """f(z) = tanh(z); f'(z) = 1 - tanh(z)^2."""

    gain = 5.0 / 3
    asymptotes = (-1.0, 1.0)
    initializer = "glorot_uniform"

    def function(self, z, math):
        return math.tanh(z)

    def derivative(self, z, a, math):
        return 1.0 - a * a


@register("gelu")
class GELU(Activation):
    """f(z) = z Φ(z) = z (1 + erf(z / √2)) / 2, the exact form PyTorch's GELU computes;
    f'(z) = Φ(z) + z φ(z), φ the standard normal density.

    Reference: Hendrycks & Gimpel 2016, "Gaussian Error Linear Units", arXiv:1606.08415.
    """

    initializer = "he_normal"

    def function(self, z, math):
        return 0.5 * z * (1.0 + math.erf(z * SQRT_HALF))

    def derivative(self, z, a, math):
        return 0.5 * (1.0 + math.erf(z * SQRT_HALF)) + z * INV_SQRT_2PI * math.exp(-0.5 * z * z)


@register("silu", "swish")
class SiLU(Activation):
    """f(z) = z sigmoid(z); f'(z) = s (1 + z (1 - s)), s = sigmoid(z).

    Reference: Elfwing et al. 2017 (SiLU); Ramachandran et al. 2017 (Swish, its beta = 1).
    """

    initializer = "he_normal"

    def function(self, z, math):
        return z * math.exp(-math.logaddexp(0.0, -z))

    def derivative(self, z, a, math):
        s = math.exp(-math.logaddexp(0.0, -z))
        return s * (1.0 + z * (1.0 - s))


@register("softplus")
class Softplus(Activation):
    """f(z) = ln(1 + exp(z)) = logaddexp(0, z); f'(z) = sigmoid(z) = exp(z - f(z)), an exponent
    <= 0, so it never overflows."""

    asymptotes = (0.0,)
    initializer = "he_normal"

    def function(self, z, math):
        return math.logaddexp(0.0, z)

    def derivative(self, z, a, math):
        return math.exp(z - a)


@register("elu")
class ELU(Activation):
    """f(z) = z where z > 0, else alpha (exp(z) - 1); f'(z) = 1, else f(z) + alpha.

    expm1 sees min(z, 0) only, so the branch `where` discards cannot overflow.
    Reference: Clevert et al. 2015, arXiv:1511.07289.
    """

    initializer = "he_normal"
    config_keys = ("alpha",)

    def __init__(self, alpha=1.0):
        self.alpha = checks.positive("alpha", alpha)

    @property
    def asymptotes(self):
        return (-self.alpha,)

    def function(self, z, math):
        return math.where(z > 0.0, z, self.alpha * math.expm1(math.minimum(z, 0.0)))

    def derivative(self, z, a, math):
        return math.where(z > 0.0, 1.0, a + self.alpha)


@register("selu")
class SELU(Activation):
    """f(z) = λ z where z > 0, else λ α (exp(z) - 1), with the self-normalising constants
    α = 1.6732632423543772, λ = 1.0507009873554805; f'(z) = λ, else f(z) + λ α.

    Its initialisation is lecun_normal (variance 1 / fan_in); its gain is PyTorch's 3/4, an
    empirical value for other schemes (pytorch/pytorch#50664).
    Reference: Klambauer et al. 2017, "Self-Normalizing Neural Networks", arXiv:1706.02515.
    """

    ALPHA = 1.6732632423543772
    SCALE = 1.0507009873554805
    gain = 3.0 / 4
    asymptotes = (-ALPHA * SCALE,)
    initializer = "lecun_normal"

    def function(self, z, math):
        return math.where(
            z > 0.0, self.SCALE * z, (self.SCALE * self.ALPHA) * math.expm1(math.minimum(z, 0.0))
        )

    def derivative(self, z, a, math):
        return math.where(z > 0.0, self.SCALE, a + self.SCALE * self.ALPHA)


@register("softmax")
class Softmax(Activation):
    """f(z)_i = exp(z_i) / sum_j exp(z_j), over the units axis (-2): not elementwise.

    Shifting by the column maximum keeps exp from overflowing; softmax is shift-invariant. Its
    Jacobian is diag(a) - a aᵀ, so dL/dz = a * (dL/da - sum_i(dL/da_i a_i)). Paired with
    categorical cross-entropy the model skips this and uses the fused gradient a - y instead.
    """

    initializer = "glorot_uniform"

    def function(self, z, math):
        e = math.exp(z - math.column_max(z))
        return e / math.column_sum(e)

    def vjp(self, z, a, grad, math):
        return a * (grad - math.column_sum(grad * a))
