"""The README's two commands are what a new user runs; CI must run the second one exactly."""

import pathlib
import re

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
