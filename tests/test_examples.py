"""The example notebook runs from top to bottom (with fewer epochs), so it never rots.

About 5 s: most of it is starting a fresh kernel and importing matplotlib and scikit-learn in it.
"""

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "initialization.ipynb"


def _text(cell):
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/markdown", ""))
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def test_the_notebook_runs_headless_and_tells_the_posts_story(monkeypatch):
    # The first cell reads these: 200 epochs and 2 seeds instead of the post's 15000 and 10.
    monkeypatch.setenv("INITLAB_EPOCHS", "200")
    monkeypatch.setenv("INITLAB_SEEDS", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the inline backend takes over inside the kernel
    # The kernel runs in examples/, so it finds this checkout's initlab by an absolute path.
    path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(_text(cell) for cell in code)
    assert "Epochs: 199 - Cost:" in text
    assert "Train {'accuracy': 50.0" in text and "Test {'accuracy': 50.0" in text
    images = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert images == 9  # the data, 3 x (cost, boundary), then the study's cost and boundaries
    assert "| He |" in text and "| Zeros | 50.0 [50.0, 50.0]" in text


def test_the_stored_notebook_was_run_in_full():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "Epochs: 14999 - Cost:" in text
    assert not any(
        output["output_type"] == "error"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


SIGNAL_NOTEBOOK = ROOT / "examples" / "signal_propagation.ipynb"


def test_the_signal_propagation_notebook_runs_and_tells_its_story(monkeypatch):
    # Narrower networks and a coarser phase diagram than the stored run (width 256, 40 cells).
    monkeypatch.setenv("INITLAB_WIDTH", "64")
    monkeypatch.setenv("INITLAB_RESOLUTION", "8")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    notebook = nbformat.read(SIGNAL_NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(SIGNAL_NOTEBOOK.parent)}},
    )
    client.execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "\n".join(_text(cell) for cell in code)
    assert "| zeros | 20 | 0 | 0 |" in text  # zeros: no signal at all
    assert "| He | 20 | 2 |" in text  # He: q stays at σ_w² q0 = 2
    assert "He           σ_w² = 2        χ1 = 1" in text  # relu: on the edge
    assert "[1.         1.76095464 1.98607264]" in text  # tanh's edge at σ_b² = 0, .05, .1
    assert "tanh, He: χ1 = 1.1055" in text
    images = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert images == 2


def test_the_stored_signal_propagation_notebook_was_run_in_full():
    notebook = nbformat.read(SIGNAL_NOTEBOOK, as_version=4)
    text = "\n".join(_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "20 relu layers of 256 units" in text
    assert not any(
        output["output_type"] == "error"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_the_stored_single_runs_agree_with_the_notebooks_text():
    # The text says large values do worse than He in this (seeded) run, and that a single run can
    # go either way, which the many-seed table then settles.
    import re

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    outputs = [_text(cell) for cell in notebook.cells if cell.cell_type == "code"]
    runs = [
        [float(a) for a in re.findall(r"\{'accuracy': ([0-9.]+)", text)]
        for text in outputs
        if "Train {'accuracy'" in text
    ]
    zeros, large, he = runs
    assert zeros == [50.0, 50.0]
    assert large[0] < he[0] and large[1] < he[1]
    prose = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "np.random.seed(4)" in "\n".join(c.source for c in notebook.cells)
    assert "A single\n  run can go either way" in prose and "| He |" in "\n".join(outputs)
