"""Where a study writes: a checked output directory, and tables as markdown, CSV and JSON.

The directory is checked before any work starts, so a long run never fails at its last step:
it must be creatable and writable, and results of an earlier run in it are only replaced with
force=True; other files are never touched. Every file is written atomically.

    >>> import tempfile, os
    >>> out = prepare_out_dir(os.path.join(tempfile.mkdtemp(), "run"), False, ["summary.md"])
    >>> paths = write_table([{"scheme": "he", "ratio": 0.91}], out, "summary",
    ...                     columns=[("scheme", "Scheme", "s"), ("ratio", "Ratio", ".3g")])
    >>> print(open(paths[0]).read().strip())
    | Scheme | Ratio |
    |---|---|
    | he | 0.91 |
"""

import csv
import io
import json
import math
import os
import tempfile


def prepare_out_dir(path, force, outputs):
    """Check that `path` can take a study's files, create it, and return it.

    outputs : the names of the files the command writes. Without force, the run is refused only
    if one of them is already there (a previous run's results); with force those are replaced.
    Other files in the directory are never touched, so --force cannot cost a user their own files.
    Raises ValueError (naming --out) if path exists but is not a directory, if results are there
    and force is False, or if the directory cannot be created or written. Nothing is written
    before every check has passed.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"--out must be a directory path, got {path!r}")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"--out {path!r} exists and is not a directory")
        existing = [name for name in outputs if os.path.exists(os.path.join(path, name))]
        if existing and not force:
            raise ValueError(
                f"--out {path!r} already holds results ({', '.join(existing)}); pass --force to "
                f"replace them (other files in it are left alone), or choose another --out"
            )
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


def write_atomic(path, data):
    """Write bytes or text to `path` completely, or not at all.

    The data go to a temporary file beside the destination, renamed over it once complete, so an
    interrupted run never leaves a half-written file in place of a good one. open(..., "xb")
    keeps the user's umask (mkstemp would make the file private).
    """
    if isinstance(data, str):
        data = data.encode()
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_figure(figure, path, dpi=120):
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())


def write_table(rows, out_dir, stem, columns):
    """Write rows (dicts) as stem.md, stem.csv and stem.json in out_dir; return the three paths.

    columns : list of (key, header, format spec) for the markdown table, e.g. ("ratio", "Ratio",
    ".3g"). CSV and JSON keep every key of the rows at full precision; JSON writes a
    non-finite number (nan, inf) as null, CSV and markdown as nan or inf. None is left blank.
    """
    paths = [os.path.join(out_dir, f"{stem}.{ext}") for ext in ("md", "csv", "json")]
    write_atomic(paths[0], markdown_table(rows, columns) + "\n")
    keys = list(rows[0]) if rows else [key for key, _, _ in columns]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in keys})
    write_atomic(paths[1], table.getvalue())
    write_atomic(paths[2], json.dumps([_json_ready(row) for row in rows], indent=1,
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
