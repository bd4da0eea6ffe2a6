"""Argument checks of the study commands: each error names the option and echoes the value."""

import numpy as np
import pytest

from initlab.studies import arguments
from initlab.studies.arguments import (
    check_int,
    check_number,
    choice,
    int_list,
    printer,
    split_list,
    unknown_name,
)


def test_int_list_parses_in_order():
    assert int_list("--depths", " 5, 10,50 ", minimum=1) == [5, 10, 50]
    # Spaces and commas alike, as argparse hands over nargs="+" values.
    assert int_list("--depths", ["5", "10,50"], minimum=1) == [5, 10, 50]
    assert int_list("--depths", "5 10 50", minimum=1) == [5, 10, 50]


def test_split_list_takes_commas_spaces_and_both():
    expected = ["he", "glorot_uniform", "random_normal:0.01"]
    for written in (
        ["he", "glorot_uniform", "random_normal:0.01"],
        "he,glorot_uniform,random_normal:0.01",
        ["he, glorot_uniform", "random_normal:0.01"],
        "he glorot_uniform ,random_normal:0.01",
    ):
        assert split_list(written) == expected
    assert split_list(None) == [] and split_list(" , ") == []


@pytest.mark.parametrize(
    "text, match",
    [
        ("0,5", r"--depths must be an integer >= 1, got 0"),
        ("5,x", r"--depths must be integers >= 1, separated by commas or spaces, got '5,x'"),
        ("2.5", "separated by commas or spaces"),
        (",", "at least one"),
        ("5,5", "more than once"),
    ],
)
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


def test_choice_lists_the_choices_and_suggests_the_closest():
    with pytest.raises(
        ValueError,
        match=r"^--activation 'selu' is not known \(did you mean "
        r"'relu'\?\); expected one of \['relu', 'tanh'\]$",
    ):
        choice("--activation", "selu", ("relu", "tanh"))
    with pytest.raises(ValueError, match=r"^--activation 'softmax' is not known; expected"):
        choice("--activation", "softmax", ("relu", "tanh"))
    assert choice("--activation", "tanh", ("relu", "tanh")) == "tanh"


def test_unknown_name_suggests_from_candidates_and_reads_class_spellings():
    error = unknown_name(
        "scheme",
        "HeNormall",
        ["he_normal", "zeros"],
        candidates=["he_normal", "kaiming_normal_", "zeros"],
        hint=" (see inits)",
    )
    assert str(error) == (
        "scheme 'HeNormall' is not known (did you mean 'he_normal'?); "
        "expected one of ['he_normal', 'zeros'] (see inits)"
    )
    assert "did you mean 'kaiming_normal_'" in str(
        unknown_name("scheme", "kaiming_normal", ["he"], candidates=["kaiming_normal_"])
    )


def test_printer_is_silent_when_quiet(capsys):
    printer(True)("hidden")
    printer(False)("shown")
    assert capsys.readouterr().out == "shown\n"


def test_process_bytes_adds_what_is_held_what_is_still_to_import_and_the_drawing(monkeypatch):
    monkeypatch.setattr(arguments, "resident_bytes", lambda: 40 * 10**6)
    # numpy is imported already: it is in the resident memory, not counted again.
    monkeypatch.setattr(arguments, "IMPORT_BYTES", {"numpy": 10**9, "no_such_library_yet": 7})
    assert arguments.process_bytes(("numpy", "no_such_library_yet"), drawing=3) == 40 * 10**6 + 10


def test_resident_bytes_is_what_the_kernel_reports():
    import os

    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads Linux's /proc")
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    reported = int(status["VmRSS"].split()[0]) * 1024
    assert abs(arguments.resident_bytes() - reported) < 0.05 * reported


def test_auto_backend_is_this_process_when_compiled_and_a_pool_otherwise():
    import argparse

    parser = argparse.ArgumentParser()
    arguments.add_engine_arguments(parser, default="auto")
    args = parser.parse_args([])
    assert args.backend == "auto"
    assert arguments.check_engine_arguments(args, compiled=True) == ("serial", None)
    assert arguments.check_engine_arguments(args, compiled=False) == ("local", None)
    given = parser.parse_args(["--backend", "local"])
    assert arguments.check_engine_arguments(given, compiled=True) == ("local", None)
    # The error names the backend as given, not what auto would have chosen.
    with pytest.raises(
        ValueError, match="--scheduler 'tcp://h:1' needs --backend dask, got 'auto'"
    ):
        arguments.check_engine_arguments(
            parser.parse_args(["--scheduler", "tcp://h:1"]), compiled=True
        )
    # A command whose default is local offers no auto.
    plain = argparse.ArgumentParser()
    arguments.add_engine_arguments(plain)
    assert plain.parse_args([]).backend == "local"
    with pytest.raises(SystemExit):
        plain.parse_args(["--backend", "auto"])


def test_say_compiling_counts_the_kernels_neither_loaded_nor_cached(new_machine, monkeypatch):
    from initlab import Dense, NeuralNetwork
    from initlab.blocks import activations

    jit = new_machine

    def model(activation):
        network = NeuralNetwork(seed=0)
        network.add(Dense(4, activation))
        network.add(Dense(1, "sigmoid"))
        network.compile(loss="crossentropy")
        return network

    said = []
    arguments.say_compiling(said.append, [model("tanh")])
    arguments.say_compiling(said.append, [model("tanh"), model("relu")])
    assert said[0].startswith("Compiling the training kernel for this machine: once")
    assert said[1].startswith("Compiling 2 training kernels for this machine: once")

    # Nothing to say for a model the kernel does not cover (it trains on NumPy), nor without
    # Numba.
    class Doubled(activations.Activation):  # NumPy runs it; the kernel has nothing to write
        def forward(self, z, out=None):
            return np.multiply(z, 2.0, out=out)

        def backward(self, z, a, grad_a, out=None):
            return np.multiply(grad_a, 2.0, out=out)

    uncovered = model("tanh")
    uncovered.layers[0].activation = Doubled()
    arguments.say_compiling(said.append, [uncovered])
    monkeypatch.setattr(jit, "numba", None)
    arguments.say_compiling(said.append, [model("relu")])
    assert len(said) == 2
