"""`initlab inits`: the scheme table, printed and in the README, from the registry's metadata."""

import pathlib
import re

from initlab import cli
from initlab.blocks import initializers
from initlab.studies import inits
from initlab.tools import lsuv

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_section():
    text = README.read_text()
    match = re.search(r"^## Initialisation schemes\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "README.md has no '## Initialisation schemes' section"
    return match.group(1)


def test_readme_carries_the_generated_table_exactly():
    # If this fails, paste the output of `initlab inits --markdown` into the README's section.
    assert inits.markdown_table() in _readme_section()


def test_the_table_has_every_registered_scheme_and_lsuv_in_order():
    names = [row[0] for row in inits.rows()]
    assert names == [*initializers.INITIALIZERS, "lsuv"]
    assert inits.rows()[-1][1] == lsuv.FORMULA


def test_library_columns_show_names_notes_and_dashes():
    rows = {row[0]: row for row in inits.rows()}
    assert rows["he_normal"][2] == "he_normal"
    assert rows["he_normal"][3] == "kaiming_normal_ is untruncated"
    assert rows["kaiming_uniform"][2:] == ("he_uniform (at the defaults)", "kaiming_uniform_")
    assert rows["lecun_normal"][3] == "—"
    markdown = inits.markdown_table()
    assert (
        "| `glorot_uniform` | U(±gain · √(6 / (fan_in + fan_out))) | `glorot_uniform` | "
        "`xavier_uniform_` |" in markdown
    )
    assert r"\|Var(z) − 1\|" in markdown  # a literal | is escaped inside a Markdown cell


def test_cli_prints_the_table(capsys):
    assert cli.main(["inits"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == [
        "Scheme",
        "Formula",
        "(W",
        "is",
        "(units,",
        "fan_in))",
        "Keras",
        "PyTorch",
    ]
    starts = [line.split()[0] for line in lines[2:] if line and not line.startswith(" ")]
    for name in [*initializers.INITIALIZERS, "lsuv"]:
        assert name in starts
    assert "0.87962566103423978" in out
    assert max(len(line) for line in lines if "|" not in line) <= 140


def test_cli_markdown_is_the_readme_table(capsys):
    assert cli.main(["inits", "--markdown"]) == 0
    assert capsys.readouterr().out == inits.markdown_table() + "\n"
