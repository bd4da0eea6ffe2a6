"""The `initlab` command: dispatch, help and error reporting."""

import sys
import types

import pytest

from initlab import cli


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: initlab" in capsys.readouterr().out


def test_every_command_has_help(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: initlab {name}" in capsys.readouterr().out


def test_value_errors_become_one_line_without_traceback(capsys, monkeypatch):
    command = types.ModuleType("failing_command")
    command.__doc__ = "Always fails."
    command.add_arguments = lambda parser: None

    def run(args):
        raise ValueError("seeds must be >= 1, got 0")

    command.run = run
    monkeypatch.setitem(sys.modules, "failing_command", command)
    monkeypatch.setitem(cli.COMMANDS, "fail", ("failing_command", "always fails"))
    assert cli.main(["fail"]) == 2
    err = capsys.readouterr().err
    assert err == "initlab fail: error: seeds must be >= 1, got 0\n"


def test_a_closed_pipe_ends_quietly(tmp_path):
    # `initlab inits | head -3` closes the pipe early; that is not an error worth a traceback.
    import subprocess

    result = subprocess.run(
        f"{sys.executable} -m initlab.cli inits | head -1", shell=True, capture_output=True,
        text=True, check=False)
    assert result.stdout.startswith("Scheme")
    assert "Traceback" not in result.stderr
