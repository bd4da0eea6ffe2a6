"""Elementwise mathematics written once, then evaluated, bound to buffers, or turned into code.

An activation or a loss defines its mathematics as a plain Python function of arrays and a `math`
namespace, e.g. ReLU's

    def function(self, z, math):
        return math.maximum(z, 0.0)

Every path derives from that one function:
- the reference path calls it with `numpy_math` (NumPy's ufuncs) on arrays;
- the training loop's allocation-free path `trace`s it once (the function runs on symbolic
  `Node`s and records the calls it makes) and `bind`s the recorded calls to buffers allocated
  once: an epoch then runs a list of ufunc calls with `out=` that allocate nothing;
- the compiled kernel (initlab.fast.jit) writes the same recorded calls as scalar code.

So a definition may use only Python's arithmetic (+, -, *, /, unary -, comparisons) and the
functions of MATH_FUNCTIONS. Comparisons give booleans, which `where` selects by or arithmetic
turns into 0 and 1.

    >>> import numpy as np
    >>> graph = trace(lambda z, math: math.maximum(z, 0.0), 1)
    >>> z, a = np.array([[-1.0, 2.0]]), np.empty((1, 2))
    >>> ops, result = bind(graph, [z], out=a)
    >>> for op in ops: op()
    >>> a
    array([[0., 2.]])
"""

import functools
import math
from types import SimpleNamespace

import numpy as np

from initlab.blocks.products import bound_product

_erf_scalar = np.vectorize(math.erf, otypes=[np.float64])


def erf(x, out=None):
    """The error function, elementwise (NumPy has no erf ufunc; math.erf is exact to an ulp)."""
    values = _erf_scalar(x)
    if out is None:
        return values.astype(np.result_type(x, np.float32), copy=False)
    np.copyto(out, values, casting="same_kind")
    return out


def _where(condition, x, y, out=None):
    if out is None:
        return np.where(condition, x, y)
    np.copyto(out, y)
    np.copyto(out, x, where=condition)
    return out


def column_max(x, out=None):
    """The maximum over the units axis (-2), kept as an axis of length 1."""
    return np.maximum.reduce(x, -2, None, out, True)


def column_sum(x, out=None):
    """The sum over the units axis (-2), kept as an axis of length 1."""
    return np.add.reduce(x, -2, None, out, True)


# Reductions over the units axis: a definition that uses one is not elementwise (softmax).
COLUMN_FUNCTIONS = {"column_max": column_max, "column_sum": column_sum}
# The functions a definition may call, by the names the compiled kernel knows them by too.
MATH_FUNCTIONS = {
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "erf": erf,
    "abs": np.abs,
    "ceil": np.ceil,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "logaddexp": np.logaddexp,
    "where": _where,
    **COLUMN_FUNCTIONS,
}
# What Python's operators on a Node record, and the ufunc each stands for.
OPERATORS = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "negative": np.negative,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
}
UFUNCS = {**MATH_FUNCTIONS, **OPERATORS}
BOOLEAN = {"greater", "greater_equal", "less", "less_equal"}

numpy_math = SimpleNamespace(**MATH_FUNCTIONS)


class Node:
    """A value in a traced expression: an input, a constant, or a call of `op` on `args`."""

    __slots__ = ("op", "args", "value")

    def __init__(self, op, args=(), value=None):
        self.op, self.args, self.value = op, tuple(args), value

    def _call(self, op, *others):
        return Node(op, (self,) + tuple(map(_node, others)))

    def _rcall(self, op, other):
        return Node(op, (_node(other), self))

    def __add__(self, other):
        return self._call("add", other)

    def __radd__(self, other):
        return self._rcall("add", other)

    def __sub__(self, other):
        return self._call("subtract", other)

    def __rsub__(self, other):
        return self._rcall("subtract", other)

    def __mul__(self, other):
        return self._call("multiply", other)

    def __rmul__(self, other):
        return self._rcall("multiply", other)

    def __truediv__(self, other):
        return self._call("divide", other)

    def __rtruediv__(self, other):
        return self._rcall("divide", other)

    def __neg__(self):
        return self._call("negative")

    def __gt__(self, other):
        return self._call("greater", other)

    def __ge__(self, other):
        return self._call("greater_equal", other)

    def __lt__(self, other):
        return self._call("less", other)

    def __le__(self, other):
        return self._call("less_equal", other)

    def __bool__(self):
        raise TypeError(
            "a traced value has no truth value: an activation or loss definition "
            "must select with math.where(condition, x, y), not `if`"
        )

    @property
    def is_constant(self):
        return self.op == "constant"

    @property
    def is_boolean(self):
        return self.op in BOOLEAN

    @property
    def is_column(self):
        return self.op in COLUMN_FUNCTIONS


def _node(value):
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"a definition may combine traced values with numbers only, got "
            f"{value!r} of type {type(value).__name__}"
        )
    return Node("constant", value=float(value))


def _traced_function(name):
    def call(*args):
        return Node(name, tuple(map(_node, args)))

    call.__name__ = name
    return call


traced_math = SimpleNamespace(**{name: _traced_function(name) for name in MATH_FUNCTIONS})


class Graph:
    """A traced definition: its input Nodes, its output Node(s), and every call node in the
    order it must run (each after its arguments)."""

    def __init__(self, inputs, outputs):
        self.inputs = inputs
        self.outputs = outputs
        self.calls = []
        seen = set()

        def visit(node):
            if id(node) in seen:
                return
            seen.add(id(node))
            for arg in node.args:
                visit(arg)
            if node.op in UFUNCS:
                self.calls.append(node)

        for output in outputs:
            visit(output)
        self.elementwise = not any(node.is_column for node in self.calls)

    def depends_on(self, node, inputs):
        """Whether `node` depends on any Node of `inputs`."""
        if any(node is other for other in inputs):
            return True
        return any(self.depends_on(arg, inputs) for arg in node.args)


def _bound_column(op, x, out):
    """A reduction over the units axis, bound with its result repeated in every row of `out`
    (the shape of x): NumPy allocates a temporary, and runs about 2x slower, for a ufunc whose
    operands broadcast, so the calls that follow see full arrays. A column sum is one product
    with a matrix of ones, a BLAS call that costs less than a reduction."""
    if op == "column_sum":
        return [bound_product(np.ones((x.shape[-2], x.shape[-2]), x.dtype), x, out)]
    column = np.empty(x.shape[:-2] + (1,) + x.shape[-1:], x.dtype)
    return [
        functools.partial(np.maximum.reduce, x, -2, None, column, True),
        functools.partial(np.copyto, out, column),
    ]


def trace(function, n_inputs, n_outputs=1):
    """Run `function(*inputs, math)` on symbolic inputs and return its Graph.

    function returns one value, or a tuple of n_outputs values. Inputs it returns unchanged
    (the identity) and constants are outputs too.
    """
    inputs = [Node("input", value=k) for k in range(n_inputs)]
    result = function(*inputs, traced_math)
    outputs = list(result) if n_outputs > 1 else [result]
    if len(outputs) != n_outputs:
        raise ValueError(f"{function!r} returned {len(outputs)} values; expected {n_outputs}")
    return Graph(inputs, [_node(output) for output in outputs])


def evaluate(function, *arrays):
    """The reference path: function(*arrays, numpy_math), underflow ignored (see below)."""
    with np.errstate(under="ignore"):
        return function(*arrays, numpy_math)


def ignoring_underflow(call):
    """`call` run under np.errstate(under="ignore").

    exp of a very negative number rounds to 0 (sigmoid(-800), a softmax's losing class): the
    right answer, not an error, even for a caller who runs under np.errstate(all="raise"), and a
    definition has no other underflow. The choice is made when a call is bound: where underflow
    is ignored already (NumPy's default), `call` itself comes back, so the training loop pays
    nothing for it. Overflow and invalid values still follow the caller's setting.
    """
    if np.geterr()["under"] == "ignore":
        return call

    def quiet():
        with np.errstate(under="ignore"):
            return call()

    return quiet


def bind(graph, arrays, out=None, constant_shape=None, hoist=()):
    """Bind a graph's calls to buffers allocated here, once.

    arrays : one array per graph input, in order (their buffers: the calls read them as they are
        when the ops run).
    out : a buffer per output (a list) or for the single output, or None for new buffers.
    constant_shape : the shape constants are made in (full arrays: NumPy's SIMD loops skip a
        scalar operand for some ufuncs, maximum among them); default the first input's shape.
    hoist : inputs whose values change less often than the rest (a loss's targets): calls that
        depend on them alone go into the second list returned, to be run when they change.
    Returns (ops, results, hoisted_ops): lists of functions of no arguments, run in order, and
    the output arrays. An output that is an input is copied into its `out` buffer (or returned
    as is); a constant output is a full array.
    """
    dtype = np.result_type(*[np.asarray(a).dtype for a in arrays], np.float32)
    full_shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])
    constant_shape = full_shape if constant_shape is None else constant_shape
    outs = list(out) if isinstance(out, (list, tuple)) else [out] * len(graph.outputs)
    hoisted_inputs = [graph.inputs[k] for k in hoist]
    buffers = {id(node): array for node, array in zip(graph.inputs, arrays, strict=True)}
    constants = {}
    ops, hoisted = [], []

    def buffer_of(node):
        if node.is_constant:
            key = node.value
            if key not in constants:
                constants[key] = np.full(constant_shape, node.value, dtype)
            return constants[key]
        return buffers[id(node)]

    final = {
        id(node): target
        for node, target in zip(graph.outputs, outs, strict=True)
        if target is not None and node.op in UFUNCS
    }
    for node in graph.calls:
        args = [buffer_of(arg) for arg in node.args]
        shape = np.broadcast_shapes(*[np.shape(arg) for arg in args])
        target = final.pop(id(node), None)
        if target is None:
            target = np.empty(shape, bool if node.is_boolean else dtype)
        buffers[id(node)] = target
        if node.is_column:
            calls = _bound_column(node.op, args[0], target)
        else:
            calls = [functools.partial(UFUNCS[node.op], *args, out=target)]
        only_hoisted = hoisted_inputs and not graph.depends_on(
            node, [i for i in graph.inputs if all(i is not h for h in hoisted_inputs)]
        )
        (hoisted if only_hoisted else ops).extend(calls)
    ops = [ignoring_underflow(op) for op in ops]
    hoisted = [ignoring_underflow(op) for op in hoisted]
    results = []
    for node, target in zip(graph.outputs, outs, strict=True):
        value = buffer_of(node)
        if target is not None and value is not target:
            ops.append(functools.partial(np.copyto, target, value))
            value = target
        results.append(value)
    return ops, results, hoisted
