"""Optimizers: one `step(params, grads)` that updates the parameters in place.

The model keeps every parameter of every layer in one flat vector (the layers' weights and biases
are views into it), and every gradient in another. So an optimizer's step is a handful of
whole-vector operations, whatever the number of layers: the update is never a Python loop.

    >>> import numpy as np
    >>> params, grads = np.ones(3), np.full(3, 0.5)
    >>> SGD(learning_rate=0.1).step(params, grads)
    >>> params
    array([0.95, 0.95, 0.95])
"""

import functools

import numpy as np

from initlab import checks
from initlab.registry import Block, Registry


class Optimizer(Block):
    """Base contract: `step` validates once, allocates state lazily, then calls `_step`."""

    # How many arrays at the head of the state carry over from one step to the next (see
    # `moments`); the rest is scratch.
    n_moments = 0
    config_keys = ("learning_rate",)

    def __init__(self, learning_rate=0.01):
        self.learning_rate = checks.positive("learning_rate", learning_rate)
        self._state = None

    def step(self, params, grads):
        state = self._state
        if state is None or state[0].shape != params.shape:
            state = self._state = self._init_state(params)
        self._step(params, grads, *state)

    def training_step(self, params, grads):
        """The update bound to the model's flat vectors: a function of no arguments that the
        training loop calls every step. By default it calls `step`."""
        return functools.partial(self.step, params, grads)

    def _init_state(self, params):
        # A scratch buffer for lr * grad, so that the update allocates nothing.
        return (np.empty_like(params),)

    def _step(self, params, grads, *state):
        raise NotImplementedError

    def moments(self, params):
        """The arrays carried from one step to the next for the flat vector `params` (Momentum's
        velocity; Adam's m and v), each shaped like it: a tuple, empty for plain SGD.

        Made fresh (zeros, as before a first step) if there are none yet; writing into them
        changes the state, which is how an Ensemble moves state between models and its stacks.
        """
        if self._state is None or self._state[0].shape != params.shape:
            self._state = self._init_state(params)
        return self._state[: self.n_moments]

    def has_state(self, params):
        """Whether steps on the flat vector `params` have left state to carry on from (what a
        saved model writes). Unlike `moments`, this never makes any."""
        return self._state is not None and self._state[0].shape == params.shape

    def reset(self):
        """Forget moments and step counts, as for a freshly built model."""
        self._state = None


class SGD(Optimizer):
    """Plain gradient descent, as in the post: params -= learning_rate * grads."""

    def _step(self, params, grads, scratch):
        np.multiply(grads, self.learning_rate, out=scratch)
        params -= scratch

    def training_step(self, params, grads):
        # The same two operations with one Python call instead of three (a third of the post's
        # update time). The rate is read at every step, so a callback may change it.
        if self._state is None or self._state[0].shape != params.shape:
            self._state = self._init_state(params)
        scratch = self._state[0]
        multiply, subtract = np.multiply, np.subtract

        def update():
            multiply(grads, self.learning_rate, scratch)
            subtract(params, scratch, params)

        return update


class Momentum(Optimizer):
    """Heavy-ball momentum (PyTorch's form): v = momentum * v + grads; params -= lr * v."""

    n_moments = 1  # the velocity
    config_keys = ("learning_rate", "momentum")

    def __init__(self, learning_rate=0.01, momentum=0.9):
        super().__init__(learning_rate)
        self.momentum = checks.fraction("momentum", momentum)

    def _init_state(self, params):
        return (np.zeros_like(params), np.empty_like(params))

    def _step(self, params, grads, velocity, scratch):
        velocity *= self.momentum
        velocity += grads
        np.multiply(velocity, self.learning_rate, out=scratch)
        params -= scratch


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as PyTorch and Keras compute it.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    params -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)
    """

    n_moments = 2  # m and v; the step count is `iterations`
    config_keys = ("learning_rate", "beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta_1 = checks.fraction("beta_1", beta_1)
        self.beta_2 = checks.fraction("beta_2", beta_2)
        self.epsilon = checks.positive("epsilon", epsilon)
        self.iterations = 0

    def _init_state(self, params):
        self.iterations = 0
        return (np.zeros_like(params), np.zeros_like(params), np.empty_like(params))

    def _step(self, params, grads, m, v, scratch):
        self.iterations += 1
        t = self.iterations
        self._update(
            params,
            grads,
            m,
            v,
            scratch,
            self.learning_rate / (1 - self.beta_1**t),
            1 - self.beta_2**t,
        )

    def _update(self, params, grads, m, v, scratch, step_size, bias_2):
        """The step with its bias corrections given: step_size = lr / (1 - b1^t) and
        bias_2 = 1 - b2^t, numbers, or arrays like params (one t per stacked model)."""
        m *= self.beta_1
        np.multiply(grads, 1 - self.beta_1, out=scratch)  # in the scratch: no array a step
        m += scratch
        v *= self.beta_2
        np.multiply(grads, grads, out=scratch)
        scratch *= 1 - self.beta_2
        v += scratch
        np.divide(v, bias_2, out=scratch)
        np.sqrt(scratch, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        params -= scratch


OPTIMIZERS = Registry("optimizer", Optimizer, default="sgd")
OPTIMIZERS.register("sgd", "gd", "gradient_descent")(SGD)
OPTIMIZERS.register("momentum")(Momentum)
OPTIMIZERS.register("adam")(Adam)
register = OPTIMIZERS.register
get = OPTIMIZERS.get
