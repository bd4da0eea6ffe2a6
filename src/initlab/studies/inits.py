"""Print every initialisation scheme: its formula, and its names in Keras and PyTorch.

The table is generated from the registry's metadata (initializers.INITIALIZERS, plus LSUV), and
the README's "Initialisation schemes" table is this module's `--markdown` output, so the two
cannot drift apart (tests/test_inits.py checks it).

    initlab inits              # a plain-text table
    initlab inits --markdown   # the README's table
"""

import textwrap

from initlab.blocks import initializers
from initlab.tools import lsuv

HEADER = ("Scheme", "Formula (W is (units, fan_in))", "Keras", "PyTorch")


def rows(code=lambda name: name):
    """(scheme, formula, Keras, PyTorch) for every scheme, in the registry's order, then LSUV.

    `code` formats a name (the Markdown table puts it in backticks). A library column lists the
    names that resolve to the scheme and behave as there, with a note in parentheses where the
    library differs, or the equivalent call when it has no name for the scheme.
    """
    table = []
    for scheme in initializers.INITIALIZERS.values():
        table.append(
            (
                code(scheme.name),
                scheme.formula,
                _library_cell(scheme.keras, scheme.keras_note, code),
                _library_cell(scheme.pytorch, scheme.pytorch_note, code),
            )
        )
    table.append((code("lsuv"), lsuv.FORMULA, "—", "—"))
    return table


def _library_cell(names, note, code):
    cell = ", ".join(code(name) for name in names)
    if note:
        cell = f"{cell} ({note})" if cell else note
    return cell or "—"


def text_table(widths=(16, 45, 34, 30)):
    """The table as plain text, each cell wrapped to its column's width (a terminal's width)."""
    lines = []
    for index, row in enumerate([HEADER, *rows()]):
        wrapped = [
            textwrap.wrap(cell, width, break_long_words=False, break_on_hyphens=False) or [""]
            for cell, width in zip(row, widths)
        ]
        for depth in range(max(len(cell) for cell in wrapped)):
            parts = [cell[depth] if depth < len(cell) else "" for cell in wrapped]
            lines.append("  ".join(p.ljust(w) for p, w in zip(parts, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    notation = textwrap.fill(initializers.FORMULA_NOTATION, sum(widths) + 2 * (len(widths) - 1))
    return "\n".join(lines) + "\n\n" + notation


def markdown_table():
    def cells(row):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"

    lines = [cells(HEADER), "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += [cells(row) for row in rows(code=lambda name: f"`{name}`")]
    return "\n".join(lines) + "\n\n" + initializers.FORMULA_NOTATION


def add_arguments(parser):
    parser.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown (the README's table)"
    )


def run(args):
    print(markdown_table() if args.markdown else text_table())
    return 0
