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
import sys
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    # Only pyplot's figures need closing (pyplot keeps them); importing it for one made with
    # plots.new_figure would load pyplot's backends for nothing.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)
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
    write_atomic(
        paths[2], json.dumps([_json_ready(row) for row in rows], indent=1, allow_nan=False) + "\n"
    )
    return paths


def markdown_table(rows, columns):
    """A markdown table of rows (dicts) with columns (key, header, format spec)."""
    lines = [
        "| " + " | ".join(header for _, header, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
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


# --- a set of files replaced as a whole ---------------------------------------------------------
COMPLETE = ".complete"


def staging_dir(out_dir):
    """The sibling directory where a new set of out_dir's files is written before it is swapped in
    (beside out_dir, so on the same file system: the swap is renames)."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    return os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.new")


class staged:
    """A context that swaps a set of files into out_dir as a whole, or leaves it as it was.

        with staged(out_dir) as stage:
            write_table(rows, stage, "summary", columns)      # every writer writes into stage
        # here out_dir holds the new set; an exception or a kill before here left the old one

    The files go to a sibling directory (staging_dir); once all are written it is marked
    complete, then each file is renamed into out_dir with Ctrl-C held back for those few
    renames. A process killed after the mark leaves a complete set beside out_dir:
    recover_staged(out_dir), called when the command starts again, finishes the swap; a set
    never marked complete is discarded. Files of out_dir that the set does not hold are left.
    """

    def __init__(self, out_dir):
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.stage = staging_dir(self.out_dir)

    def __enter__(self):
        recover_staged(self.out_dir)
        os.makedirs(self.stage)
        return self.stage

    def __exit__(self, kind, error, traceback):
        if kind is not None:
            _remove_tree(self.stage)
            return False
        write_atomic(
            os.path.join(self.stage, COMPLETE),
            "\n".join(sorted(name for name in os.listdir(self.stage) if not name.startswith("."))),
        )
        _swap_in(self.stage, self.out_dir)
        return False


def recover_staged(out_dir):
    """Finish a swap that a killed process marked complete; discard an incomplete set."""
    stage = staging_dir(out_dir)
    if not os.path.isdir(stage):
        return
    if os.path.exists(os.path.join(stage, COMPLETE)):
        _swap_in(stage, os.path.abspath(os.fspath(out_dir)))
    else:
        _remove_tree(stage)


def _swap_in(stage, out_dir):
    from initlab.interrupts import held_interrupt

    with open(os.path.join(stage, COMPLETE)) as handle:
        names = [name for name in handle.read().split("\n") if name]
    with held_interrupt():  # a Ctrl-C now would leave half the set: it waits for the renames
        for name in names:
            if os.path.exists(os.path.join(stage, name)):  # else moved before a kill
                os.replace(os.path.join(stage, name), os.path.join(out_dir, name))
        _remove_tree(stage)


def _remove_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
