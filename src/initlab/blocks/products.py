"""The cheapest NumPy call for a matrix product, bound to its buffers, for the training loop.

Shared by the layers' and the losses' allocation-free steps.
"""

import functools

import numpy as np

# np.dot first runs a Python-level __array_function__ dispatch (about 0.1 µs a call); its C
# implementation, which NumPy exposes, skips that. The training loop passes only ndarrays.
dot = getattr(np.dot, "_implementation", np.dot)


def bound_product(left, right, out):
    """A function of no arguments that computes out = left @ right with the cheapest NumPy call.

    For plain matrices np.dot skips matmul's gufunc machinery (about 0.3 µs a call here). Stacked
    outer products (inner dimension 1, the backward pass of a one-unit layer) are one
    broadcasting multiply: np.matmul would run them as K tiny products, about 3x slower.
    """
    if left.ndim == right.ndim == 2 and out.flags.c_contiguous:
        return functools.partial(dot, left, right, out)
    if left.shape[-1] == 1:
        return functools.partial(np.multiply, left, right, out)
    return functools.partial(np.matmul, left, right, out=out)
