"""The README is what a new user runs: its commands, and every Python block as pasted."""

import math
import os
import pathlib
import re
import subprocess
import sys

import pytest

import initlab

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_readme_starts_with_an_install_and_run_command_and_a_test_command():
    commands = _readme_commands()
    assert len(commands) >= 2
    main_job, tests = commands[:2]
    assert main_job.startswith("python3.11 -m venv .venv") and ".venv/bin/initlab " in main_job
    assert tests.startswith("python3.11 -m venv .venv") and "pytest" in tests


def test_ci_runs_the_readme_test_command_exactly():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


# --- every Python block runs as pasted and prints what the README shows ----------------------

# A ```python block, optionally followed by "It prints:" and the ```text block of its output.
PYTHON_BLOCK = re.compile(
    r"```python\n(.*?)\n```\n(?:\nIt prints:\n\n```text\n(.*?)\n```\n)?", re.DOTALL
)
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
# A compiled kernel's first fit compiles it: tens of seconds on a busy 2-core machine.
BLOCK_TIMEOUT = 300


def _python_blocks():
    text = (ROOT / "README.md").read_text()
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))
        for match in PYTHON_BLOCK.finditer(text)
    ]


def _same_output(printed, shown):
    """Equal text, with numbers equal to 1e-9 relative: BLAS builds may differ in the last bits."""
    printed_lines = [line.rstrip() for line in printed.strip().splitlines()]
    shown_lines = [line.rstrip() for line in shown.strip().splitlines()]
    if len(printed_lines) != len(shown_lines):
        return False
    for ours, theirs in zip(printed_lines, shown_lines):
        if NUMBER.sub("#", ours) != NUMBER.sub("#", theirs):
            return False
        for a, b in zip(NUMBER.findall(ours), NUMBER.findall(theirs), strict=True):
            if not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12):
                return False
    return True


def test_the_readme_shows_python_examples_with_their_output():
    blocks = _python_blocks()
    assert len(blocks) >= 8
    assert sum(output is not None for _, _, output in blocks) >= 8
    sources = "\n".join(code for _, code, _ in blocks)
    for needed in (
        "Ensemble(",
        ".save(",
        "NeuralNetwork.load(",
        "jit_compile=False",
        "Classifier(",
        "Regressor(",
        "def scaled_orthogonal(shape, rng)",
    ):
        assert needed in sources


def test_output_comparison_tells_numbers_apart():
    assert _same_output(
        "{'accuracy': 98.0, 'loss': 0.12138447699002654}\n",
        "{'accuracy': 98.0, 'loss': 0.121384476990026}",
    )
    assert not _same_output("{'accuracy': 97.0}", "{'accuracy': 98.0}")
    assert not _same_output("loss 0.5", "cost 0.5")
    assert not _same_output("1\n2", "1")


@pytest.mark.parametrize(
    "line, code, shown",
    _python_blocks(),
    ids=[f"README line {line}" for line, _, _ in _python_blocks()],
)
def test_readme_python_block_runs_as_pasted(line, code, shown, tmp_path):
    # A fresh interpreter in an empty directory: nothing but the block and the package under test.
    # The inherited PYTHONPATH may be relative (PYTHONPATH=src): made absolute, as the tests see it.
    package_root = str(pathlib.Path(initlab.__file__).resolve().parents[1])
    inherited = [
        os.path.abspath(entry)
        for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if entry
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, *inherited]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, f"README line {line} failed:\n{result.stderr}"
    if shown is not None:
        assert _same_output(result.stdout, shown), (
            f"README line {line} printed\n{result.stdout}\nbut the README shows\n{shown}"
        )
