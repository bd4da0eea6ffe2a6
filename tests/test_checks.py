"""initlab.checks: what each check accepts and returns, and what its error says."""

import fractions
import math
import os

import numpy as np
import pytest

from initlab import checks

NAN, INF = float("nan"), float("inf")


# --- integer --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, minimum",
    [
        (1, 1),
        (0, 0),
        (-5, None),
        (10**400, 1),
        (np.int64(7), 1),
        (np.uint8(3), 3),
        (np.int32(0), 0),
    ],
)
def test_integer_accepts_python_and_numpy_integers_and_returns_an_int(value, minimum):
    result = checks.integer("epochs", value, minimum=minimum)
    assert result == value and type(result) is int


@pytest.mark.parametrize(
    "value, minimum, hint",
    [
        (0, 1, ""),
        (-3, 0, ""),
        (np.int64(1), 2, ""),
        (True, 1, "(a bool)"),  # True is not 1 epoch
        (False, 0, "(a bool)"),
        (np.True_, 0, "(a bool)"),
        (3.0, 1, "(a float; write 3)"),  # a whole float is still not an integer
        (np.float64(4.0), 1, "(a float; write 4)"),
        (2.5, 1, "(a float)"),
        (NAN, 1, "(a float)"),
        (INF, 1, "(a float)"),
        ("4", 1, "(a str)"),
        (None, 1, ""),
        ([3], 1, "(a list)"),
    ],
)
def test_integer_rejects_and_says_why(value, minimum, hint):
    with pytest.raises(ValueError) as error:
        checks.integer("batch_size", value, minimum=minimum)
    message = str(error.value)
    assert message.startswith(f"batch_size must be an integer >= {minimum}, got {value!r}")
    assert message.endswith(hint)


def test_integer_without_a_minimum_says_only_integer():
    with pytest.raises(ValueError, match=r"^k must be an integer, got 1\.5 \(a float\)$"):
        checks.integer("k", 1.5)


def test_optional_integer_accepts_none_and_says_so_when_it_rejects():
    assert checks.integer("seed", None, minimum=0, optional=True) is None
    assert checks.integer("seed", np.int64(5), minimum=0, optional=True) == 5
    with pytest.raises(ValueError, match=r"^seed must be None or an integer >= 0, got -1$"):
        checks.integer("seed", -1, minimum=0, optional=True)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got None"):
        checks.integer("seed", None, minimum=0)


# --- number ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, minimum, strict",
    [
        (0, 0, False),
        (0.0, 0, False),
        (1e-300, 0, True),
        (-2.5, None, False),
        (3, None, False),
        (np.float32(0.5), 0, True),
        (np.int64(2), 1, True),
        (fractions.Fraction(1, 4), 0, True),
    ],
)
def test_number_accepts_finite_reals_and_returns_a_float(value, minimum, strict):
    result = checks.number("noise", value, minimum=minimum, strict=strict)
    assert type(result) is float and result == float(value)


@pytest.mark.parametrize(
    "value, minimum, strict, expected",
    [
        (-0.1, 0, False, ">= 0"),
        (0, 0, True, "> 0"),
        (0.0, 0, True, "> 0"),
        (NAN, None, False, ""),
        (INF, 0, False, ">= 0"),
        (-INF, None, False, ""),
        (np.float64(NAN), 0, True, "> 0"),
        (True, 0, False, ">= 0"),
        ("0.2", 0, False, ">= 0"),
        (None, 0, False, ">= 0"),
        (1 + 2j, None, False, ""),
        (10**400, 0, True, "> 0"),  # an int beyond float's range would be inf as a float
    ],
)
def test_number_rejects_and_says_what_was_expected(value, minimum, strict, expected):
    with pytest.raises(ValueError) as error:
        checks.number("noise", value, minimum=minimum, strict=strict)
    bound = f" {expected}" if expected else ""
    assert str(error.value).startswith(f"noise must be a finite number{bound}, got {value!r}")


def test_number_names_the_type_when_the_type_is_wrong():
    with pytest.raises(ValueError, match=r"got '0\.2' \(a str\)$"):
        checks.number("noise", "0.2")
    with pytest.raises(ValueError, match=r"got True \(a bool\)$"):
        checks.number("noise", True)
    # A number of the right type but the wrong size needs no type in the message.
    with pytest.raises(ValueError, match=r"got -1$"):
        checks.number("noise", -1, minimum=0)


# --- positive -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1e-8, 0.01, 3, np.float32(2.0), np.int8(1)])
def test_positive_accepts_finite_numbers_above_zero(value):
    assert checks.positive("learning_rate", value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, 0.0, -0.0, -1e-12, NAN, INF, True, "fast", None])
def test_positive_rejects_zero_negatives_non_finite_and_non_numbers(value):
    with pytest.raises(ValueError) as error:
        checks.positive("learning_rate", value)
    assert str(error.value).startswith(f"learning_rate must be a finite number > 0, got {value!r}")


# --- fraction -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, allow_zero",
    [
        (0, True),
        (0.0, True),
        (0.9, True),
        (0.999, True),
        (np.float64(0.5), True),
        (1e-12, False),
        (0.25, False),
        (math.nextafter(1.0, 0.0), False),
    ],
)
def test_fraction_accepts_the_half_open_or_open_unit_interval(value, allow_zero):
    result = checks.fraction("momentum", value, allow_zero=allow_zero)
    assert type(result) is float and result == value


@pytest.mark.parametrize(
    "value, allow_zero",
    [
        (1, True),
        (1.0, True),
        (-0.1, True),
        (NAN, True),
        (INF, True),
        (True, True),
        (False, True),
        ("0.9", True),
        (0, False),
        (0.0, False),
        (1.0, False),
        (NAN, False),
    ],
)
def test_fraction_rejects_and_shows_the_interval(value, allow_zero):
    interval = "[0, 1)" if allow_zero else "(0, 1)"
    with pytest.raises(ValueError) as error:
        checks.fraction("beta_1", value, allow_zero=allow_zero)
    assert str(error.value).startswith(f"beta_1 must be a fraction in {interval}, got {value!r}")


# --- every check, every bad value: the name and the repr of the value are in the message ---------
@pytest.mark.parametrize(
    "check",
    [
        lambda name, value: checks.integer(name, value, minimum=1),
        lambda name, value: checks.integer(name, value, minimum=0, optional=True),
        lambda name, value: checks.number(name, value, minimum=0),
        checks.positive,
        checks.fraction,
    ],
)
@pytest.mark.parametrize("value", [True, NAN, INF, -7.5, "x", (1, 2), np.bool_(False)])
def test_every_message_names_the_argument_and_echoes_the_value(check, value):
    with pytest.raises(ValueError, match="^the_argument must be ") as error:
        check("the_argument", value)
    assert f"got {value!r}" in str(error.value)


def test_the_docstring_examples_hold():
    import doctest

    result = doctest.testmod(checks)
    assert result.attempted >= 5 and result.failed == 0


# --- flags, real arrays, callbacks, memory ------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_flag_takes_booleans(value):
    assert checks.flag("shuffle", value) is bool(value)


@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, [], np.array([True])])
def test_flag_refuses_what_is_only_truthy(value):
    with pytest.raises(ValueError, match="shuffle must be True or False, got"):
        checks.flag("shuffle", value)


@pytest.mark.parametrize(
    "value, kind",
    [
        (np.ones(3, complex), "complex"),
        (np.ones(3, bool), "boolean"),
        (["1", "2"], "strings"),
        ([b"1"], "bytes"),
        (np.array([1.0, None]), "objects"),
        (np.zeros(2, "datetime64[s]"), "datetimes"),
    ],
)
def test_real_array_refuses_what_is_not_a_real_number(value, kind):
    with pytest.raises(ValueError, match=rf"X must hold real numbers .*\({kind}\)"):
        checks.real_array("X", value, np.float64)


def test_real_array_converts_integers_and_floats_and_refuses_ragged_lists():
    result = checks.real_array("X", [[1, 2], [3, 4]], np.float32)
    assert result.dtype == np.float32 and result.tolist() == [[1, 2], [3, 4]]
    array = np.ones(3)
    assert checks.real_array("X", array, np.float64) is array  # no copy when none is needed
    with pytest.raises(ValueError, match="X must be a numeric array, got list"):
        checks.real_array("X", [[1, 2], [3]], np.float64)


def test_callbacks_takes_hooks_and_refuses_the_rest():
    class Hook:
        def on_train_end(self, model):
            pass

    hook = Hook()
    assert checks.callbacks(None) == [] and checks.callbacks(()) == []
    assert checks.callbacks(hook) == [hook] and checks.callbacks([hook, hook]) == [hook, hook]
    with pytest.raises(ValueError, match=r"callbacks\[1\] must be an object .*got 'x' of type"):
        checks.callbacks([hook, "x"])

    class NotCallable:
        on_epoch_end = 3

    with pytest.raises(ValueError, match="callbacks must be an object"):
        checks.callbacks(NotCallable())


def test_memory_refuses_more_than_the_machine_has(monkeypatch):
    monkeypatch.setattr(checks, "available_memory", lambda: 2_000_000_000)
    checks.memory("a fit", 1_999_999_999, "nothing")
    with pytest.raises(
        ValueError,
        match=r"a fit would need about 2\.5 GB of memory, more than "
        r"the 2 GB this machine has available; use less",
    ):
        checks.memory("a fit", 2_500_000_000, "use less")
    # Unknown memory refuses only what no address space holds.
    monkeypatch.setattr(checks, "available_memory", lambda: None)
    checks.memory("a fit", 10**15, "nothing")
    with pytest.raises(ValueError, match="would need about 1e\\+03 EB"):
        checks.memory("a fit", 10**21, "nothing")


def test_available_memory_reads_meminfo():
    available = checks.available_memory()
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as handle:
            line = next(line for line in handle if line.startswith("MemAvailable:"))
        assert abs(available - int(line.split()[1]) * 1024) < 2**30  # it moves between reads
