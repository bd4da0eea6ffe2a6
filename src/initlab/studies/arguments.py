"""The study commands' one grammar: counts, lists, names, and the options every command shares.

Every command reads its options the same way:
  - a list (--schemes, --depths, --activations, --record-at) is written with spaces, commas or
    both: `--schemes he glorot_uniform`, `--schemes he,glorot_uniform` and
    `--schemes "he, glorot_uniform"` are one list;
  - `--seeds N` is a number of seeds, and `--seed S` the one seed a command's runs derive from;
  - `--quiet` prints nothing but errors (the results are in --out);
  - an unknown name is refused with the names accepted and, when one is close, a did-you-mean.
Each check raises ValueError naming the option, echoing the value and saying what was expected,
so a command rejects bad input in one clear line before any work starts.

    >>> int_list("--depths", "5, 10,20", minimum=1)
    [5, 10, 20]
    >>> int_list("--depths", ["5", "10,20"], minimum=1)
    [5, 10, 20]
    >>> check_int("--width", 64, minimum=1)
    64
    >>> str(unknown_name("--activation", "tahn", ("relu", "tanh")))
    "--activation 'tahn' is not known (did you mean 'tanh'?); expected one of ['relu', 'tanh']"
"""

import difflib
import re
import sys

from initlab import checks

check_int = checks.bounded_integer


# The size options' upper bounds, shared with the sweep specs.
MAX_SEEDS, MAX_EPOCHS = checks.MAX_SEEDS, checks.MAX_EPOCHS
MAX_WIDTH, MAX_DEPTH, MAX_SAMPLES = checks.MAX_WIDTH, checks.MAX_DEPTH, checks.MAX_SAMPLES


def check_memory(what, nbytes, change):
    """Refuse work (`what`, as the options asked for it) whose estimated memory, nbytes, exceeds
    what the machine has available, before any output is created; `change` says which options
    to lower."""
    checks.memory(what, nbytes, change)


# What importing a library adds to a process's resident memory (measured on Linux x86-64 with
# Python 3.11: scikit-learn with SciPy, matplotlib with its fonts), for libraries a command will
# import after it has estimated its memory.
# numba: Numba and llvmlite, SciPy's BLAS bindings and LLVM's code generator with a kernel loaded.
IMPORT_BYTES = {"sklearn": 85 * 10**6, "matplotlib": 30 * 10**6, "numba": 135 * 10**6}


def resident_bytes():
    """The memory this process holds now (its resident set: the interpreter, NumPy, initlab and
    whatever else is imported), or 0 where the system does not say (no /proc)."""
    import os

    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def process_bytes(modules=(), drawing=0):
    """About the memory the process of a command holds besides its study's own data: what it
    holds now, the libraries of `modules` (names in IMPORT_BYTES) not imported yet, and
    `drawing`, the bytes its figures take while drawn and saved.

    A command's estimate of its data alone (12.7 MB for the post's study) is a small part of
    what the process takes (about 260 MB): this is the rest, so that the estimate said and
    checked against the machine's memory is the whole.
    """
    import sys

    later = sum(IMPORT_BYTES[name] for name in modules if name not in sys.modules)
    return resident_bytes() + later + drawing


def check_number(option, value, minimum=0, strict=True):
    """value as a float, if it is finite and > minimum (>= minimum when strict is False)."""
    return checks.number(option, value, minimum=minimum, strict=strict)


def split_list(values):
    """The items of a list option as written: a string or strings, separated by commas or spaces.

    >>> split_list(["he", "glorot_uniform,random_normal:0.01", " lsuv "])
    ['he', 'glorot_uniform', 'random_normal:0.01', 'lsuv']
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [item for value in values for item in re.split(r"[,\s]+", str(value)) if item]


def _as_text(values):
    return values if isinstance(values, str) else " ".join(str(value) for value in values)


def int_list(option, values, minimum):
    """Parse "a,b,c" (or "a b c", or a list of such strings) into distinct integers >= minimum."""
    values_text = _as_text(values)
    parsed = []
    for part in split_list(values):
        try:
            value = int(part)
        except ValueError:
            raise ValueError(
                f"{option} must be integers >= {minimum}, separated by commas or "
                f"spaces, got {values_text!r}"
            ) from None
        parsed.append(check_int(option, value, minimum))
    if not parsed:
        raise ValueError(
            f"{option} must list at least one integer >= {minimum}, got {values_text!r}"
        )
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"{option} lists a value more than once: {values_text!r}")
    return parsed


def unknown_name(what, name, known, hint="", candidates=None):
    """The ValueError for a name that is not one of `known`: lists them, suggests the closest.

    `what` names the option or kind of name ("--activation", "scheme"); `hint` is added after the
    list (where to find more names, say); `candidates` are the names to suggest from, if more
    than those listed (every alias, say).
    """
    known = list(known)
    pool = [str(c) for c in (known if candidates is None else candidates)]
    # Class-style spellings are compared in snake case: HeNormall -> he_normall -> he_normal.
    spelled = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(name)).lower()
    close = difflib.get_close_matches(spelled, pool, n=3, cutoff=0.6)
    suggestion = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return ValueError(f"{what} {name!r} is not known{suggestion}; expected one of {known}{hint}")


def choice(option, value, choices):
    """value, if it is one of choices; else ValueError with a did-you-mean."""
    if value not in choices:
        raise unknown_name(option, value, choices)
    return value


def add_progress(parser):
    """The --no-progress every command with a progress bar takes (the bar goes to the terminal
    only; --quiet hides it too)."""
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="do not show the progress bar"
    )


def add_quiet(parser):
    """The --quiet every command that reports progress takes."""
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print nothing but errors: no progress, no table (the results are "
        "in the output directory)",
    )


def add_jit(parser):
    """--jit and --no-jit: which training path a command runs (default: "auto", compiled where
    Numba is installed and the kernel covers the model, as NeuralNetwork.fit does)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--jit",
        dest="jit",
        action="store_const",
        const=True,
        default="auto",
        help="train with the compiled kernel, or fail saying why not (default: compiled "
        "where Numba is installed, else NumPy)",
    )
    group.add_argument(
        "--no-jit",
        dest="jit",
        action="store_const",
        const=False,
        help="train with the NumPy path, the reference (equal to the compiled one to rounding, "
        "which chaotic runs such as randn x 10 amplify)",
    )


def check_jit(jit_compile):
    """Refuse --jit, before anything is created, where Numba is not installed."""
    if jit_compile is True:
        from initlab.fast import jit

        if not jit.available():
            raise ValueError("--jit " + jit.NEEDS_NUMBA.removeprefix("jit_compile=True "))
    return jit_compile


def printer(quiet):
    """print, or a function that prints nothing when the command runs with --quiet."""
    return _silent if quiet else print


def _silent(*args, **kwargs):
    pass


def kernels_to_compile(models):
    """How many of `models` (one model per kernel a command needs) will compile their kernel
    first, neither loaded nor cached: 0 for a model that trains on NumPy (no Numba, or a layer
    the kernel does not cover)."""
    from initlab.fast import jit

    missing = 0
    for model in models:
        try:
            missing += not jit.is_compiled(model.layers, model.loss, model.dtype)
        except jit.Unsupported:
            pass
    return missing


def say_compiling(say, models):
    """Before training, say that the compiled path will first compile the kernels of `models`
    (kernels_to_compile): a first run on a machine otherwise sits silent for a minute or so for
    each."""
    missing = kernels_to_compile(models)
    if missing == 1:
        say(
            "Compiling the training kernel for this machine: once, a minute or so of CPU; "
            "later runs load it from the cache."
        )
    elif missing:
        say(
            f"Compiling {missing} training kernels for this machine: once, a minute or so of "
            "CPU each; later runs load them from the cache."
        )


# --- the sweep engine's options, shared by every command that runs on it ----------------------
def add_engine_arguments(parser, default="local"):
    """--backend and --scheduler. default="auto" (reproduce's): this process where the runs
    train on the compiled path, whose Ensemble already spreads over every core in threads, so
    that worker processes would add only their start; a process per core otherwise."""
    from initlab.sweeps.engines import BACKENDS

    auto = default == "auto"
    local = "local: a process per core" + ("" if auto else " (default)")
    meaning = f"serial: this process; {local}; dask: a Dask cluster"
    if auto:
        meaning = (
            "auto (default): this process when training compiled (its threads use every core), "
            f"else local; {meaning}"
        )
    parser.add_argument(
        "--backend",
        default=default,
        choices=(("auto",) if auto else ()) + BACKENDS,
        help=meaning,
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --backend dask: an existing scheduler, tcp://host:port "
        "(without it a LocalCluster starts)",
    )


def check_engine_arguments(args, compiled=False):
    """(backend, scheduler), checked; "auto" becomes serial if the runs train `compiled`, else
    local."""
    from initlab.sweeps.engines import BACKENDS

    backend, scheduler = getattr(args, "backend", "local"), getattr(args, "scheduler", None)
    choice("--backend", backend, ("auto",) + BACKENDS)
    if scheduler is not None and backend != "dask":
        raise ValueError(f"--scheduler {scheduler!r} needs --backend dask, got {backend!r}")
    if backend == "auto":
        backend = "serial" if compiled else "local"
    return backend, scheduler


def interrupted(command, stop, what, store, resume=None):
    """After Ctrl-C (stop: sweeps.runner.SweepInterrupted), the one line a command that runs on
    the sweep engine prints: what its store keeps, and how to resume. Returns the exit code."""
    how = f"Resume with: {resume}" if resume else "Resume with the same command."
    print(
        f"\ninitlab {command}: interrupted; {stop.kept} of {stop.total} {what} are kept in "
        f"{store}. {how}",
        file=sys.stderr,
    )
    return 130
