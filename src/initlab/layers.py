"""Layers: Dense, and the small contract a new layer follows.

A layer has
    build(fan_in, rng, dtype)    create its parameters, once the input size is known
    forward(x)  -> output        keep in `cache` what backward needs
    backward(grad_output, need_input_grad=True) -> grad_input, after filling `grads`
    params, grads                dicts name -> array, the same names and shapes

Shapes are (..., n, m): features or units on the second-to-last axis, samples on the last. Leading
axes broadcast, so the same code trains one model, with W of shape (units, fan_in), or an ensemble
of K models stacked as (K, units, fan_in).

The model may replace the arrays in `params` and `grads` with views into its flat vectors (one for
all parameters, one for all gradients), so a layer writes into them in place and never rebinds them.
"""

import numpy as np

from initlab import activations, initializers


class Layer:
    """Base contract; see the module docstring."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.cache = None
        self._buffers = {}

    @property
    def built(self):
        return bool(self.params)

    def build(self, fan_in, rng, dtype=np.float64):
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_output, need_input_grad=True):
        raise NotImplementedError

    def set_params(self, **arrays):
        """Copy values into the existing parameter arrays (keeping any views the model holds)."""
        for name, value in arrays.items():
            target = self.params[name]
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{name} must have shape {target.shape}, got an array of shape {value.shape}"
                )
            target[...] = value

    def _buffer(self, key, shape, dtype):
        # Reused across epochs: the training loop allocates nothing once the shapes are known.
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self._buffers[key] = np.empty(shape, dtype)
        return buffer

    def count_params(self):
        return sum(p.size for p in self.params.values())


class Dense(Layer):
    """A fully connected layer: z = W x + b, a = activation(z).

    Parameters
    ----------
    units : int
        Number of output units.
    activation : str or Activation
        "linear" (the default), "relu", "leaky_relu", "sigmoid", "tanh" or "softmax".
    initializer : str, Initializer, function or None
        How W and b are drawn; None is the post's default, Initializer() = randn * 1.
    input_dim : int or None
        The number of input features; None learns it from the first input seen.
    bias_initializer : str, Initializer, function or None
        How b is drawn, as a (units, 1) matrix (so fan-based schemes see fan_in = 1). None keeps
        the bias `initializer` returns: zeros, except for schemes that define their own bias
        (pytorch_linear) and methods patched onto Initializer.

    Shapes: x (..., fan_in, m); W (..., units, fan_in); b (..., units, 1); z, a (..., units, m).

    Example
    -------
    >>> import numpy as np
    >>> layer = Dense(units=3, activation="relu", initializer="he")
    >>> layer.build(fan_in=2, rng=np.random.default_rng(0))
    >>> layer.forward(np.ones((2, 5))).shape
    (3, 5)
    """

    def __init__(self, units, activation="linear", initializer=None, input_dim=None,
                 bias_initializer=None):
        super().__init__()
        self.units = _check_count("units", units)
        self.activation = activations.get(activation)
        self.initializer = initializers.get(initializer)
        self.bias_initializer = (None if bias_initializer is None
                                 else initializers.get(bias_initializer))
        self.fan_in = None if input_dim is None else _check_count("input_dim", input_dim)
        # Set by the model when the loss computes this layer's activation itself from the logits
        # (sigmoid + crossentropy, softmax + categorical crossentropy): the layer then emits z.
        self.emits_logits = False

    # The post reads and writes layer.weights and layer.bias.
    @property
    def weights(self):
        return self.params.get("weights")

    @weights.setter
    def weights(self, value):
        self.set_params(weights=value)

    @property
    def bias(self):
        return self.params.get("bias")

    @bias.setter
    def bias(self, value):
        self.set_params(bias=value)

    def build(self, fan_in, rng, dtype=np.float64):
        fan_in = _check_count("fan_in", fan_in)
        if self.fan_in is not None and fan_in != self.fan_in:
            raise ValueError(f"this layer expects {self.fan_in} input features, got {fan_in}")
        weights, bias = self.initializer((self.units, fan_in), rng=rng)
        if self.bias_initializer is not None:
            bias = self.bias_initializer((self.units, 1), rng=rng)[0]
        expected = {"weights": (self.units, fan_in), "bias": (self.units, 1)}
        for name, value in (("weights", weights), ("bias", bias)):
            if np.shape(value) != expected[name]:
                raise ValueError(
                    f"initializer {self.initializer!r} returned {name} of shape "
                    f"{np.shape(value)}; expected {expected[name]}"
                )
        self.fan_in = fan_in
        self.params = {"weights": np.array(weights, dtype=dtype),
                       "bias": np.array(bias, dtype=dtype)}
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}

    def forward(self, x):
        weights, bias = self.params["weights"], self.params["bias"]
        shape = np.broadcast_shapes(weights.shape[:-2], x.shape[:-2]) + (self.units, x.shape[-1])
        z = np.matmul(weights, x, out=self._buffer("z", shape, weights.dtype))
        z += bias
        if self.emits_logits:
            a = z
        else:
            a = self.activation.forward(z, out=self._buffer("a", shape, weights.dtype))
        self.cache = (x, z, a)
        return a

    def backward(self, grad_output, need_input_grad=True):
        x, z, a = self.cache
        if self.emits_logits:
            grad_z = grad_output  # the loss already gave dL/dz
        else:
            grad_z = self.activation.backward(z, a, grad_output, out=grad_output)
        np.matmul(grad_z, np.swapaxes(x, -1, -2), out=self.grads["weights"])
        np.sum(grad_z, axis=-1, keepdims=True, out=self.grads["bias"])
        if not need_input_grad:
            return None
        weights = self.params["weights"]
        shape = grad_z.shape[:-2] + (self.fan_in, grad_z.shape[-1])
        return np.matmul(np.swapaxes(weights, -1, -2), grad_z,
                         out=self._buffer("grad_x", shape, grad_z.dtype))

    def get_config(self):
        return {
            "class": "Dense",
            "units": self.units,
            "activation": self.activation.get_config(),
            "initializer": self.initializer.get_config(),
            "input_dim": self.fan_in,
            "bias_initializer": (None if self.bias_initializer is None
                                 else self.bias_initializer.get_config()),
        }

    def __repr__(self):
        return (f"Dense(units={self.units}, activation={self.activation.name!r}, "
                f"initializer={self.initializer!r})")


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


LAYERS = {"Dense": Dense}
