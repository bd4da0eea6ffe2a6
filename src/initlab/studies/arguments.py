"""Checks for the study commands' arguments: counts and comma-separated lists of integers.

Each raises ValueError naming the option, echoing the value and saying what was expected, so a
command rejects bad input in one clear line before any work starts.

    >>> int_list("--depths", "5, 10,20", minimum=1)
    [5, 10, 20]
    >>> check_int("--width", 64, minimum=1)
    64
"""

from initlab import checks


def check_int(option, value, minimum, maximum=None):
    """value as an int, if it is an integer >= minimum (initlab.checks.integer) and <= maximum."""
    value = checks.integer(option, value, minimum=minimum)
    if maximum is not None and value > maximum:
        raise ValueError(f"{option} must be an integer in [{minimum}, {maximum}], got {value}")
    return value


# Upper bounds of the study commands' size options: far beyond any study this machine class can
# run, so they only stop typing mistakes (an extra zero or ten) before the memory estimate.
MAX_SEEDS = 10**6
MAX_EPOCHS = 10**9
MAX_WIDTH = 2**16
MAX_DEPTH = 10**4
MAX_SAMPLES = 10**7


def check_memory(what, nbytes, change):
    """Refuse work (`what`, as the options asked for it) whose estimated memory, nbytes, exceeds
    what the machine has available, before any output is created; `change` says which options
    to lower."""
    checks.memory(what, nbytes, change)


def check_number(option, value, minimum=0, strict=True):
    """value as a float, if it is finite and > minimum (>= minimum when strict is False)."""
    return checks.number(option, value, minimum=minimum, strict=strict)


def int_list(option, text, minimum):
    """Parse "a,b,c" into a list of distinct integers >= minimum, in the order given."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    values = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"{option} must be comma-separated integers >= {minimum}, got "
                             f"{text!r}") from None
        values.append(check_int(option, value, minimum))
    if not values:
        raise ValueError(f"{option} must list at least one integer >= {minimum}, got {text!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{option} lists a value more than once: {text!r}")
    return values


def choice(option, value, choices):
    """value, if it is one of choices."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {list(choices)}, got {value!r}")
    return value
