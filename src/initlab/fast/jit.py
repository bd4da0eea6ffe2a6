"""A compiled training step for small stacks of Dense layers: the optional Numba path.

Why it exists. The post's model does about 0.26 MFLOP an epoch. NumPy spends most of an epoch on
what each call costs (training.py), and an Ensemble spends it on np.matmul, which runs K stacked
products as K separate BLAS calls of 1 to 2 µs each. This module writes, for one architecture, a
Numba function that runs a whole training step for each model in two passes over the samples:

1. forward, loss and every layer's dL/dz, one sample per SIMD lane: every weight is a scalar
   loaded once per model, every activation a local value; the hidden activations and the dL/dz
   are stored in one scratch block;
2. the gradient sums [dW | db] = dz @ [x; 1]ᵀ, one unit at a time over that block.

The update stays the optimizer's own NumPy step on the flat vectors, so every optimizer works.
The function releases the GIL, so an Ensemble runs its groups of models in threads, one per core.

What it covers: Dense layers with any activation defined elementwise (activations.py: every
built-in one but softmax, and a user's), ending in a loss defined elementwise (cross-entropy from
the logits of a sigmoid output, as the NumPy path computes it, or mse, or a user's); up to
MAX_WEIGHTS weights in all (larger layers are worth their BLAS calls). The activations' and the
loss's code is written from their traced definitions (_scalar_code), never kept here.
`check_supported` says why anything else is not, and the caller keeps NumPy.

The NumPy path is the reference. The kernel adds its sums in another order (SIMD lanes), so
its numbers equal NumPy's to rounding, not to the bit; on one machine they are the same bits every
run, whatever the number of threads (each model is computed by one thread, in a fixed order).

A kernel is compiled once per process, architecture, dtype and batch-size class (batches up to
the same power of two share one), on its first step: about 5 s for the post's model.
It is not cached on disk, because Numba's cache is made of pickles (see _COMPILED).

    model.fit(X, Y, epochs=15000, jit_compile=True)      # or Ensemble(models).fit(...)
"""

import hashlib
import math
import threading

import numpy as np

from initlab.blocks import expressions, losses
from initlab.blocks.layers import Dense

try:  # Numba is optional: the `fast` extra (pip install -e ".[fast]" in a clone)
    import numba
    from llvmlite import ir
    from numba.core import types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

# The generated code is unrolled, one statement per weight, so its compile time grows with the
# weights (about 5 s for the post's 121, 20 s for 257) while the gain over NumPy shrinks as the
# layers widen (2.2x for 2-64-1, none at 2-100-1, measured here).
MAX_WEIGHTS = 256
MAX_UNITS = 64
# Running sums per loop of the gradient pass (see _source).
ACCUMULATORS = 24

# reassoc lets the compiler sum the samples on SIMD lanes (the reductions of pass 1 and 2) and
# contract lets it fuse a * b + c. Nothing assumes finite numbers: NaN and inf propagate.
FASTMATH = {"reassoc", "contract"}


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

    n_features : the input size, for a model not built yet (else its first layer's fan_in).
    """

    def refuse(reason):
        raise Unsupported(
            f"jit_compile=True: {reason}; fit without jit_compile to train this model with NumPy"
        )

    if numba is None:
        raise Unsupported(NEEDS_NUMBA)
    if (
        not isinstance(loss, losses.Loss)
        or not _traceable(loss.logit_definition, 2, 2)
        and not _traceable(loss.definition, 2, 2)
    ):
        refuse(
            f"the loss {loss!r} has no elementwise definition; the compiled kernel trains "
            f"losses defined elementwise (crossentropy after a sigmoid output, mse)"
        )
    weights, fan_in = 0, n_features
    for i, layer in enumerate(layers, start=1):  # layers are numbered from 1 everywhere
        if type(layer) is not Dense:
            refuse(
                f"layer {i} is a {type(layer).__name__}; the compiled kernel trains stacks of "
                f"Dense layers"
            )
        if (
            not layer.activation.follows_definition
            or not _traceable(layer.activation.function, 1)
            or not _traceable(layer.activation.derivative, 2)
        ):
            refuse(
                f"layer {i}'s activation {layer.activation!r} has no elementwise definition "
                f"the compiled kernel can write (softmax is not elementwise)"
            )
        if layer.units > MAX_UNITS:
            refuse(
                f"layer {i} has {layer.units} units; the compiled kernel is for layers of at "
                f"most {MAX_UNITS}, as wider ones are worth their BLAS calls"
            )
        fan_in = layer.fan_in or fan_in
        weights += layer.units * ((fan_in or 0) + 1)
        fan_in = layer.units
    fused = layers[-1].activation.name == loss.output_activation
    if not _traceable(loss.logit_definition if fused else loss.definition, 2, 2):
        refuse(
            f"{loss.name} after a {layers[-1].activation.name} output has no elementwise "
            f"definition the compiled kernel can write"
        )
    if weights > MAX_WEIGHTS:
        refuse(
            f"the model has {weights} weights and biases; the compiled kernel is for small "
            f"networks (at most {MAX_WEIGHTS}), whose time goes to NumPy's cost per call"
        )


def _traceable(function, n_inputs, n_outputs=1):
    """Whether `function` is an elementwise definition that traces (expressions.trace)."""
    try:
        return expressions.trace(function, n_inputs, n_outputs).elementwise
    except (NotImplementedError, TypeError, ValueError):
        return False


def training_step(layers, loss, x, y, largest=None):
    """A function of no arguments: one training step over the buffers x and y.

    x : (..., n_features + 1, m), its last row ones; y : (..., n_outputs, m). A leading axis, if
    any, is the K stacked models (or data sets). The step fills every layer's grad_kernel and
    returns the cost: a float, or one cost per stacked model.
    largest : the largest batch the fit will run (default: this one), so that one kernel serves
        every batch of the fit.
    """
    check_supported(layers, loss)
    if not all(layer.kernel is not None and layer.grad_kernel is not None for layer in layers):
        raise Unsupported(
            "the compiled kernel needs every layer's weights and bias packed side "
            "by side (as NeuralNetwork.build packs them)"
        )
    kernels = [_stacked(layer.kernel) for layer in layers]
    grads = [_stacked(layer.grad_kernel) for layer in layers]
    n_models = max([kernel.shape[0] for kernel in kernels] + [x.shape[0] if x.ndim == 3 else 1])
    if any(kernel.shape[0] != n_models for kernel in kernels):
        raise Unsupported("the compiled kernel needs every layer stacked over the same models")
    capacity = _capacity(max(largest or 0, x.shape[-1]))
    spec = _Spec(layers, loss, x.dtype, capacity, x.ndim == 3, y.ndim == 3)
    kernel = _compile(spec)
    costs = np.empty(n_models, x.dtype)
    stacked = x.ndim == 3 or layers[0].kernel.ndim == 3

    def step():
        kernel(*kernels, *grads, x, y, costs)
        # A copy: the callers keep the costs they are given (history, logged costs).
        return costs.copy() if stacked else costs[0]

    return step


def _capacity(m):
    """The batch sizes one kernel serves: up to the next power of two (at least 16), so that a
    minibatch fit's last, smaller batch, and data sets of similar sizes, share a compilation."""
    return max(16, 1 << (m - 1).bit_length())


def _stacked(array):
    return array if array.ndim == 3 else array[None]


class _Spec:
    """What the generated code depends on (its source text is the key of _COMPILED)."""

    def __init__(self, layers, loss, dtype, capacity, x_stacked, y_stacked):
        self.sizes = [(layer.kernel.shape[-2], layer.kernel.shape[-1] - 1) for layer in layers]
        # The activations' and the loss's own definitions, traced: the kernel writes them out.
        self.forward_graphs = [layer.activation.forward_graph() for layer in layers]
        self.backward_graphs = [layer.activation.backward_graph() for layer in layers]
        self.logits = layers[-1].emits_logits
        self.loss_graph = expressions.trace(
            loss.logit_definition if self.logits else loss.definition, 2, n_outputs=2
        )
        self.dtype = np.dtype(dtype)
        self.capacity = capacity
        self.x_stacked, self.y_stacked = x_stacked, y_stacked


# --- code generation ------------------------------------------------------------------------
def _source(spec):
    """The Python source of the kernel for one architecture, dtype and batch capacity."""
    sizes, L = spec.sizes, len(spec.sizes)  # L layers
    # Scratch rows are 16 numbers longer than the capacity: rows a power of two apart in memory
    # share cache sets (and 4K aliasing), which made this kernel a third slower here.
    width = spec.capacity + 16
    n_outputs = sizes[-1][0]
    # Scratch rows: each hidden layer's activations, then every layer's dL/dz.
    act_row, delta_row, rows = {}, {}, 0
    for layer in range(L - 1):
        act_row[layer], rows = rows, rows + sizes[layer][0]
    for layer in range(L):
        delta_row[layer], rows = rows, rows + sizes[layer][0]

    def x_at(i, sample="n"):
        return f"X[k, {i}, {sample}]" if spec.x_stacked else f"X[{i}, {sample}]"

    def y_at(j):
        return f"Y[k, {j}, n]" if spec.y_stacked else f"Y[{j}, n]"

    # A scratch row holds `width` samples, a constant: the compiler then knows that the rows
    # never overlap, which it needs to vectorize pass 1 (with a stride of m, it does not).
    def scratch(row):
        return f"scratch[{row * width} + n]"

    out = []

    def emit(indent, line):
        out.append(" " * (4 * indent) + line)

    args = ", ".join([f"W{layer}" for layer in range(L)] + [f"G{layer}" for layer in range(L)])
    emit(0, "@njit(nogil=True, fastmath=FASTMATH, boundscheck=False,")
    emit(0, "      error_model='numpy')")
    emit(0, f"def kernel({args}, X, Y, costs):")
    emit(1, f"m = X.shape[-1]  # samples, at most {spec.capacity}")
    emit(1, f"scale = T(1.0 / ({n_outputs} * m))")
    emit(1, "for k in range(costs.shape[0]):")
    # Allocated here, not once outside the loop: a fresh allocation is known to alias none of
    # the arguments, which is what lets the compiler vectorize the stores of pass 1.
    emit(2, f"scratch = np.empty({rows * width}, T)")
    for layer, (units, fan_in) in enumerate(sizes):
        for j in range(units):
            for i in range(fan_in + 1):
                emit(2, f"w{layer}_{j}_{i} = W{layer}[k, {j}, {i}]")
    emit(2, "cost = T(0.0)")
    # Pass 1: one sample per lane.
    emit(2, "for n in range(m):")
    inputs = [x_at(i) for i in range(sizes[0][1])]

    def write(graph, inputs, prefix):
        """Emit a traced definition as scalar statements; return its outputs' expressions."""
        lines, results = _scalar_code(graph, inputs, prefix)
        for line in lines:
            emit(3, line)
        return results

    for layer, (units, fan_in) in enumerate(sizes):
        outputs = []
        for j in range(units):
            terms = " + ".join(f"w{layer}_{j}_{i} * {inputs[i]}" for i in range(fan_in))
            emit(3, f"z{layer}_{j} = w{layer}_{j}_{fan_in} + {terms}")
            if layer == L - 1 and spec.logits:
                continue
            (a,) = write(spec.forward_graphs[layer], [f"z{layer}_{j}"], f"f{layer}_{j}_")
            emit(3, f"a{layer}_{j} = {a}")
            if layer < L - 1:
                emit(3, f"{scratch(act_row[layer] + j)} = a{layer}_{j}")
            outputs.append(f"a{layer}_{j}")
        inputs = outputs
    last = L - 1
    for j in range(n_outputs):
        # The loss's own definition (losses.py): from the logits for the fused pair, else from
        # the output activation's values, then back through that activation.
        output = f"z{last}_{j}" if spec.logits else f"a{last}_{j}"
        emit(3, f"y{j} = {y_at(j)}")
        value, grad = write(spec.loss_graph, [output, f"y{j}"], f"l{j}_")
        emit(3, f"cost += {value}")
        emit(3, f"e{j} = {grad} * scale")
        if spec.logits:
            emit(3, f"d{last}_{j} = e{j}")
        else:
            (d,) = write(
                spec.backward_graphs[last],
                [f"z{last}_{j}", f"a{last}_{j}", f"e{j}"],
                f"b{last}_{j}_",
            )
            emit(3, f"d{last}_{j} = {d}")
        emit(3, f"{scratch(delta_row[last] + j)} = d{last}_{j}")
    for layer in range(L - 1, 0, -1):
        units, fan_in = sizes[layer]
        for i in range(fan_in):
            grad = " + ".join(f"w{layer}_{j}_{i} * d{layer}_{j}" for j in range(units))
            emit(3, f"u{layer - 1}_{i} = {grad}")
            (d,) = write(
                spec.backward_graphs[layer - 1],
                [f"z{layer - 1}_{i}", f"a{layer - 1}_{i}", f"u{layer - 1}_{i}"],
                f"b{layer - 1}_{i}_",
            )
            below = f"d{layer - 1}_{i}"
            emit(3, f"{below} = {d}")
            emit(3, f"{scratch(delta_row[layer - 1] + i)} = d{layer - 1}_{i}")
    # Pass 2: [dW | db] = dz @ [x; 1]ᵀ, the ones row summing dz for the bias. A few units at a
    # time, so that each input row loaded serves several sums: about 24 running sums, which
    # still fit in the CPU's vector registers.
    for layer, (units, fan_in) in enumerate(sizes):
        block = max(1, min(units, ACCUMULATORS // (fan_in + 1)))
        for first in range(0, units, block):
            block_units = range(first, min(first + block, units))
            for j in block_units:
                for i in range(fan_in + 1):
                    emit(2, f"g{j}_{i} = T(0.0)")
            emit(2, "for n in range(m):")
            for j in block_units:
                emit(3, f"d{j} = {scratch(delta_row[layer] + j)}")
            for i in range(fan_in):
                source = x_at(i) if layer == 0 else scratch(act_row[layer - 1] + i)
                emit(3, f"a{i} = {source}")
                for j in block_units:
                    emit(3, f"g{j}_{i} += d{j} * a{i}")
            for j in block_units:
                emit(3, f"g{j}_{fan_in} += d{j}")
            for j in block_units:
                for i in range(fan_in + 1):
                    emit(2, f"G{layer}[k, {j}, {i}] = g{j}_{i}")
    emit(2, "costs[k] = cost * scale")
    return _PRELUDE.format(dtype=spec.dtype.name, **_MATH[spec.dtype.name]) + "\n".join(out) + "\n"


def _scalar_code(graph, inputs, prefix):
    """A traced definition (expressions.Graph) as scalar statements over the names `inputs`.

    Returns (lines, output expressions). Each call becomes one temporary, `prefix` + its index.
    maximum and minimum keep NumPy's rule that a NaN operand gives NaN; exp, expm1, tanh and
    logaddexp are the prelude's vectorizable versions; the rest are Numba's.
    """
    names = {id(node): name for node, name in zip(graph.inputs, inputs, strict=True)}

    def ref(node):
        return f"T({node.value!r})" if node.is_constant else names[id(node)]

    lines = []
    for k, node in enumerate(graph.calls):
        name = f"{prefix}{k}"
        lines.append(f"{name} = {_SCALAR[node.op](*map(ref, node.args))}")
        names[id(node)] = name
    return lines, [ref(node) for node in graph.outputs]


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
    "maximum": lambda a, b: f"({a} if ({a} >= {b} or {a} != {a}) else {b})",
    "minimum": lambda a, b: f"({a} if ({a} <= {b} or {a} != {a}) else {b})",
    "abs": "abs({})".format,
    "ceil": "T(np.ceil({}))".format,
    "exp": "exp_any({})".format,
    "expm1": "expm1_any({})".format,
    "log": "T(np.log({}))".format,
    "log1p": "T(np.log1p({}))".format,
    "sqrt": "T(np.sqrt({}))".format,
    "tanh": "tanh({})".format,
    "erf": "T(math.erf({}))".format,
    "logaddexp": "logaddexp({}, {})".format,
}


# exp, expm1 and logaddexp, and log1p(e) for 0 <= e <= 1, written so that the compiler vectorizes
# them (Numba calls libm's scalar exp and log1p, about 20 ns each, more than the rest of a sample).
# exp: t = k ln2 + r with |r| <= ln2/2 (ln2 split in two, so that k ln2 is exact), expm1(r) by its
# Taylor series, 2^k from the bits of the float (as 2^(k-1) times 2 for k > 0, so that k may
# reach the largest exponent); below the smallest normal number exp is 0 and expm1 is -1, above the
# largest finite one exp is inf. A NaN comes out as NaN. expm1(t) for t > 0 is
# -exp(t) expm1(-t), which keeps its digits near 0. log1p: 2 atanh(s), s = e / (2 + e) <= 1/3, an
# odd series. All are within 2-4 ulps of NumPy's (tests/test_jit.py checks them). tanh is built on
# expm1 as np.tanh computes it, without overflow or cancellation.
_PRELUDE = '''"""Generated by initlab.fast.jit for one architecture and dtype."""
import math

import numpy as np
from numba import njit

from initlab.fast.jit import FASTMATH, pow2_{dtype}

T = np.{dtype}
LOWEST = T({lowest})
HIGHEST = T({highest})


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def expm1_parts(t):
    tt = min(max(t, LOWEST), HIGHEST)
    k = np.floor(tt * T(1.4426950408889634) + T(0.5))
    r = (tt - k * T({ln2_hi})) - k * T({ln2_lo})
    q = T({exp_coefficients[0]})
{exp_horner}
    return k, q * r


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def exp_any(t):
    k, q = expm1_parts(t)
    shift = T(1.0) if k > T(0.0) else T(0.0)  # 2^k as 2^(k - 1) * 2 only where k is large
    scale = pow2_{dtype}(k - shift)
    result = (scale + scale * q) * (T(1.0) + shift)
    inside = t >= LOWEST and t <= HIGHEST
    return result if inside else (T(0.0) if t < LOWEST else (T(np.inf) if t > HIGHEST else t))


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def expm1_neg(t):
    k, q = expm1_parts(t)
    scale = pow2_{dtype}(k)
    result = q if scale == T(1.0) else scale * q + (scale - T(1.0))
    return result if t >= LOWEST else (T(-1.0) if t < LOWEST else t)


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def expm1_any(t):
    return expm1_neg(t) if t <= T(0.0) else -exp_any(t) * expm1_neg(-t)


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def log1p_unit(e):
    s = e / (T(2.0) + e)
    s2 = s * s
    p = T({log_coefficients[0]})
{log_horner}
    return T(2.0) * s * p


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def logaddexp(a, b):
    larger = a if (a >= b or a != a) else b
    return larger + log1p_unit(exp_any(-abs(a - b)))


@njit(fastmath={{"contract"}}, inline="always", error_model="numpy")
def tanh(z):
    u = expm1_neg(T(-2.0) * abs(z))
    return -u / (T(2.0) + u) if z >= T(0.0) else u / (T(2.0) + u)


'''


def _math_constants(exp_degree, log_terms, lowest, highest, ln2_hi, ln2_lo):
    # expm1(r) = r (1 + r/2! + ... + r^(n-1)/n!): the Horner coefficients, highest first.
    exp_coefficients = [1.0 / math.factorial(i) for i in range(exp_degree, 0, -1)]
    log_coefficients = [1.0 / (2 * i + 1) for i in range(log_terms - 1, -1, -1)]
    return {
        "lowest": repr(lowest),
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
        13, 18, -708.0, 709.782712893384, 6.93147180369123816490e-01, 1.90821492927058770002e-10
    ),
    "float32": _math_constants(8, 8, -87.0, 88.72283, 0.693145751953125, 1.428606765330187045e-06),
}


def _pow2(float_type, llvm_float, bits, bias, mantissa):
    """An intrinsic: 2.0 ** k for an integral float k in the normal range, made from the float's
    bits (the biased exponent k + bias, shifted above the mantissa), which vectorizes."""

    @intrinsic
    def pow2(typingctx, k):
        def codegen(context, builder, signature, args):
            integer = builder.fptosi(args[0], ir.IntType(bits))
            biased = builder.add(integer, ir.Constant(ir.IntType(bits), bias))
            return builder.bitcast(
                builder.shl(biased, ir.Constant(ir.IntType(bits), mantissa)), llvm_float
            )

        return float_type(float_type), codegen

    return pow2


if numba is not None:
    pow2_float64 = _pow2(types.float64, ir.DoubleType(), 64, 1023, 52)
    pow2_float32 = _pow2(types.float32, ir.FloatType(), 32, 127, 23)


# --- compiling --------------------------------------------------------------------------------
# Kernels compiled in this process, by their source text. Nothing is cached on disk: Numba's
# on-disk cache keeps its index and code as pickles, and initlab never loads a pickle from a file.
_COMPILED = {}
# An Ensemble's threads each build their training step at once: one of them compiles.
_COMPILING = threading.Lock()


def _compile(spec):
    """The kernel for a spec, compiled on its first call (Numba compiles lazily)."""
    return _namespace(_source(spec))["kernel"]


def math_functions(dtype):
    """The generated exp_any, expm1_any, logaddexp, log1p_unit and tanh for a dtype, in a dict
    (for the tests, which check them against NumPy)."""
    return _namespace(_PRELUDE.format(dtype=np.dtype(dtype).name, **_MATH[np.dtype(dtype).name]))


def _namespace(source):
    with _COMPILING:
        if source not in _COMPILED:
            namespace = {}
            name = hashlib.sha256(source.encode()).hexdigest()[:12]
            exec(compile(source, f"<initlab.fast.jit kernel {name}>", "exec"), namespace)
            _COMPILED[source] = namespace
        return _COMPILED[source]
