"""Output directories are checked before any work and never silently overwritten; tables are
written as markdown, CSV and JSON with the same content."""

import csv
import json
import math
import os

import pytest

from initlab.studies.output import markdown_table, prepare_out_dir, write_atomic, write_table

OUTPUTS = ["summary.md", "figure.png"]


def test_a_new_directory_is_created_with_its_parents(tmp_path):
    path = prepare_out_dir(tmp_path / "a" / "b", False, OUTPUTS)
    assert os.path.isdir(path) and path == str(tmp_path / "a" / "b")


def test_an_empty_existing_directory_is_used(tmp_path):
    assert prepare_out_dir(tmp_path, False, OUTPUTS) == str(tmp_path)


def test_earlier_results_need_force_and_are_left_alone_without_it(tmp_path):
    (tmp_path / "summary.md").write_text("old")
    with pytest.raises(ValueError, match=r"already holds results \(summary.md\); pass --force"):
        prepare_out_dir(tmp_path, False, OUTPUTS)
    assert (tmp_path / "summary.md").read_text() == "old"
    assert prepare_out_dir(tmp_path, True, OUTPUTS) == str(tmp_path)


def test_a_directory_holding_only_other_files_is_used_and_they_are_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert prepare_out_dir(tmp_path, False, OUTPUTS) == str(tmp_path)
    write_atomic(tmp_path / "summary.md", "new")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "third")
    assert target.read_text() == "second"
    assert os.listdir(tmp_path) == ["results.json"]


def test_a_path_that_cannot_be_a_directory_is_rejected_without_creating_anything(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        prepare_out_dir(blocker, True, OUTPUTS)
    with pytest.raises(ValueError, match="cannot be created"):
        prepare_out_dir(blocker / "sub" / "dir", False, OUTPUTS)
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root can write into read-only directories"
)
def test_a_read_only_parent_is_rejected(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            prepare_out_dir(locked / "out", False, OUTPUTS)
    finally:
        locked.chmod(0o700)


ROWS = [
    {"scheme": "he", "ratio": 0.912345, "dead": None},
    {"scheme": "random_normal:10", "ratio": float("inf"), "dead": 0.25},
]
COLUMNS = [("scheme", "Scheme", "s"), ("ratio", "Ratio", ".3g"), ("dead", "Dead", ".0%")]


def test_markdown_formats_each_column_and_leaves_none_blank():
    assert markdown_table(ROWS, COLUMNS).splitlines() == [
        "| Scheme | Ratio | Dead |",
        "|---|---|---|",
        "| he | 0.912 |  |",
        "| random_normal:10 | inf | 25% |",
    ]


def test_the_three_files_hold_the_same_rows(tmp_path):
    md, csv_path, json_path = write_table(ROWS, str(tmp_path), "summary", COLUMNS)
    assert [os.path.basename(p) for p in (md, csv_path, json_path)] == [
        "summary.md",
        "summary.csv",
        "summary.json",
    ]
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {"scheme": "he", "ratio": "0.912345", "dead": ""}
    assert math.isinf(float(rows[1]["ratio"]))
    with open(json_path) as handle:
        data = json.load(handle)
    # JSON has no inf: non-finite numbers become null.
    assert data == [
        {"scheme": "he", "ratio": 0.912345, "dead": None},
        {"scheme": "random_normal:10", "ratio": None, "dead": 0.25},
    ]


def test_staged_replaces_the_set_as_a_whole_or_not_at_all(tmp_path):
    from initlab.studies.output import staged, staging_dir

    out = tmp_path / "study"
    out.mkdir()
    (out / "table.md").write_text("old table")
    (out / "figure.png").write_bytes(b"old figure")
    (out / "notes.txt").write_text("the user's")
    # Interrupted while writing: nothing of the new set reaches out.
    with pytest.raises(KeyboardInterrupt):
        with staged(out) as stage:
            (tmp_path / ".study.new" / "table.md").write_text("new table")
            assert stage == str(tmp_path / ".study.new")
            raise KeyboardInterrupt
    assert (out / "table.md").read_text() == "old table"
    assert not os.path.exists(staging_dir(out))
    with staged(out) as stage:
        for name, text in (("table.md", "new table"), ("figure.png", "new figure")):
            with open(os.path.join(stage, name), "w") as handle:
                handle.write(text)
    assert sorted(os.listdir(out)) == ["figure.png", "notes.txt", "table.md"]
    assert (out / "figure.png").read_text() == "new figure"
    assert (out / "notes.txt").read_text() == "the user's"
    assert not os.path.exists(staging_dir(out))


def test_a_set_marked_complete_is_swapped_in_after_a_kill(tmp_path):
    from initlab.studies.output import COMPLETE, recover_staged, staging_dir

    out = tmp_path / "study"
    out.mkdir()
    (out / "table.md").write_text("old table")
    (out / "figure.png").write_text("new figure")  # moved before the kill
    stage = staging_dir(out)
    os.makedirs(stage)
    with open(os.path.join(stage, "table.md"), "w") as handle:
        handle.write("new table")
    with open(os.path.join(stage, COMPLETE), "w") as handle:
        handle.write("figure.png\ntable.md")
    recover_staged(out)
    assert (out / "table.md").read_text() == "new table"
    assert not os.path.exists(stage)
    os.makedirs(stage)  # never marked complete: discarded
    with open(os.path.join(stage, "table.md"), "w") as handle:
        handle.write("half")
    recover_staged(out)
    assert (out / "table.md").read_text() == "new table" and not os.path.exists(stage)
