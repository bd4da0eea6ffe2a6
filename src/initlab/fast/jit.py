"""The compiled training step: one Numba kernel per dtype, activations and loss, for any sizes.

Why it exists. The post's model does about 0.26 MFLOP an epoch: NumPy spends most of an epoch on
what each call costs (training.py), and an Ensemble on K small BLAS calls per product. This module
writes a Numba kernel that runs a whole training step (forward pass, loss, backward pass, every
gradient) for each stacked model, reading the layer sizes as arguments: one compilation serves
every depth, width and batch size, and it is kept on disk (see "The cache" below), so a new
process loads it instead of compiling it.

The code of the activations and the loss is written from their traced definitions
(`expressions.trace`; _elementwise_code and _column_code), never kept here: an elementwise
definition becomes a loop over the samples that the compiler vectorizes; one that sums or takes
the maximum over the units (softmax, categorical cross-entropy) a loop over the units for each
sample. The update is the optimizer's own NumPy step on the flat vectors, so every optimizer
works; plain gradient descent, the post's, also runs inside the kernel (`descend`), many epochs
in one call, rounded as its NumPy step is. The kernel releases the GIL, so an Ensemble runs its
groups of models in threads.

What it covers: stacks of Dense layers of any size, with any activation the registry defines
(built in or a user's), ending in any loss with a definition (the fused pairs from the logits, as
the NumPy path computes them), full batches or minibatches, float64 and float32. `check_supported`
says why anything else is not covered (a custom layer, an activation that overrides forward).

The same bits on every machine. The kernel's own sums run in an order fixed by its source, never
by the CPU: products add their terms one after another, sums over the samples keep LANES running
sums (sample n in sum n mod LANES) and add them by halving, and nothing is fused into an FMA or
reassociated (no fastmath). A CPU with wider vectors runs the same sums side by side, so the
compiled path gives the same bits on any x86-64 CPU (tests/test_jit.py compiles for Numba's
generic target and for the host and compares). Layers large enough to be worth it (BLAS_WEIGHTS)
hand their products to BLAS, whose order follows its own kernels: their bits follow the BLAS as
the NumPy path's do. The NumPy path is the reference: the two agree to rounding, not to the bit.

The cache. Numba keeps compiled code on disk as pickles, which initlab never loads from a file a
user can be handed. A kernel's cache therefore lives only in a private directory of the user's
(cache_directory(): created with mode 0700 and used only while it is owned by the user and closed
to others), with a manifest of the SHA-256 of every file Numba wrote there: a file that does not
match (damaged, truncated, replaced) is removed before loading, and the kernel recompiles. The
cache keeps the CACHE_KERNELS kernels loaded most recently.

    model.fit(X, Y, epochs=15000, jit_compile=True)      # or Ensemble(models).fit(...)
"""

import functools
import hashlib
import importlib.util
import json
import math
import os
import stat
import sys
import threading
from pathlib import Path

import numpy as np

from initlab.blocks import expressions, losses
from initlab.blocks.layers import Dense

try:  # Numba is optional: the study and fast extras bring it
    import numba
    from llvmlite import binding as llvm
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

try:  # Numba hands np.dot to BLAS through SciPy's bindings
    import scipy.linalg.cython_blas  # noqa: F401

    HAVE_BLAS = True
except ImportError:  # pragma: no cover - exercised only where scipy is absent
    HAVE_BLAS = False

# Running sums per sum over the samples: more than one vector's lanes on any CPU (8 doubles in an
# AVX-512 register), so that a sum waits on no addition before it; their number fixes the order.
LANES = 16
# A layer with at least this many weights and biases, and a batch of at least BLAS_SAMPLES,
# hands its three products to BLAS: below, the kernel's own loops are faster than a BLAS call's
# cost, above, BLAS's blocked kernels win (measured with benchmarks/bench_mlp.py).
BLAS_WEIGHTS = 4096
BLAS_SAMPLES = 32
# Entries of a gradient's row computed at once (_sums).
INPUTS_AT_ONCE = 2
# Rows of a product computed at once (_sums).
OUTPUTS_AT_ONCE = 2
# Iterations of a vectorized loop the kernel runs side by side (_warm_up).
INTERLEAVE = 4

NEEDS_NUMBA = (
    "jit_compile=True needs Numba, which is not installed: pip install numba "
    "(in a clone of initlab: pip install -e '.[fast]')"
)


class Unsupported(ValueError):
    """Raised when a model cannot take the compiled path; the message says why."""


def available():
    """Whether Numba is installed, so that the compiled path can be used at all."""
    return numba is not None


def thread_count():
    """How many threads an Ensemble trains its groups in: Numba's own setting, which follows
    the cores this process may use (NUMBA_NUM_THREADS overrides it)."""
    return numba.config.NUMBA_NUM_THREADS


def check_supported(layers, loss, n_features=None):
    """Raise Unsupported naming what this model has that the compiled kernel does not cover.

    n_features : the input size, for a model not built yet (unused: any size is covered).
    """

    def refuse(reason):
        raise Unsupported(
            f'jit_compile=True: {reason}; fit with jit_compile="auto" (the default) or False to '
            f"train this model with NumPy"
        )

    if numba is None:
        raise Unsupported(NEEDS_NUMBA)
    if not layers:
        refuse("the model has no layers")
    for i, layer in enumerate(layers, start=1):  # layers are numbered from 1 everywhere
        if type(layer) is not Dense:
            refuse(
                f"layer {i} is a {type(layer).__name__}; the compiled kernel trains stacks of "
                f"Dense layers"
            )
        if (
            not layer.activation.follows_definition
            or _graph(layer.activation.function, 1) is None
            or _graph(layer.activation.vjp, 3) is None
        ):
            refuse(
                f"layer {i}'s activation {layer.activation!r} has no definition the compiled "
                f"kernel can write (it overrides forward or backward, or its definition does "
                f"not trace: see initlab.blocks.expressions)"
            )
    if not isinstance(loss, losses.Loss) or _loss_graph(layers, loss) is None:
        refuse(f"the loss {loss!r} has no definition the compiled kernel can write")


def _graph(function, n_inputs, n_outputs=1):
    """The traced definition, or None if `function` does not trace."""
    try:
        return expressions.trace(function, n_inputs, n_outputs)
    except (NotImplementedError, TypeError, ValueError):
        return None


def _loss_graph(layers, loss):
    fused = layers[-1].emits_logits
    return _graph(loss.logit_definition if fused else loss.definition, 2, 2)


def training_step(layers, loss, params, grads, x, y):
    """A function of no arguments: one training step over the buffers x and y.

    params, grads : the flat vectors every layer's kernel and grad_kernel are views into.
    x : (..., n_features + 1, m), its last row ones; y : (..., n_outputs, m); C-ordered. A
    leading axis, if any, is the K stacked models (or data sets). The step fills every layer's
    grad_kernel and returns the cost: a float, or one cost per stacked model. Its attribute
    `descend(epochs, learning_rate)` runs many steps of plain gradient descent in one call.
    """
    check_supported(layers, loss)
    plan = _Plan(layers, loss, params, grads, x, y)
    kernel = _kernel(plan.spec)
    costs = np.empty((1, plan.n_models), params.dtype)
    arguments = plan.arguments(costs) + (0.0,)
    stacked = plan.stacked

    def step():
        kernel(*arguments)
        # A copy: the callers keep the costs they are given (history, logged costs).
        return costs[0].copy() if stacked else costs[0, 0]

    def descend(epochs, learning_rate):
        """`epochs` steps, each followed by plain gradient descent (params -= learning_rate *
        grads, as optimizers.SGD computes it) in one call: the costs, (epochs,) or
        (epochs, K)."""
        history = np.empty((epochs, plan.n_models), params.dtype)
        kernel(*plan.arguments(history), float(learning_rate))
        return history if stacked else history[:, 0]

    step.descend = descend
    return step


class _Plan:
    """A model's sizes, activations and buffers, as the kernel's arguments."""

    def __init__(self, layers, loss, params, grads, x, y):
        dtype = params.dtype
        if x.dtype != dtype or y.dtype != dtype or grads.dtype != dtype:
            raise Unsupported("the compiled kernel needs x, y and the parameters in one dtype")
        if not (x.flags.c_contiguous and y.flags.c_contiguous):
            raise Unsupported("the compiled kernel reads x and y as C-ordered arrays")
        kernels = [layer.kernel for layer in layers]
        if any(
            kernel is None or layer.grad_kernel is None for kernel, layer in zip(kernels, layers)
        ):
            raise Unsupported(
                "the compiled kernel needs every layer's weights and bias packed side "
                "by side (as NeuralNetwork.build packs them)"
            )
        self.n_models = kernels[0].shape[0] if kernels[0].ndim == 3 else 1
        self.stacked = kernels[0].ndim == 3 or x.ndim == 3
        self.x, self.y = (x if x.ndim == 3 else x[None]), (y if y.ndim == 3 else y[None])
        for name, data in (("x", self.x), ("y", self.y)):
            if data.shape[0] not in (1, self.n_models):
                raise Unsupported(
                    f"{name} is stacked over {data.shape[0]} sets, not 1 or {self.n_models}"
                )
        self.n_models = max(self.n_models, self.x.shape[0], self.y.shape[0])
        self.params, self.grads = params, grads
        self.offsets = np.array(
            [_offset(params, layer.kernel, self.n_models) for layer in layers], np.int64
        )
        if not np.array_equal(
            self.offsets, [_offset(grads, layer.grad_kernel, self.n_models) for layer in layers]
        ):
            raise Unsupported("the gradients are not laid out as the parameters are")
        self.sizes = np.array(
            [kernels[0].shape[-1] - 1] + [kernel.shape[-2] for kernel in kernels], np.int64
        )
        m = x.shape[-1]
        self.blas = np.array(
            [
                HAVE_BLAS
                and kernel.shape[-1] * kernel.shape[-2] >= BLAS_WEIGHTS
                and m >= BLAS_SAMPLES
                for kernel in kernels
            ],
            np.int64,
        )
        self.spec, self.activation_ids = _source_of(layers, loss, dtype)
        # How many numbers of one sample the mean runs over (outputs, or 1 for a sum over them).
        probe = np.empty((int(self.sizes[-1]), 2), dtype)
        self.per_sample = loss.count(probe) // 2

    def arguments(self, costs):
        return (
            self.params,
            self.grads,
            self.offsets,
            self.sizes,
            self.activation_ids,
            self.blas,
            self.x,
            self.y,
            costs,
            self.per_sample,
        )


def _offset(flat, array, n_models):
    """Where `array` (one layer's block, (K,) units x (fan_in + 1)) starts in `flat`, checked."""
    start = array.__array_interface__["data"][0] - flat.__array_interface__["data"][0]
    start //= flat.itemsize
    count = array.size
    if (
        not array.flags.c_contiguous
        or not np.shares_memory(flat, array)
        or start < 0
        or start + count > flat.size
        or count != n_models * array.shape[-1] * array.shape[-2]
    ):
        raise Unsupported("the compiled kernel needs each layer's block inside the flat vector")
    return start


# --- code generation ------------------------------------------------------------------------
def _activation_code(activation):
    """forward_ID(Z, A, units, m) and backward_ID(Z, A, D, units, m) for one activation, written
    from its traced definition (ID stands for the index the kernel gives it)."""
    forward = "\n".join(_loop(activation.forward_graph(), ["Z"], ["A[j, n] = {}"]))
    backward = "\n".join(_loop(activation.backward_graph(), ["Z", "A", "D"], ["D[j, n] = {}"]))
    return (
        "@njit(inline='always', error_model='numpy')\n"
        "def forward_ID(Z, A, units, m):\n" + "\n".join(_indent(forward.split("\n"), 1)) + "\n\n\n"
        "@njit(inline='always', error_model='numpy')\n"
        "def backward_ID(Z, A, D, units, m):\n" + "\n".join(_indent(backward.split("\n"), 1)) + "\n"
    )


def _loop(graph, inputs, outputs):
    """Lines that evaluate a traced definition over a layer's (units, m) arrays named `inputs`,
    writing output k through the template outputs[k] (e.g. "A[j, n] = {}").

    An elementwise definition runs one sample per iteration of the inner loop, which the
    compiler vectorizes. One that sums or takes the maximum over the units runs, for each sample,
    a loop over the units per call, into arrays of `units` values (t0, t1 ...).
    """
    if graph.elementwise:
        lines, results = _scalar_code(graph, [f"{name}[j, n]" for name in inputs], "e")
        body = lines + [template.format(result) for template, result in zip(outputs, results)]
        return ["for j in range(units):", "    for n in range(m):"] + _indent(body, 2)
    return _column_code(graph, inputs, outputs)


def _column_code(graph, inputs, outputs):
    names = {id(node): f"{name}[j, n]" for node, name in zip(graph.inputs, inputs, strict=True)}
    per_unit = {id(node) for node in graph.inputs}

    def ref(node):
        return f"T({node.value!r})" if node.is_constant else names[id(node)]

    bounds = _bounds(graph)
    setup, body = [], []
    for k, node in enumerate(graph.calls):
        args = list(map(ref, node.args))
        if node.is_column:
            (arg,) = node.args
            name = f"c{k}"
            term = args[0].replace("[j, n]", "[0, n]").replace("[j]", "[0]")
            if id(arg) not in per_unit:  # a column of one value per sample: the units' count
                raise NotImplementedError("a reduction over the units of a per-sample value")
            if node.op == "column_max":
                body += [f"{name} = {term}", "for j in range(1, units):"]
                body += ["    " + f"{name} = " + _SCALAR["maximum"](args[0], name)]
            else:  # column_sum, in the units' order
                body += [f"{name} = T(0.0)", "for j in range(units):", f"    {name} += {args[0]}"]
            names[id(node)] = name
        elif any(id(arg) in per_unit for arg in node.args):
            name = f"t{k}"
            kind = "np.bool_" if node.is_boolean else "T"
            setup.append(f"{name} = np.empty(units, {kind})")
            body += ["for j in range(units):", f"    {name}[j] = {_writer(node, bounds)(*args)}"]
            names[id(node)], _ = f"{name}[j]", per_unit.add(id(node))
        else:
            name = f"s{k}"
            body.append(f"{name} = {_writer(node, bounds)(*args)}")
            names[id(node)] = name
    body.append("for j in range(units):")
    body += ["    " + template.format(ref(node)) for template, node in zip(outputs, graph.outputs)]
    return setup + ["for n in range(m):"] + _indent(body, 1)


def _indent(lines, levels):
    return ["    " * levels + line for line in lines]


def _scalar_code(graph, inputs, prefix):
    """A traced elementwise definition as scalar statements over the names `inputs`.

    Returns (lines, output expressions). Each call becomes one temporary, `prefix` + its index.
    maximum and minimum keep NumPy's rule that a NaN operand gives NaN; exp, expm1, log, log1p,
    tanh and logaddexp are the prelude's vectorizable versions (see _writer); the rest are
    Numba's.
    """
    names = {id(node): name for node, name in zip(graph.inputs, inputs, strict=True)}

    def ref(node):
        return f"T({node.value!r})" if node.is_constant else names[id(node)]

    bounds = _bounds(graph)
    lines = []
    for k, node in enumerate(graph.calls):
        name = f"{prefix}{k}"
        lines.append(f"{name} = {_writer(node, bounds)(*map(ref, node.args))}")
        names[id(node)] = name
    return lines, [ref(node) for node in graph.outputs]


def _writer(node, bounds):
    """The code template of a call: _SCALAR's, but a log1p of a value in [0, 1] is log1p_unit,
    which needs no range reduction there."""
    if node.op == "log1p":
        low, high = _bound(bounds, node.args[0])
        if 0.0 <= low and high <= 1.0:
            return "log1p_unit({})".format
    return _SCALAR[node.op]


def _bounds(graph):
    """{id(node): (low, high)}: the values each call of a traced definition can take, NaN aside,
    as far as abs, negative and exp tell (any other call: any float). A loss's log1p(exp(-|u|))
    is then known to see only [0, 1]."""
    bounds = {}
    for node in graph.calls:
        low, high = _bound(bounds, node.args[0]) if node.args else (-math.inf, math.inf)
        if node.op == "abs":
            bounds[id(node)] = (max(low, -high, 0.0), max(-low, high))
        elif node.op == "negative":
            bounds[id(node)] = (-high, -low)
        elif node.op == "exp":
            with np.errstate(over="ignore"):
                bounds[id(node)] = (float(np.exp(low)), float(np.exp(high)))
    return bounds


def _bound(bounds, node):
    if node.is_constant:
        return node.value, node.value
    return bounds.get(id(node), (-math.inf, math.inf))


_SCALAR = {
    "add": "({} + {})".format,
    "subtract": "({} - {})".format,
    "multiply": "({} * {})".format,
    "divide": "({} / {})".format,
    "negative": "(-{})".format,
    "greater": "({} > {})".format,
    "greater_equal": "({} >= {})".format,
    "less": "({} < {})".format,
    "less_equal": "({} <= {})".format,
    "where": lambda c, x, y: f"({x} if {c} else {y})",
    # `|`, not `or`: both sides are evaluated, so the choice is a select, not a branch per
    # element, and the loop vectorizes.
    "maximum": lambda a, b: f"({a} if (({a} >= {b}) | ({a} != {a})) else {b})",
    "minimum": lambda a, b: f"({a} if (({a} <= {b}) | ({a} != {a})) else {b})",
    "abs": "abs({})".format,
    "ceil": "T(np.ceil({}))".format,
    "exp": "exp_any({})".format,
    "expm1": "expm1_any({})".format,
    "log": "log_any({})".format,
    "log1p": "log1p_any({})".format,
    "sqrt": "T(np.sqrt({}))".format,
    "tanh": "tanh({})".format,
    "erf": "T(math.erf({}))".format,
    "logaddexp": "logaddexp({}, {})".format,
}


def _source(dtype, activation_codes, loss_graph, fused):
    """The Python source of the kernel module for a dtype, the model's distinct activations
    (their code, in id order), its loss's traced definition and whether it starts from logits."""
    parts = [_PRELUDE.format(dtype=dtype, blas=HAVE_BLAS, **_MATH[dtype]), _sums()]
    for index, code in enumerate(activation_codes):
        parts.append(code.replace("_ID(", f"_{index}("))
    template = ["V[j, n] = {}", "D[j, n] = ({}) * scale"]
    loss_lines = _loop(loss_graph, ["Z" if fused else "A", "Y"], template)
    parts.append(
        "@njit(inline='always', error_model='numpy')\n"
        "def loss_terms(Z, A, Y, V, D, units, m, scale):\n"
        + "\n".join(_indent(loss_lines, 1))
        + "\n"
    )

    def dispatch(call, arguments):
        lines = []
        for index in range(len(activation_codes)):
            keyword = "if" if index == 0 else "elif"
            lines += [f"{keyword} activation == {index}:", f"    {call}_{index}({arguments})"]
        return lines

    parts.append(
        _KERNEL.format(
            forward="\n".join(_indent(dispatch("forward", "Z, A, units, m"), 4)),
            backward="\n".join(_indent(dispatch("backward", "Zb, Ab, Db, fan_in, m"), 4)),
            output_backward="\n".join(_indent(dispatch("backward", "Z, A, D, units, m"), 3)),
            fused=fused,
        )
    )
    return "\n\n".join(parts)


@functools.cache  # a pure function of this module's constants, written once per process
def _sums():
    """The kernel's sums, in an order fixed here, written so that any CPU's vectors can run them
    side by side (the compiler's SLP pass packs the LANES independent sums into vectors):

    dot(x, y, m): sum over n of x[n] y[n], in LANES running sums (sample n in sum n mod LANES,
        the last m mod LANES samples in one more) added by halving (sum t + sum t + LANES/2, ...);
    product(W, S, Z, ...): Z = W S, and transposed_product(W, D, B, ...): B = Wᵀ D without the
        bias row; each entry a sum in the order of its terms, LANES samples at a time.

    Indices are unsigned: a signed one could be negative, and the check for that hides from the
    compiler that the LANES loads are side by side."""
    lanes = range(LANES)

    def halving(terms):
        # Sum t with sum t + half, then again on the first half: the order a vector reduction
        # takes, so the running sums stay side by side in vectors to the end.
        while len(terms) > 1:
            half = len(terms) // 2
            terms = [f"({a} + {b})" for a, b in zip(terms[:half], terms[half:])]
        return terms[0]

    def chunked(name, arguments, outer, first, rest, target):
        """A loop over `outer` (its name and end), then over the samples LANES at a time:
        value = first(o, n), then value += weight(o) * term(n) for each step of rest's range;
        stored through target(o, n). OUTPUTS_AT_ONCE values of `outer` at a time, so that each
        read of a term serves them all; the rest of them one at a time."""
        o, end = outer
        variable, steps, weight, term = rest

        def body(group, indent):
            pad = "    " * indent
            index = [o if g == 0 else f"{o} + {g}" for g in range(group)]
            code = [f"for start in range(0, full, {LANES}):", "    u = np.uint64(start)"]
            code = [pad + line for line in code]
            code += [
                pad + f"    v{g}_{t} = {first(index[g], f'u + C{t}')}"
                for g in range(group)
                for t in lanes
            ]
            code += [pad + f"    for {variable} in range({steps}):"]
            code += [pad + f"        w{g} = {weight(index[g])}" for g in range(group)]
            code += [pad + f"        s{t} = {term(f'u + C{t}')}" for t in lanes]
            code += [pad + f"        v{g}_{t} += w{g} * s{t}" for g in range(group) for t in lanes]
            code += [
                pad + f"    {target(index[g], f'u + C{t}')} = v{g}_{t}"
                for g in range(group)
                for t in lanes
            ]
            code += [pad + "for n in range(full, m):"]
            for g in range(group):
                code += [
                    pad + f"    v = {first(index[g], 'n')}",
                    pad + f"    for {variable} in range({steps}):",
                    pad + f"        v += {weight(index[g])} * {term('n')}",
                    pad + f"    {target(index[g], 'n')} = v",
                ]
            return code

        return [
            "@njit(error_model='numpy', boundscheck=False)",
            f"def {name}({arguments}):",
            f"    full = m - m % {LANES}",
            f"    grouped = {end} - {end} % {OUTPUTS_AT_ONCE}",
            f"    for {o} in range(0, grouped, {OUTPUTS_AT_ONCE}):",
            *body(OUTPUTS_AT_ONCE, 2),
            f"    for {o} in range(grouped, {end}):",
            *body(1, 2),
        ]

    dot = ["@njit(error_model='numpy', boundscheck=False)", "def dot(x, y, m):"]
    dot += [f"    a{t} = T(0.0)" for t in lanes]
    dot += [f"    full = m - m % {LANES}", f"    for start in range(0, full, {LANES}):"]
    dot += ["        u = np.uint64(start)"]
    dot += [f"        a{t} += x[u + C{t}] * y[u + C{t}]" for t in lanes]
    dot += ["    tail = T(0.0)", "    for n in range(full, m):", "        tail += x[n] * y[n]"]
    dot += [f"    return {halving([f'a{t}' for t in lanes])} + tail"]
    # gradient(D, S, G, ...): G = D Sᵀ ([dW | db], the ones row of S summing D for the bias),
    # every entry a dot as above; INPUTS_AT_ONCE entries of a row at a time, so that each read
    # of D serves them all.
    group = range(INPUTS_AT_ONCE)
    gradient = [
        "@njit(error_model='numpy', boundscheck=False)",
        "def gradient(D, S, G, fan_in, units, m):",
        f"    full = m - m % {LANES}",
        f"    inputs = fan_in + 1 - (fan_in + 1) % {INPUTS_AT_ONCE}",
        "    for j in range(units):",
        f"        for i in range(0, inputs, {INPUTS_AT_ONCE}):",
    ]
    gradient += [f"            a{g}_{t} = T(0.0)" for g in group for t in lanes]
    gradient += [
        f"            for start in range(0, full, {LANES}):",
        "                u = np.uint64(start)",
    ]
    gradient += [f"                d{t} = D[j, u + C{t}]" for t in lanes]
    gradient += [
        f"                a{g}_{t} += d{t} * S[i + {g}, u + C{t}]" for g in group for t in lanes
    ]
    gradient += [f"            tail{g} = T(0.0)" for g in group]
    gradient += ["            for n in range(full, m):"]
    gradient += [f"                tail{g} += D[j, n] * S[i + {g}, n]" for g in group]
    gradient += [
        f"            G[j, i + {g}] = {halving([f'a{g}_{t}' for t in lanes])} + tail{g}"
        for g in group
    ]
    gradient += [
        "        for i in range(inputs, fan_in + 1):",
        "            G[j, i] = dot(D[j], S[i], m)",
    ]
    product = chunked(
        "product",
        "W, S, Z, fan_in, units, m",
        ("j", "units"),
        lambda j, n: f"W[{j}, 0] * S[0, {n}]",
        ("i", "1, fan_in + 1", lambda j: f"W[{j}, i]", lambda n: f"S[i, {n}]"),
        lambda j, n: f"Z[{j}, {n}]",
    )
    transposed = chunked(
        "transposed_product",
        "W, D, B, fan_in, units, m",
        ("i", "fan_in"),
        lambda i, n: f"W[0, {i}] * D[0, {n}]",
        ("j", "1, units", lambda i: f"W[j, {i}]", lambda n: f"D[j, {n}]"),
        lambda i, n: f"B[{i}, {n}]",
    )
    constants = [f"C{t} = np.uint64({t})" for t in lanes]
    functions = [dot, gradient, product, transposed]
    return "\n".join(constants + [""] + ["\n".join(code) + "\n\n" for code in functions]) + "\n"


_KERNEL = """@njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def kernel(params, grads, offsets, sizes, activation_ids, blas, X, Y, costs, per_sample, rate):
    # costs.shape[0] steps, each followed, for a rate above 0, by gradient descent on the flat
    # vectors: params - grads * rate, the two roundings of the optimizer's NumPy step.
    L = activation_ids.shape[0]
    m = X.shape[2]
    # rows[l]: where layer l's units start in Zs and Ds; in As, layer l's block (its units and a
    # row of ones, the next layer's input) starts l rows further.
    rows = np.zeros(L + 1, np.int64)
    widest = 1
    for l in range(L):
        rows[l + 1] = rows[l] + sizes[l + 1]
        widest = max(widest, sizes[l] + 1)
    Zs = np.empty((rows[L], m), T)
    As = np.empty((rows[L] + L, m), T)
    Ds = np.empty((rows[L], m), T)
    U = np.empty((widest, m), T)
    V = np.empty((sizes[L], m), T)
    ones = np.ones(m, T)
    step_rate = T(rate)
    for epoch in range(costs.shape[0]):
        step(params, grads, offsets, sizes, activation_ids, blas, X, Y, costs[epoch], per_sample,
             rows, Zs, As, Ds, U, V, ones)
        if rate > 0.0:
            for e in range(params.shape[0]):
                params[e] = params[e] - grads[e] * step_rate


@njit(error_model="numpy", boundscheck=False)
def step(params, grads, offsets, sizes, activation_ids, blas, X, Y, costs, per_sample,
         rows, Zs, As, Ds, U, V, ones):
    # One training step of every stacked model: its gradients, and its cost in costs[k].
    L = activation_ids.shape[0]
    m = X.shape[2]
    scale = T(1.0 / (per_sample * m))
    for k in range(costs.shape[0]):
        x = X[k if X.shape[0] > 1 else 0]
        y = Y[k if Y.shape[0] > 1 else 0]
        # Forward.
        for l in range(L):
            fan_in, units = sizes[l], sizes[l + 1]
            size = units * (fan_in + 1)
            start = offsets[l] + k * size
            W = params[start:start + size].reshape((units, fan_in + 1))
            S = x if l == 0 else As[rows[l - 1] + l - 1:rows[l] + l]
            Z = Zs[rows[l]:rows[l + 1]]
            A = As[rows[l] + l:rows[l + 1] + l + 1]
            if blas[l]:
                np.dot(W, S, Z)
            else:
                product(W, S, Z, fan_in, units, m)
            if l < L - 1 or not {fused}:
                activation = activation_ids[l]
{forward}
            A[units, :] = T(1.0)
        # The loss, and dL/dz of the output layer.
        units = sizes[L]
        Z = Zs[rows[L - 1]:rows[L]]
        A = As[rows[L - 1] + L - 1:rows[L] + L - 1]
        D = Ds[rows[L - 1]:rows[L]]
        loss_terms(Z, A, y, V, D, units, m, scale)
        if not {fused}:
            activation = activation_ids[L - 1]
{output_backward}
        cost = T(0.0)
        for j in range(units):
            cost += dot(V[j], ones, m)
        # Backward.
        for l in range(L - 1, -1, -1):
            fan_in, units = sizes[l], sizes[l + 1]
            size = units * (fan_in + 1)
            start = offsets[l] + k * size
            W = params[start:start + size].reshape((units, fan_in + 1))
            G = grads[start:start + size].reshape((units, fan_in + 1))
            S = x if l == 0 else As[rows[l - 1] + l - 1:rows[l] + l]
            D = Ds[rows[l]:rows[l + 1]]
            if blas[l]:
                np.dot(D, S.T, G)
            else:
                gradient(D, S, G, fan_in, units, m)
            if l > 0:
                Zb = Zs[rows[l - 1]:rows[l]]
                Ab = As[rows[l - 1] + l - 1:rows[l] + l - 1]
                Db = Ds[rows[l - 1]:rows[l]]
                if blas[l]:
                    Ub = U[:fan_in + 1]
                    np.dot(W.T, D, Ub)
                    Db[:, :] = Ub[:fan_in]
                else:
                    transposed_product(W, D, Db, fan_in, units, m)
                activation = activation_ids[l - 1]
{backward}
        costs[k] = cost * scale
"""


# exp, expm1, logaddexp, log and log1p, written so that the compiler vectorizes them (Numba calls
# libm's scalar exp, log and log1p, which keep a loop from vectorizing: one log1p per sample in
# the post's loss cost more than all of its products).
# exp: t = k ln2 + r with |r| <= ln2/2 (ln2 split in two, so that k ln2 is exact), expm1(r) by its
# Taylor series, 2^k from the bits of the float (as 2^(k-1) times 2 for k > 0, so that k may
# reach the largest exponent); below the smallest normal number exp is 0 and expm1 is -1, above the
# largest finite one exp is inf. A NaN comes out as NaN. expm1(t) for t > 0 is
# -exp(t) expm1(-t), which keeps its digits near 0. log1p: 2 atanh(s), s = e / (2 + e) <= 1/3, an
# odd series. log: u = 2^k f with f in [sqrt(1/2), sqrt(2)] read from the float's bits, then
# k ln2 + log1p_unit(f - 1) (f - 1 is exact there); log1p adds what rounding 1 + x lost, c / u.
# All are within 2-4 ulps of NumPy's (tests/test_jit.py checks them). tanh is built on
# expm1 as np.tanh computes it, without overflow or cancellation.
_PRELUDE = '''"""Generated by initlab.fast.jit: a training kernel for {dtype}. Do not edit."""
import math

import numpy as np
from numba import njit

from initlab.fast.jit import exponent_{dtype}, pow2_{dtype}, significand_{dtype}

T = np.{dtype}
LOWEST = T({lowest})
HIGHEST = T({highest})


@njit(inline="always", error_model="numpy")
def expm1_parts(t):
    tt = min(max(t, LOWEST), HIGHEST)
    k = np.floor(tt * T(1.4426950408889634) + T(0.5))
    r = (tt - k * T({ln2_hi})) - k * T({ln2_lo})
    q = T({exp_coefficients[0]})
{exp_horner}
    return k, q * r


@njit(inline="always", error_model="numpy")
def exp_any(t):
    k, q = expm1_parts(t)
    shift = T(1.0) if k > T(0.0) else T(0.0)  # 2^k as 2^(k - 1) * 2 only where k is large
    scale = pow2_{dtype}(k - shift)
    result = (scale + scale * q) * (T(1.0) + shift)
    inside = t >= LOWEST and t <= HIGHEST
    return result if inside else (T(0.0) if t < LOWEST else (T(np.inf) if t > HIGHEST else t))


@njit(inline="always", error_model="numpy")
def expm1_neg(t):
    k, q = expm1_parts(t)
    scale = pow2_{dtype}(k)
    result = q if scale == T(1.0) else scale * q + (scale - T(1.0))
    return result if t >= LOWEST else (T(-1.0) if t < LOWEST else t)


@njit(inline="always", error_model="numpy")
def expm1_any(t):
    return expm1_neg(t) if t <= T(0.0) else -exp_any(t) * expm1_neg(-t)


@njit(inline="always", error_model="numpy")
def log1p_unit(e):
    s = e / (T(2.0) + e)
    s2 = s * s
    p = T({log_coefficients[0]})
{log_horner}
    return T(2.0) * s * p


@njit(inline="always", error_model="numpy")
def logaddexp(a, b):
    larger = a if (a >= b or a != a) else b
    return larger + log1p_unit(exp_any(-abs(a - b)))


@njit(inline="always", error_model="numpy")
def log_split(u):
    # u = 2^k f for a positive normal u, with f in [sqrt(1/2), sqrt(2)]: f - 1 is then exact
    # and log(f) = log1p_unit(f - 1) converges fast.
    k = exponent_{dtype}(u)
    f = significand_{dtype}(u)
    high = f > T(1.4142135623730951)
    return (k + T(1.0) if high else k), (f * T(0.5) if high else f)


@njit(inline="always", error_model="numpy")
def log_any(x):
    small = x < T({tiny})  # subnormal: scaled into the normal range first
    k, f = log_split(x * T({subnormal_scale}) if small else x)
    k = k - T({subnormal_bits}) if small else k
    result = k * T({ln2_hi}) + (log1p_unit(f - T(1.0)) + k * T({ln2_lo}))
    inside = x > T(0.0) and x < T(np.inf)
    return result if inside else (T(-np.inf) if x == T(0.0) else (x if x > T(0.0) else T(np.nan)))


@njit(inline="always", error_model="numpy")
def log1p_any(x):
    u = T(1.0) + x
    k, f = log_split(u)
    # What rounding 1 + x lost, relative to u: log(u + c) = log(u) + c / u.
    c = (T(1.0) - (u - x)) if k > T(0.0) else (x - (u - T(1.0)))
    result = k * T({ln2_hi}) + (log1p_unit(f - T(1.0)) + (c / u + k * T({ln2_lo})))
    inside = x > T(-1.0) and x < T(np.inf) and x != T(0.0)  # log1p(-0.0) is -0.0
    return result if inside else (T(-np.inf) if x == T(-1.0) else (x if x >= T(0.0) else T(np.nan)))


@njit(inline="always", error_model="numpy")
def tanh(z):
    u = expm1_neg(T(-2.0) * abs(z))
    return -u / (T(2.0) + u) if z >= T(0.0) else u / (T(2.0) + u)


'''


def _math_constants(exp_degree, log_terms, lowest, highest, ln2_hi, ln2_lo, tiny, subnormal_bits):
    # expm1(r) = r (1 + r/2! + ... + r^(n-1)/n!): the Horner coefficients, highest first.
    exp_coefficients = [1.0 / math.factorial(i) for i in range(exp_degree, 0, -1)]
    log_coefficients = [1.0 / (2 * i + 1) for i in range(log_terms - 1, -1, -1)]
    return {
        "lowest": repr(lowest),
        "tiny": repr(tiny),
        "subnormal_bits": repr(float(subnormal_bits)),
        "subnormal_scale": repr(2.0**subnormal_bits),
        "highest": repr(highest),
        "ln2_hi": repr(ln2_hi),
        "ln2_lo": repr(ln2_lo),
        "exp_coefficients": [repr(c) for c in exp_coefficients],
        "exp_horner": "\n".join(f"    q = q * r + T({c!r})" for c in exp_coefficients[1:]),
        "log_coefficients": [repr(c) for c in log_coefficients],
        "log_horner": "\n".join(f"    p = p * s2 + T({c!r})" for c in log_coefficients[1:]),
    }


# Degrees: the first omitted Taylor term of exp at |r| = ln2/2 and of log1p at s = 1/3 is below
# half an ulp of the dtype. ln2_hi has few enough bits that k * ln2_hi is exact for every k used.
_MATH = {
    "float64": _math_constants(
        13,
        18,
        -708.0,
        709.782712893384,
        6.93147180369123816490e-01,
        1.90821492927058770002e-10,
        2.2250738585072014e-308,
        54,
    ),
    "float32": _math_constants(
        8, 8, -87.0, 88.72283, 0.693145751953125, 1.428606765330187045e-06, 1.1754944e-38, 24
    ),
}


# The intrinsics below move between a float's bits and integers without converting an integer
# to a float or back: x86-64 before AVX-512 has no vector instruction for those conversions of
# 64-bit integers, so one of them makes the compiler take a float64 loop apart lane by lane. They
# add or subtract 1.5 * 2^mantissa instead, which puts a small integer in a float's low bits.
def _pow2(float_type, llvm_float, bits, bias, mantissa):
    """An intrinsic: 2.0 ** k for an integral float k in the normal range, made from the float's
    bits: k + 1.5 * 2^mantissa holds k in its low bits; add the bias and shift it above the
    mantissa (the shift drops the bits above the exponent)."""

    @intrinsic
    def pow2(typingctx, k):
        def codegen(context, builder, signature, args):
            shifted = builder.fadd(args[0], ir.Constant(llvm_float, 1.5 * 2.0**mantissa))
            integer = builder.bitcast(shifted, ir.IntType(bits))
            biased = builder.add(integer, ir.Constant(ir.IntType(bits), bias))
            return builder.bitcast(
                builder.shl(biased, ir.Constant(ir.IntType(bits), mantissa)), llvm_float
            )

        return float_type(float_type), codegen

    return pow2


def _exponent(float_type, llvm_float, bits, bias, mantissa):
    """An intrinsic: the exponent k of a positive normal float u = 2^k f, 1 <= f < 2, as a float:
    its biased exponent, read from its bits, put under the exponent of 2^mantissa (a float
    2^mantissa + k + bias), from which 2^mantissa + bias is subtracted."""

    @intrinsic
    def exponent(typingctx, u):
        def codegen(context, builder, signature, args):
            integer = builder.lshr(
                builder.bitcast(args[0], ir.IntType(bits)), ir.Constant(ir.IntType(bits), mantissa)
            )
            base = ir.Constant(ir.IntType(bits), (bias + mantissa) << mantissa)  # 2^mantissa
            biased = builder.bitcast(builder.or_(integer, base), llvm_float)
            return builder.fsub(biased, ir.Constant(llvm_float, 2.0**mantissa + bias))

        return float_type(float_type), codegen

    return exponent


def _significand(float_type, llvm_float, bits, bias, mantissa):
    """An intrinsic: f in [1, 2) of a positive normal float u = 2^k f (its mantissa's bits under
    the exponent of 1)."""

    @intrinsic
    def significand(typingctx, u):
        def codegen(context, builder, signature, args):
            integer = builder.bitcast(args[0], ir.IntType(bits))
            fraction = builder.and_(integer, ir.Constant(ir.IntType(bits), (1 << mantissa) - 1))
            one = ir.Constant(ir.IntType(bits), bias << mantissa)
            return builder.bitcast(builder.or_(fraction, one), llvm_float)

        return float_type(float_type), codegen

    return significand


if numba is not None:
    pow2_float64 = _pow2(types.float64, ir.DoubleType(), 64, 1023, 52)
    pow2_float32 = _pow2(types.float32, ir.FloatType(), 32, 127, 23)
    exponent_float64 = _exponent(types.float64, ir.DoubleType(), 64, 1023, 52)
    exponent_float32 = _exponent(types.float32, ir.FloatType(), 32, 127, 23)
    significand_float64 = _significand(types.float64, ir.DoubleType(), 64, 1023, 52)
    significand_float32 = _significand(types.float32, ir.FloatType(), 32, 127, 23)


# --- compiling and the cache ------------------------------------------------------------------
# Kernels loaded in this process, by digest.
_LOADED = {}
# Threads that ask for one kernel at once: one of them compiles, the others wait for it.
_COMPILING = threading.Lock()
_MANIFEST = "manifest-{digest}.json"
# Kernels the cache keeps: loading one stamps its manifest, and past this many the least
# recently loaded are removed (each version of initlab, Numba or Python writes new ones).
CACHE_KERNELS = 64


def cache_directory():
    """The private directory the kernels' compiled code is kept in, or None if there is none.

    $INITLAB_CACHE_DIR, else $XDG_CACHE_HOME/initlab/kernels, else ~/.cache/initlab/kernels:
    created with mode 0700, and used only while it is a real directory owned by this user that
    no one else may read or write (else the kernels compile in memory, every process). Numba's
    own NUMBA_CACHE_DIR, if set, would move the compiled files out of it: then too, no cache.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    path = os.environ.get("INITLAB_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(base, "initlab", "kernels")
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    private = (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )
    return path if private else None


@functools.cache  # read once: a change to this file takes a new process to load anyway
def _fingerprint():
    """What the compiled code depends on besides its source: this module (the intrinsics and the
    prelude it imports), Numba, llvmlite and Python. (Numba's index adds the CPU.)"""
    own = Path(__file__).read_bytes()
    import llvmlite

    versions = f"{numba.__version__} {llvmlite.__version__} {sys.version}"
    return hashlib.sha256(own).hexdigest() + versions


def _source_of(layers, loss, dtype):
    """The kernel's source for these layers and loss, and each layer's activation id in it."""
    # The activations' code, each written once: their ids follow the sorted code, so that a
    # model's layer order never makes another kernel.
    codes = [_activation_code(layer.activation) for layer in layers]
    distinct = sorted(set(codes))
    activation_ids = np.array([distinct.index(code) for code in codes], np.int64)
    source = _source(
        np.dtype(dtype).name, distinct, _loss_graph(layers, loss), layers[-1].emits_logits
    )
    return source, activation_ids


def _digest(source):
    return hashlib.sha256((source + _fingerprint()).encode()).hexdigest()[:24]


def is_compiled(layers, loss, dtype):
    """Whether a model of these layers and loss trains without compiling its kernel first: the
    kernel is loaded in this process, or in the cache. Else the first fit compiles it, once per
    machine (and per version of initlab, Numba and Python), for a minute or so of CPU."""
    check_supported(layers, loss)
    digest = _digest(_source_of(layers, loss, dtype)[0])
    if digest in _LOADED:
        return True
    directory = cache_directory()
    return (
        directory is not None
        and (directory / f"kernel_{digest}.py").exists()
        and _manifest_holds(directory, digest)
    )


def _kernel(source):
    """The kernel compiled from `source`: from this process's memory, the private cache, or
    compiled now (and cached)."""
    digest = _digest(source)
    with _COMPILING:
        if digest not in _LOADED:
            _LOADED[digest] = _load(source, digest)
        return _LOADED[digest]


def _load(source, digest):
    directory = cache_directory()
    if directory is not None:
        try:
            kernel = _load_cached(directory, source, digest)
            _write_manifest(directory, digest)
            _prune(directory, digest)
            return kernel
        except Exception:  # a damaged cache never fails a fit: compile in memory instead
            _remove_compiled(directory, digest)
    namespace = {}
    code = compile(
        source.replace("cache=True", "cache=False"), f"<initlab kernel {digest}>", "exec"
    )
    exec(code, namespace)
    kernel = namespace["kernel"]
    _warm_up(kernel, source)
    return kernel


def _load_cached(directory, source, digest):
    path = directory / f"kernel_{digest}.py"
    if not path.exists() or path.read_text() != source:
        _write_private(path, source.encode())
    if not _manifest_holds(directory, digest):
        _remove_compiled(directory, digest)
    name = f"initlab_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _warm_up(module.kernel, source)
    return module.kernel


def _warm_up(kernel, source):
    """Compile (or load) the kernel now, on a model of one unit: its types are those of every
    call, so this is the one compilation, made while the lock is held."""
    dtype = np.dtype(source.split("T = np.", 1)[1].split("\n", 1)[0])
    params, grads = np.zeros(2, dtype), np.zeros(2, dtype)
    x, y = np.ones((1, 2, 1), dtype), np.zeros((1, 1, 1), dtype)
    one = np.ones(1, np.int64)
    zero = np.zeros(1, np.int64)
    # Numba leaves LLVM's SLP vectorizer off by default; the kernel's sums are written for it
    # (_sums). And a vectorized loop of the activations or the loss is one long chain of
    # dependent operations (a polynomial per exp or log): running INTERLEAVE of its iterations
    # side by side keeps the CPU's units busy while each waits. Both are for this compilation
    # only: other code in the process compiles as it would. Neither changes an operation.
    vectorize, numba.config.SLP_VECTORIZE = numba.config.SLP_VECTORIZE, 1
    llvm.set_option("", f"-force-vector-interleave={INTERLEAVE}")
    try:
        costs = np.empty((1, 1), dtype)
        kernel(params, grads, zero, one.repeat(2), zero, zero, x, y, costs, 1, 0.0)
    finally:
        numba.config.SLP_VECTORIZE = vectorize
        llvm.set_option("", "-force-vector-interleave=0")  # LLVM's default: its cost model


def _compiled_files(directory, digest):
    cache = directory / "__pycache__"
    return sorted(cache.glob(f"kernel_{digest}.*")) if cache.is_dir() else []


def _manifest_holds(directory, digest):
    """Whether every compiled file of this kernel is the one this cache wrote, to the byte."""
    try:
        recorded = json.loads((directory / _MANIFEST.format(digest=digest)).read_text())
    except (OSError, ValueError):
        return False
    files = _compiled_files(directory, digest)
    return (
        isinstance(recorded, dict)
        and bool(files)
        and recorded == {file.name: hashlib.sha256(file.read_bytes()).hexdigest() for file in files}
    )


def _write_manifest(directory, digest):
    files = {
        file.name: hashlib.sha256(file.read_bytes()).hexdigest()
        for file in _compiled_files(directory, digest)
    }
    _write_private(directory / _MANIFEST.format(digest=digest), json.dumps(files).encode())


def _remove_compiled(directory, digest):
    for file in _compiled_files(directory, digest) + [directory / _MANIFEST.format(digest=digest)]:
        try:
            file.unlink()
        except OSError:
            pass


def _prune(directory, digest):
    """Remove all but the CACHE_KERNELS most recently loaded kernels (never `digest`'s). A kernel
    another process is loading at that moment fails to load there, and compiles again."""
    manifests = []
    for manifest in directory.glob(_MANIFEST.format(digest="*")):
        try:
            manifests.append((manifest.stat().st_mtime, manifest))
        except OSError:  # removed meanwhile by another process
            pass
    manifests.sort(reverse=True)
    for _, manifest in manifests[CACHE_KERNELS:]:
        old = manifest.name.removeprefix("manifest-").removesuffix(".json")
        if old != digest:
            _remove_compiled(directory, old)
            try:
                (directory / f"kernel_{old}.py").unlink()
            except OSError:
                pass


def _write_private(path, data):
    """Write a file of the cache whole (a temporary file, then renamed), readable by the user
    alone."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def math_functions(dtype):
    """The generated exp_any, expm1_any, logaddexp, log_any, log1p_any, log1p_unit and tanh for a
    dtype, in a dict
    (for the tests, which check them against NumPy)."""
    name = np.dtype(dtype).name
    namespace = {}
    exec(compile(_PRELUDE.format(dtype=name, **_MATH[name]), "<initlab math>", "exec"), namespace)
    return namespace
