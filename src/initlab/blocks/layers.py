"""Layers: Dense, and the small contract a new layer follows.

A layer has
    units                        how many outputs it gives: the next layer's fan_in
    build(fan_in, rng, dtype)    create its parameters, once the input size is known
    forward(x)  -> output        keep in `cache` what backward needs
    backward(grad_output, need_input_grad=True) -> grad_input, after filling `grads`
    params, grads                dicts name -> array, the same names and shapes
    pack(params, grads)          move its arrays into slices of the model's flat vectors
    training_steps(x, grad_x)    forward and backward bound to fixed buffers: the training loop

and may say more: `fan_in` (None until built, or fixed by its constructor), `activation` (what it
applies last, linear by default: the model fuses an output layer's activation with a matching
loss), `initializer` (None if it has none). The base class gives those defaults, `params`,
`grads`, `pack` and `training_steps`, so a subclass needs `units`, `build`, `forward` and
`backward` only. `backward` never changes the `grad_output` it is given.

Shapes are (..., n, m): features or units on the second-to-last axis, samples on the last. Leading
axes broadcast, so the same code trains one model, with W of shape (units, fan_in), or an ensemble
of K models stacked as (K, units, fan_in).

The model replaces the arrays in `params` and `grads` with views into its flat vectors (one for
all parameters, one for all gradients), so a layer writes into them in place and never rebinds them.

`forward` and `backward` are the plain path: any input, easy to read, used by predict, evaluate
and the diagnostics. `training_steps` is the fast path of `fit`: the training loop gives every
layer an input buffer that carries an extra row of ones under the data, and the layer returns two
functions of no arguments that read and write only buffers allocated once. The base class builds
them from `forward` and `backward`, so any layer trains in the same loop; Dense specialises them
(bias folded into the product, no allocation).
"""

import numpy as np

from initlab import checks
from initlab.blocks import activations, initializers
from initlab.blocks.products import bound_product
from initlab.registry import Registry


class Layer:
    """Base contract; see the module docstring."""

    units = None
    fan_in = None
    activation = activations.Linear()
    initializer = None
    # Set by the model when the loss computes this layer's activation itself from the logits
    # (sigmoid + crossentropy, softmax + categorical crossentropy): the layer then emits z.
    emits_logits = False

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

    def release_buffers(self):
        """Forget the last pass: its buffers, and the cache that holds its input. The next pass
        allocates them again; after a pass of a size unlikely to come again, nothing is lost."""
        self.cache = None
        self._buffers = {}

    def _buffer(self, key, shape, dtype):
        # Reused across epochs: the training loop allocates nothing once the shapes are known.
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
            buffer = self._buffers[key] = np.empty(shape, dtype)
        return buffer

    def count_params(self):
        return sum(p.size for p in self.params.values())

    def pack(self, params, grads):
        """Move the parameters into `params` (a flat slice of count_params() numbers) as views.

        `grads` is the matching slice of the gradient vector; `self.grads` become views into it.
        """
        offset = 0
        for name, value in list(self.params.items()):
            size = value.size
            params[offset : offset + size] = value.ravel()
            self.params[name] = params[offset : offset + size].reshape(value.shape)
            self.grads[name] = grads[offset : offset + size].reshape(value.shape)
            offset += size

    def training_steps(self, x, grad_x=None):
        """Bind the forward and backward passes to fixed buffers, for the training loop.

        x : (..., fan_in + 1, m) input buffer; its last row is ones (a layer may ignore it).
        grad_x : (..., fan_in, m) buffer that backward fills with dL/dx, or None if unneeded.
        Returns (forward_ops, backward_ops, out, grad_out):
            forward_ops, backward_ops : lists of functions of no arguments, run in order;
            out : (..., units + 1, m), forward writes the output above its last row of ones;
            grad_out : (..., units, m), written with dL/d(output) before backward runs.

        This default runs the plain `forward` and `backward` and copies their results, so a new
        layer needs nothing more to train; a layer specialises it to skip the copies.
        """
        inputs = x[..., :-1, :]
        output = self.forward(inputs)  # one plain pass learns the output shape
        out = np.ones(output.shape[:-2] + (output.shape[-2] + 1, output.shape[-1]), output.dtype)
        grad_out = np.empty_like(output)

        def forward():
            np.copyto(out[..., :-1, :], self.forward(inputs))

        def backward():
            grad = self.backward(grad_out, need_input_grad=grad_x is not None)
            if grad_x is not None:
                np.copyto(grad_x, grad)

        return [forward], [backward], out, grad_out


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

    def __init__(
        self, units, activation="linear", initializer=None, input_dim=None, bias_initializer=None
    ):
        super().__init__()
        self.units = checks.integer("units", units, minimum=1)
        self.activation = activations.get(activation)
        self.initializer = initializers.get(initializer)
        self.bias_initializer = (
            None if bias_initializer is None else initializers.get(bias_initializer)
        )
        self.fan_in = checks.integer("input_dim", input_dim, minimum=1, optional=True)

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
        fan_in = checks.integer("fan_in", fan_in, minimum=1)
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
        self.params = {
            "weights": np.array(weights, dtype=dtype),
            "bias": np.array(bias, dtype=dtype),
        }
        self.grads = {name: np.zeros_like(value) for name, value in self.params.items()}

    def preactivation(self, x, out=None):
        """z = W x + b, (..., units, m), into `out` if given."""
        weights, bias = self.params["weights"], self.params["bias"]
        z = np.matmul(weights, x, out=out)
        z += bias
        return z

    def forward(self, x):
        weights = self.params["weights"]
        shape = np.broadcast_shapes(weights.shape[:-2], x.shape[:-2]) + (self.units, x.shape[-1])
        z = self.preactivation(x, out=self._buffer("z", shape, weights.dtype))
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
            grad_z = self.activation.backward(
                z, a, grad_output, out=self._buffer("grad_z", z.shape, z.dtype)
            )
        np.matmul(grad_z, np.swapaxes(x, -1, -2), out=self.grads["weights"])
        np.sum(grad_z, axis=-1, keepdims=True, out=self.grads["bias"])
        if not need_input_grad:
            return None
        weights = self.params["weights"]
        shape = grad_z.shape[:-2] + (self.fan_in, grad_z.shape[-1])
        return np.matmul(
            np.swapaxes(weights, -1, -2), grad_z, out=self._buffer("grad_x", shape, grad_z.dtype)
        )

    # --- the training loop's fast path ----------------------------------------------------------
    def pack(self, params, grads):
        """Pack [W | b] as one (..., units, fan_in + 1) block of the flat vectors.

        With a row of ones under the input x, [W | b] @ [x; 1] = W x + b: the bias rides in the
        product instead of a separate addition, and [dW | db] = dz @ [x; 1]ᵀ comes from one product
        too, since the ones row sums dz over the samples. `weights` and `bias` stay views into it.
        """
        weights, bias = self.params["weights"], self.params["bias"]
        shape = weights.shape[:-1] + (weights.shape[-1] + 1,)
        kernel, grad_kernel = params.reshape(shape), grads.reshape(shape)
        kernel[..., :-1] = weights
        kernel[..., -1:] = bias
        self.params = {"weights": kernel[..., :-1], "bias": kernel[..., -1:]}
        self.grads = {"weights": grad_kernel[..., :-1], "bias": grad_kernel[..., -1:]}

    @property
    def kernel(self):
        """[W | b], (..., units, fan_in + 1): a view of the memory `weights` and `bias` live in,
        or None unless they are packed side by side (as `pack` lays them out)."""
        return _side_by_side(self.params.get("weights"), self.params.get("bias"))

    @property
    def grad_kernel(self):
        """[dW | db], likewise, from `grads`."""
        return _side_by_side(self.grads.get("weights"), self.grads.get("bias"))

    def training_steps(self, x, grad_x=None):
        """Forward and backward over fixed buffers; see Layer.training_steps for the contract.

        forward:  z = kernel @ x  (x ends with a ones row, so this is W x + b);  a = f(z)
        backward: dz = f'(z) * da;  [dW | db] = dz @ xᵀ;  dx = Wᵀ dz  (skipped for the first layer)
        Requires the model to have packed the parameters (NeuralNetwork.build does).
        """
        kernel, grad_kernel = self.kernel, self.grad_kernel
        if kernel is None or grad_kernel is None:
            raise ValueError(
                "Dense.training_steps needs weights and bias packed side by side; "
                "build the model (or call "
                "initlab.engine.parameters.pack_parameters) first"
            )
        dtype, m = kernel.dtype, x.shape[-1]
        lead = np.broadcast_shapes(kernel.shape[:-2], x.shape[:-2])
        out = np.ones(lead + (self.units + 1, m), dtype)
        a = out[..., :-1, :]
        grad_out = np.empty(lead + (self.units, m), dtype)
        # A layer that emits logits leaves f to the loss: its output is z itself.
        z = a if self.emits_logits else np.empty(lead + (self.units, m), dtype)
        product = bound_product(kernel, x, z)
        kernel_grad_product = bound_product(grad_out, np.swapaxes(x, -1, -2), grad_kernel)
        input_grad_product = None
        if grad_x is not None:
            input_grad_product = bound_product(
                np.swapaxes(kernel[..., :-1], -1, -2), grad_out, grad_x
            )
        forward, backward = [product], [kernel_grad_product]
        if not self.emits_logits:  # else the loss applies f itself, from z
            # dL/da is not needed once dL/dz is known, so dz overwrites it in grad_out.
            activation_forward, activation_backward = self.activation.training_steps(z, a, grad_out)
            forward += activation_forward
            backward = activation_backward + backward
        if input_grad_product is not None:
            backward.append(input_grad_product)
        return forward, backward, out, grad_out

    def get_config(self):
        return {
            "class": "Dense",
            "units": self.units,
            "activation": self.activation.get_config(),
            "initializer": self.initializer.get_config(),
            "input_dim": self.fan_in,
            "bias_initializer": (
                None if self.bias_initializer is None else self.bias_initializer.get_config()
            ),
        }

    def __repr__(self):
        return (
            f"Dense(units={self.units}, activation={self.activation.name!r}, "
            f"initializer={self.initializer!r})"
        )


def _side_by_side(weights, bias):
    """The (..., units, k + 1) array [weights | bias], as a view, if they sit so in memory.

    It is derived from the two views every time rather than stored, so that nothing that rebinds
    `params` (loading, a rolled-back re-initialisation) can leave a stale copy behind.
    """
    if weights is None or bias is None or weights.base is None or weights.base is not bias.base:
        return None
    k, itemsize = weights.shape[-1], weights.itemsize
    if (
        weights.strides[-1] != itemsize
        or weights.strides[-2] != (k + 1) * itemsize
        or bias.strides[:-1] != weights.strides[:-1]
        or bias.shape[:-1] != weights.shape[:-1]
        or bias.ctypes.data != weights.ctypes.data + k * itemsize
    ):
        return None
    return np.lib.stride_tricks.as_strided(
        weights, shape=weights.shape[:-1] + (k + 1,), strides=weights.strides
    )


LAYERS = Registry("layer", Layer)
LAYERS.register("Dense")(Dense)
register = LAYERS.register
