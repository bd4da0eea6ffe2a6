"""Argument checks of the study commands: each error names the option and echoes the value."""

import pytest

from initlab.studies.arguments import check_int, check_number, choice, int_list


def test_int_list_parses_in_order():
    assert int_list("--depths", " 5, 10,50 ", minimum=1) == [5, 10, 50]


@pytest.mark.parametrize("text, match", [
    ("0,5", r"--depths must be an integer >= 1, got 0"),
    ("5,x", r"--depths must be comma-separated integers >= 1, got '5,x'"),
    ("2.5", "comma-separated integers"),
    (",", "at least one"),
    ("5,5", "more than once"),
])
def test_int_list_rejects_bad_text(text, match):
    with pytest.raises(ValueError, match=match):
        int_list("--depths", text, minimum=1)


@pytest.mark.parametrize("value", [0, -3, True, 2.0, "4"])
def test_check_int_rejects_non_integers_and_small_values(value):
    with pytest.raises(ValueError, match="--width must be an integer >= 1"):
        check_int("--width", value, minimum=1)


@pytest.mark.parametrize("value", [0.0, -0.1, float("nan"), float("inf"), "abc"])
def test_check_number_rejects_non_positive_and_non_finite(value):
    with pytest.raises(ValueError, match="--learning-rate"):
        check_number("--learning-rate", value)
    assert check_number("--learning-rate", 0.05) == 0.05


def test_choice_lists_the_choices():
    with pytest.raises(ValueError, match=r"--activation must be one of \['relu', 'tanh'\], "
                                         r"got 'selu'"):
        choice("--activation", "selu", ("relu", "tanh"))
