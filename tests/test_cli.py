"""The `initlab` command: dispatch, help and error reporting."""

import errno
import os
import re
import signal
import subprocess
import sys
import types

import pytest

from conftest import default_interrupt
from initlab import checks, cli


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
        f"{sys.executable} -m initlab.cli inits | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.startswith("Scheme")
    assert "Traceback" not in result.stderr


def _failing_command(monkeypatch, error):
    command = types.ModuleType("failing_command")
    command.__doc__ = "Always fails."
    command.add_arguments = lambda parser: None

    def run(args):
        raise error

    command.run = run
    monkeypatch.setitem(sys.modules, "failing_command", command)
    monkeypatch.setitem(cli.COMMANDS, "fail", ("failing_command", "always fails"))


@pytest.mark.parametrize(
    "error, code, line",
    [
        (MemoryError(), cli.EXIT_MEMORY, "out of memory; ask for less"),
        (KeyboardInterrupt(), cli.EXIT_INTERRUPTED, "interrupted"),
        (
            OSError(errno.ENOSPC, "No space left on device", "out/costs.png"),
            cli.EXIT_DISK_FULL,
            r"no space left to write \(out/costs.png\): No space left on device",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "out"),
            cli.EXIT_PERMISSION,
            r"permission denied \(out\): Permission denied",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "out"),
            cli.EXIT_PERMISSION,
            "permission denied",
        ),
        (
            IsADirectoryError(errno.EISDIR, "Is a directory", "out/results.md"),
            cli.EXIT_OS,
            r"Is a directory \(out/results.md\)",
        ),
    ],
)
def test_the_machines_condition_is_one_line_with_its_own_exit_code(
    capsys, monkeypatch, error, code, line
):
    _failing_command(monkeypatch, error)
    assert cli.main(["fail"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("initlab fail: error: ")
    assert re.search(line, err)


def test_the_exit_codes_are_distinct_and_documented():
    codes = {name: value for name, value in vars(cli).items() if name.startswith("EXIT_")}
    assert len(set(codes.values())) == len(codes) == 8
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for value in codes.values():
        assert re.search(rf"^\| {value} \|", readme, re.MULTILINE)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["reproduce", "--seeds", "300000"],
            r"900000 runs of 15000 epochs would need about 30\d GB of memory, more than the 16 GB "
            r"this machine has available; use fewer --seeds or --epochs",
        ),
        (
            ["reproduce", "--epochs", str(10**18)],
            r"--epochs must be an integer in \[1, 1000000000\]",
        ),
        (["reproduce", "--seeds", "0"], "--seeds must be an integer >= 1, got 0"),
        (["deep", "--width", "100000"], r"--width must be an integer in \[1, 65536\], got 100000"),
        (
            ["deep", "--width", "20000", "--depths", "5"],
            "a network of depth 5 and width 20000 would need about .* use a smaller --width",
        ),
        (["deep", "--depths", "5,100000"], r"--depths must be an integer in \[1, 10000\]"),
        (["diagnose", "--width", "30000"], "8 networks of depth 20 and width 30000 would need"),
        (["diagnose", "--samples", str(10**9)], r"--samples must be an integer in \[2, 1348\]"),
    ],
)
def test_impossible_requests_fail_before_any_output_exists(
    tmp_path, capsys, monkeypatch, argv, message
):
    # As on a machine with 16 GB free, whatever this one has.
    monkeypatch.setattr(checks, "available_memory", lambda: 16 * 10**9)
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not out.exists()


def test_ctrl_c_ends_a_study_with_one_line_and_code_130(tmp_path):
    import signal
    import subprocess

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "initlab.cli",
            "reproduce",
            "--seeds",
            "2",
            "--epochs",
            str(10**7),
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONFAULTHANDLER": "1"},
        preexec_fn=default_interrupt,
    )
    first = process.stdout.readline()  # the study has started
    assert first.startswith("Training 3 schemes x 2 seeds")
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # Still running: faulthandler (PYTHONFAULTHANDLER) prints where every thread is.
        process.send_signal(signal.SIGABRT)
        _, err = process.communicate(timeout=30)
        pytest.fail(f"a SIGINT did not end the study within 60 s; its threads:\n{err}")
    assert process.returncode == cli.EXIT_INTERRUPTED
    # The signal lands before the store exists (nothing to resume) or after (what it keeps): a
    # few milliseconds apart, so either, but one line and no traceback.
    out = tmp_path / "out"
    assert err.strip() in (
        "initlab reproduce: error: interrupted",
        f"initlab reproduce: interrupted; 0 of 6 runs are kept in {out / 'sweep.db'}. "
        f"Resume with: initlab reproduce --seeds 2 --epochs {10**7} --out {out} --no-progress",
    )


@pytest.mark.parametrize(
    "argv, line",
    [
        # A misspelt option: named with what was given, and the closest option offered.
        (
            ["reproduce", "--seeds", "3", "--epoch", "10"],
            "initlab reproduce: error: option '--epoch' is not known (did you mean '--epochs'?); "
            "expected one of ['--help', '--seeds', '--epochs', '--schemes', '--seed', '--out', "
            "'--force', '--jit', '--no-jit', '--backend', '--scheduler', '--no-progress', "
            "'--quiet']; got '--epoch 10'",
        ),
        (["reproduce", "--epoch=10"], "(did you mean '--epochs'?)"),
        (
            ["reprodce"],
            "initlab: error: command 'reprodce' is not known (did you mean 'reproduce'?); "
            "expected one of ['reproduce', 'diagnose', 'deep', 'inits', 'serve', 'theory', "
            "'trainability', 'sweep']",
        ),
        (["reproduce", "--seeds"], "initlab reproduce: error: --seeds needs a value"),
        (["reproduce", "--seeds", "abc"], "--seeds must be an integer, got 'abc'"),
        (["reproduce", "--seeds", "2.5"], "--seeds must be an integer, got '2.5'"),
        (
            ["deep", "--learning-rate", "x", "--out", "o"],
            "--learning-rate must be a number, got 'x'",
        ),
        (
            ["deep", "--backend", "loca", "--out", "o"],
            "initlab deep: error: --backend 'loca' is not known (did you mean 'local'?); "
            "expected one of ['serial', 'local', 'dask']",
        ),
        (["deep", "--schemes"], "--schemes needs at least one value"),
        (["diagnose"], "initlab diagnose: error: --out is required"),
        (["reproduce", "--force=yes"], "--force takes no value, got 'yes'"),
        (["inits", "table"], "initlab inits: error: unexpected argument 'table'"),
    ],
)
def test_a_malformed_command_line_is_one_line_with_exit_code_2(tmp_path, capsys, argv, line):
    # No usage block, no argparse wording: one line, as every other error.
    assert cli.main(argv) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and line in captured.err, captured.err
    assert "usage:" not in captured.err


def test_abbreviated_options_are_not_guessed(capsys):
    # argparse would read --seed as --seeds where only --seeds exists, --epoch as --epochs.
    assert cli.main(["theory", "--pair", "3", "--out", "o"]) == cli.EXIT_USAGE
    assert "option '--pair' is not known (did you mean '--pairs'?)" in capsys.readouterr().err


def test_the_program_exits_with_mains_code_and_skips_the_last_collections(monkeypatch):
    import gc
    import tomllib
    from pathlib import Path

    import initlab.cli

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["initlab"] == "initlab.cli:command"
    monkeypatch.setattr(initlab.cli, "main", lambda argv=None: 3)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as stop:
            initlab.cli.command([])
        assert stop.value.code == 3 and gc.get_freeze_count() > 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the work is done
    finally:
        gc.unfreeze()
        signal.signal(signal.SIGINT, handler)


def test_a_ctrl_c_while_python_shuts_down_after_a_command_is_silent():
    # A SIGINT that lands after the command's last line, while Python exits, printed a
    # traceback of whatever it interrupted and no one line.
    code = (
        "import atexit, os, signal\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))\n"
        "import initlab.cli\n"
        "initlab.cli.command(['inits'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=default_interrupt,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert "he_normal" in done.stdout
