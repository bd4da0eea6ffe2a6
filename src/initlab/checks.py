"""Argument checks: an integer with a minimum, a finite number with a bound, a fraction.

Each function returns the clean value (a Python int or float) or raises ValueError that names the
argument, echoes the value with repr, and says what was expected. The rules are the same
everywhere in initlab:

- bool is an int to Python, but True is not 1 epoch nor a learning rate: it is rejected.
- NumPy integers and floats are accepted like Python's (they come out of arrays and configs).
- An integer must be an integer: 3.0 is rejected (and the message says it is a float), because a
  float where a count is expected is usually a computed value that was not meant to be one.
- A number must be finite: nan and inf are rejected.

    >>> integer("epochs", 100, minimum=1)
    100
    >>> positive("learning_rate", 0.01)
    0.01
    >>> integer("epochs", 3.0, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer >= 1, got 3.0 (a float; write 3)
"""

import math
import numbers

import numpy as np


def integer(name, value, minimum=None, *, optional=False):
    """value as an int, if it is an integer (not a bool) >= minimum; None too when optional.

        >>> integer("seed", None, minimum=0, optional=True) is None
        True
    """
    if optional and value is None:
        return None
    if _is_integer(value) and (minimum is None or value >= minimum):
        return int(value)
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"
    if optional:
        expected = f"None or {expected}"
    raise ValueError(f"{name} must be {expected}, got {_describe(value, integer=True)}")


def number(name, value, minimum=None, *, strict=False):
    """value as a float, if it is a finite real number >= minimum (> minimum when strict).

        >>> number("noise", 0, minimum=0)
        0.0
    """
    if _is_real(value) and _is_finite(value) and (
            minimum is None or value > minimum or (value == minimum and not strict)):
        return float(value)
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum}"
    raise ValueError(f"{name} must be a finite number{bound}, got {_describe(value)}")


def positive(name, value):
    """value as a float, if it is a finite number > 0 (a rate, a tolerance, a standard deviation).

        >>> positive("epsilon", 1e-8)
        1e-08
    """
    return number(name, value, minimum=0, strict=True)


def fraction(name, value, *, allow_zero=True):
    """value as a float, if it is in [0, 1) (in (0, 1) when allow_zero is False).

    1 is never a fraction here: a momentum or a decay rate of 1 never forgets, and a test split
    of 1 leaves nothing to train on.

        >>> fraction("momentum", 0.9)
        0.9
    """
    if _is_real(value) and (0 <= value < 1 if allow_zero else 0 < value < 1):
        return float(value)
    interval = "[0, 1)" if allow_zero else "(0, 1)"
    raise ValueError(f"{name} must be a fraction in {interval}, got {_describe(value)}")


def _is_integer(value):
    # numbers.Integral covers int and every NumPy integer; bool is excluded explicitly.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    # numbers.Real covers int, float and NumPy's integers and floats (not complex, not strings).
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_finite(value):
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float: it would become inf
        return False


def _describe(value, integer=False):
    """repr(value), plus its type when the type rather than the size is what is wrong."""
    if isinstance(value, (bool, np.bool_)):
        return f"{value!r} (a bool)"
    if integer and isinstance(value, numbers.Real) and not _is_integer(value):
        if math.isfinite(value) and float(value).is_integer():
            return f"{value!r} (a float; write {int(value)})"
        return f"{value!r} (a float)"
    if value is None or isinstance(value, numbers.Real):
        return repr(value)
    return f"{value!r} (a {type(value).__name__})"
