"""Definitions traced once, then evaluated with NumPy or bound to buffers: the same numbers."""

import math

import numpy as np
import pytest

from initlab.blocks import expressions


def softplus_and_slope(z, y, math):
    s = 1.0 - 2.0 * y
    u = s * z
    softplus = math.maximum(u, 0.0) + math.log1p(math.exp(-math.abs(u)))
    return softplus, s * math.exp(u - softplus)


def test_bound_calls_give_the_evaluated_bits_and_allocate_nothing_per_run():
    rng = np.random.default_rng(0)
    z, y = rng.normal(scale=5, size=(2, 3, 50)), (rng.random((2, 3, 50)) > 0.5) * 1.0
    graph = expressions.trace(softplus_and_slope, 2, n_outputs=2)
    values_out, grad_out = np.empty_like(z), np.empty_like(z)
    ops, results, hoisted = expressions.bind(graph, [z, y], out=[values_out, grad_out], hoist=(1,))
    assert results[0] is values_out and results[1] is grad_out
    assert len(hoisted) == 2  # s = 1 - 2 y: a multiply and a subtract that read only y
    for op in hoisted + ops:
        op()
    expected = expressions.evaluate(softplus_and_slope, z, y)
    np.testing.assert_array_equal(values_out, expected[0])
    np.testing.assert_array_equal(grad_out, expected[1])
    buffers = [op.keywords["out"] for op in ops if hasattr(op, "keywords")]
    z[...] = -z  # the calls read their buffers when they run: new inputs, new results
    for op in ops:
        op()
    assert all(op.keywords["out"] is b for op, b in zip(ops, buffers, strict=False))
    np.testing.assert_array_equal(values_out, expressions.evaluate(softplus_and_slope, z, y)[0])


def test_an_identity_or_a_constant_output_is_copied_into_its_buffer():
    z = np.arange(6.0).reshape(2, 3)
    out = np.empty_like(z)
    ops, (result,), _ = expressions.bind(expressions.trace(lambda z, math: z, 1), [z], out=out)
    for op in ops:
        op()
    np.testing.assert_array_equal(result, z)
    ops, (result,), _ = expressions.bind(expressions.trace(lambda z, math: 2, 1), [z])
    np.testing.assert_array_equal(result, np.full((2, 3), 2.0))


def test_a_definition_that_branches_in_python_is_refused_with_a_reason():
    with pytest.raises(TypeError, match="math.where"):
        expressions.trace(lambda z, math: z if z > 0 else -z, 1)
    with pytest.raises(TypeError, match="numbers only"):
        expressions.trace(lambda z, math: z + "1", 1)


def test_where_selects_and_erf_is_exact():
    x = np.linspace(-4, 4, 101)
    out = np.empty_like(x)
    ops, _, _ = expressions.bind(
        expressions.trace(lambda z, math: math.where(z > 0.0, math.erf(z), -z), 1), [x], out=out
    )
    for op in ops:
        op()
    expected = np.where(x > 0, [math.erf(v) for v in x], -x)
    np.testing.assert_array_equal(out, expected)
    assert expressions.erf(np.float32(0.5)).dtype == np.float32


def test_every_operator_traces_to_the_numpy_it_stands_for():
    def every_operator(z, y, math):
        return (
            (z > y) * 1.0
            + (z >= y) * 2.0
            + (z < y) * 4.0
            + (z <= y) * 8.0
            + 1.0 / (2.0 + z * z)
            + (3.0 - z)
            - (-y)
            + 2.0 * y
            + y / 4.0
            + (z + 1.0)
        )

    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    y[0, :4] = z[0, :4]  # ties, where > and >= part
    expected = (
        (z > y) * 1.0
        + (z >= y) * 2.0
        + (z < y) * 4.0
        + (z <= y) * 8.0
        + 1.0 / (2.0 + z * z)
        + (3.0 - z)
        + y
        + 2.0 * y
        + y / 4.0
        + (z + 1.0)
    )
    out = np.empty_like(z)
    ops, _, _ = expressions.bind(expressions.trace(every_operator, 2), [z, y], out=out)
    for op in ops:
        op()
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(expressions.evaluate(every_operator, z, y), expected)


def test_each_math_function_is_the_numpy_function_of_its_name():
    names = sorted(
        set(expressions.MATH_FUNCTIONS)
        - {"where", "erf", "column_max", "column_sum", "maximum", "minimum", "logaddexp"}
    )
    x = np.linspace(0.1, 3.0, 7)
    for name in names:
        traced = expressions.trace(lambda z, math, name=name: getattr(math, name)(z), 1)
        assert traced.calls[0].op == name
        ops, (result,), _ = expressions.bind(traced, [x])
        for op in ops:
            op()
        np.testing.assert_array_equal(result, getattr(np, name)(x))
    for name in ("maximum", "minimum", "logaddexp"):
        traced = expressions.trace(lambda z, math, name=name: getattr(math, name)(z, 1.0), 1)
        ops, (result,), _ = expressions.bind(traced, [x])
        for op in ops:
            op()
        np.testing.assert_array_equal(result, getattr(np, name)(x, 1.0))
