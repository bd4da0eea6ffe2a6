"""Where a study writes: a checked output directory, and tables as markdown, CSV and JSON.

The directory is checked before any work starts, so a long run never fails at its last step:
it must be creatable and writable, and an existing non-empty directory is only reused with
force=True (its files of the same names are then replaced; other files are left alone).

    >>> import tempfile, os
    >>> out = prepare_out_dir(os.path.join(tempfile.mkdtemp(), "run"), force=False)
    >>> paths = write_table([{"scheme": "he", "ratio": 0.91}], out, "summary",
    ...                     columns=[("scheme", "Scheme", "s"), ("ratio", "Ratio", ".3g")])
    >>> print(open(paths[0]).read().strip())
    | Scheme | Ratio |
    |---|---|
    | he | 0.91 |
"""

import csv
import json
import math
import os
import tempfile


def prepare_out_dir(path, force=False):
    """Check that `path` can take a study's files, create it, and return it.

    Raises ValueError (naming --out) if path exists but is not a directory, if it is a non-empty
    directory and force is False, or if it (or the directory it would be created in) is not
    writable. Nothing is written before every check has passed.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"--out must be a directory path, got {path!r}")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"--out {path!r} exists and is not a directory")
        if os.listdir(path) and not force:
            raise ValueError(f"--out {path!r} already holds files; pass --force to replace them, "
                             f"or choose another directory")
        _check_writable(path, path)
        return path
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"--out {path!r} cannot be created: {ancestor!r} is not a directory")
    _check_writable(ancestor, path)
    try:
        os.makedirs(path)
    except OSError as error:
        raise ValueError(f"--out {path!r} cannot be created ({error.strerror})") from None
    return path


def _check_writable(directory, path):
    # os.access answers for the real uid and ignores some mounts; a real file settles it.
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise ValueError(f"--out {path!r} is not writable ({error.strerror})") from None


def write_table(rows, out_dir, stem, columns):
    """Write rows (dicts) as stem.md, stem.csv and stem.json in out_dir; return the three paths.

    columns : list of (key, header, format spec) for the markdown table, e.g. ("ratio", "Ratio",
    ".3g"). CSV and JSON keep every key of the rows at full precision; JSON writes a
    non-finite number (nan, inf) as null, CSV and markdown as nan or inf. None is left blank.
    """
    paths = [os.path.join(out_dir, f"{stem}.{ext}") for ext in ("md", "csv", "json")]
    _write_text(paths[0], markdown_table(rows, columns) + "\n")
    keys = list(rows[0]) if rows else [key for key, _, _ in columns]
    with open(paths[1], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in keys})
    _write_text(paths[2], json.dumps([_json_ready(row) for row in rows], indent=1,
                                     allow_nan=False) + "\n")
    return paths


def markdown_table(rows, columns):
    """A markdown table of rows (dicts) with columns (key, header, format spec)."""
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_format(row.get(key), spec) for key, _, spec in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format(value, spec):
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)
