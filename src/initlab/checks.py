"""Argument checks: an integer with a minimum, a finite number with a bound, a fraction, a flag,
an array of real numbers, callbacks, and the memory a request needs against what the machine has.

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
import os
import sys

import numpy as np

# Upper bounds of the sizes the commands and sweep specs take: far beyond any study this machine
# class can run, so they only stop typing mistakes (an extra zero or ten) before the memory
# estimate, and a plan of runs too long to list.
MAX_SEEDS = 10**6
MAX_EPOCHS = 10**9
MAX_WIDTH = 2**16
MAX_DEPTH = 10**4
MAX_SAMPLES = 10**7


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


def bounded_integer(name, value, minimum, maximum=None):
    """value as an int, if it is an integer >= minimum (integer) and <= maximum.

    >>> bounded_integer("--seeds", 10**7, 1, MAX_SEEDS)
    Traceback (most recent call last):
    ...
    ValueError: --seeds must be an integer in [1, 1000000], got 10000000
    """
    value = integer(name, value, minimum=minimum)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value}")
    return value


def number(name, value, minimum=None, *, strict=False):
    """value as a float, if it is a finite real number >= minimum (> minimum when strict).

    >>> number("noise", 0, minimum=0)
    0.0
    """
    if (
        is_real(value)
        and _is_finite(value)
        and (minimum is None or value > minimum or (value == minimum and not strict))
    ):
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
    if is_real(value) and (0 <= value < 1 if allow_zero else 0 < value < 1):
        return float(value)
    interval = "[0, 1)" if allow_zero else "(0, 1)"
    raise ValueError(f"{name} must be a fraction in {interval}, got {_describe(value)}")


def _is_integer(value):
    # numbers.Integral covers int and every NumPy integer; bool is excluded explicitly.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """Whether value is a real number: int, float or NumPy's (not bool, complex or a string)."""
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


def flag(name, value):
    """value as a bool, if it is True or False (a NumPy bool too); 'no', 0 or None are refused.

    A string is truthy, so shuffle="no" would silently shuffle: only real booleans pass.

        >>> flag("shuffle", False)
        False
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {_describe(value)}")


# The kinds of array NumPy can do arithmetic on as real numbers: signed and unsigned integers and
# floats. Complex ('c') would lose its imaginary part, booleans ('b') are labels not numbers,
# strings ('U', 'S') would be parsed, and objects ('O') hide anything.
_REAL_KINDS = "iuf"


def real_array(name, value, dtype):
    """value as an ndarray of `dtype`, if it holds real numbers: not complex, bool, str or object.

    >>> real_array("X", [[1, 2]], np.float64)
    array([[1., 2.]])
    """
    try:
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(
            f"{name} must be a numeric array, got {type(value).__name__} ({error})"
        ) from None
    if array.dtype.kind not in _REAL_KINDS:
        raise ValueError(
            f"{name} must hold real numbers (integers or floats), got an array of "
            f"dtype {array.dtype} ({_KIND_NAMES.get(array.dtype.kind, 'other')})"
        )
    return array.astype(dtype, copy=False)


_KIND_NAMES = {
    "c": "complex",
    "b": "boolean",
    "U": "strings",
    "S": "bytes",
    "O": "objects",
    "V": "structured",
    "M": "datetimes",
    "m": "timedeltas",
}

CALLBACK_HOOKS = ("on_train_begin", "on_epoch_end", "on_train_end")


def callbacks(value):
    """value as a list of callbacks: objects with at least one of CALLBACK_HOOKS, callable.

    None or () is no callback; one callback object alone is accepted as a list of one.

        >>> callbacks(None)
        []
    """
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for index, item in enumerate(items):
        hooks = [getattr(item, hook, None) for hook in CALLBACK_HOOKS]
        if not any(hooks) or not all(hook is None or callable(hook) for hook in hooks):
            where = f"callbacks[{index}]" if isinstance(value, (list, tuple)) else "callbacks"
            raise ValueError(
                f"{where} must be an object with a method {', '.join(CALLBACK_HOOKS)}"
                f" (any of them), got {item!r} of type {type(item).__name__}"
            )
    return items


def available_memory():
    """Bytes of memory the machine can give without swapping (MemAvailable), or None if unknown.

    Linux's /proc/meminfo first; else the free physical pages sysconf reports (which undercounts
    reclaimable cache); None where neither exists, and then no estimate is refused.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory(what, nbytes, change):
    """Refuse (ValueError) work estimated at `nbytes` when the machine has less available.

    what : the request, as the user wrote it ("fit with epochs=10**12");
    change : what to change to make it fit ("use fewer epochs").

        >>> memory("a tiny fit", 1000, "nothing")
    """
    available = available_memory()
    if available is None and nbytes > sys.maxsize:  # beyond any address space
        available = sys.maxsize
    if available is not None and nbytes > available:
        raise ValueError(
            f"{what} would need about {format_bytes(nbytes)} of memory, more than "
            f"the {format_bytes(available)} this machine has available; {change}"
        )


def format_bytes(nbytes):
    """A byte count for people: '1.5 GB' (powers of 1000, as free and df -H print them).

    >>> format_bytes(1_500_000_000)
    '1.5 GB'
    """
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if value < 1000 or unit == "EB":
            break
        value /= 1000
    return f"{value:.3g} {unit}"
