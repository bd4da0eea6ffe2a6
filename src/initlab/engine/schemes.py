"""A scheme written as text, `name` or `name:value`, as the commands, sweeps and explorer take it.

name is any registered initializer (in Keras's or PyTorch's spelling) or a data-dependent
initialisation (lsuv). value, if given, sets the scheme's scale, or its gain if it has no scale:
random_normal:0.01 draws W ~ N(0, 0.01^2), orthogonal:1.41421356 is an orthogonal matrix times
sqrt(2).

    >>> split_scheme("random_normal:10")
    ('random_normal', 'scale', 10.0)
    >>> split_scheme("lsuv")
    ('lsuv', None, None)
"""

import difflib
import math

from initlab.blocks import initializers
from initlab.engine.model import DATA_DEPENDENT

# The parameters a scheme's value may set, in the order tried.
MULTIPLIERS = ("scale", "gain")
# Other spellings the commands print and so accept: the post's randn x 10 under its file name.
SPELLINGS = {"random_normal_x10": "random_normal:10"}


def listed_names():
    """The scheme names initlab prints, sorted: every scheme's own name and its Keras and PyTorch
    names (the columns of `initlab inits`), the data-dependent initialisations and SPELLINGS.

    A did-you-mean suggests only these. Other aliases (TensorFlow's legacy `eye`, `one`, ...) are
    accepted but never suggested: a suggestion must be a name the user can find listed.
    """
    names = set(DATA_DEPENDENT) | set(SPELLINGS)
    for scheme in initializers.INITIALIZERS.values():
        names.update((scheme.name, *scheme.keras, *scheme.pytorch))
    return sorted(names)


class UnknownScheme(ValueError):
    """A name that is neither an initializer nor a data-dependent initialisation."""


def split_scheme(text, key="scheme"):
    """(name, parameter or None, value or None) of `name` or `name:value`.

    ValueError naming `key` and the text if the value is not a finite number >= 0, if a
    data-dependent scheme is given a value, or if the scheme has no scale nor gain to set;
    UnknownScheme if the name is not known.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{key} must be a name such as 'he' or 'random_normal:0.01', got {text!r}")
    name, _, value_text = SPELLINGS.get(text.strip(), text.strip()).partition(":")
    name, value = name.strip(), None
    if value_text:
        try:
            value = float(value_text)
        except ValueError:
            raise ValueError(
                f"{key} {text.strip()!r}: the value after ':' must be a number, got {value_text!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{key} {text.strip()!r}: the value after ':' must be a finite number >= 0, "
                f"got {value_text!r}"
            )
    if name.lower() in DATA_DEPENDENT:
        if value is not None:
            raise ValueError(f"{key} {text.strip()!r} takes no value; write {name.lower()!r}")
        return name.lower(), None, None
    try:
        plain = initializers.Initializer(name)
    except ValueError:
        close = difflib.get_close_matches(name.lower(), listed_names(), n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise UnknownScheme(
            f"{key} {name!r} is not a known scheme{hint}; `initlab inits` lists them, and lsuv"
        ) from None
    if value is None:
        return name, None, None
    parameter = next((p for p in MULTIPLIERS if p in plain.params), None)
    if parameter is None:
        raise ValueError(
            f"{key} {text.strip()!r}: {name} has neither a scale nor a gain for the value "
            f"after ':' to set; write {name!r} alone"
        )
    initializers.Initializer(name, **{parameter: value})  # its own range checks
    return name, parameter, value
