"""The `initlab` command: parses arguments and hands them to a study. No logic lives here.

Each subcommand is a module with `add_arguments(parser)` and `run(args) -> int`; COMMANDS lists
them, so a new study adds one line here.
"""

import argparse
import errno
import importlib
import os
import sys

# name -> (module, one-line help)
COMMANDS = {
    "reproduce": (
        "initlab.studies.reproduce",
        "the post's study over many seeds: figures, table and histories",
    ),
    "diagnose": ("initlab.studies.diagnose", "per-layer signals of deep MLPs: why a scheme fails"),
    "deep": ("initlab.studies.deep", "MLPs of depth 5 to 50 on digits: accuracy and signal scale"),
    "inits": ("initlab.studies.inits", "list every initialisation scheme and its library names"),
    "serve": ("initlab.serve.command", "the explorer: train and watch in the browser (local page)"),
    "theory": (
        "initlab.studies.theory",
        "mean-field signal propagation: phase diagram, theory over measured networks",
    ),
    "trainability": (
        "initlab.studies.trainability",
        "depth x σ_w² for tanh on digits: which networks train, beside the theory's 6 ξ_c",
    ),
    "sweep": (
        "initlab.studies.sweep",
        "a grid of training runs from a TOML spec, resumable, on local cores or Dask",
    ),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="initlab",
        description="Study how weight initialisation changes what a neural network learns.",
    )
    from initlab import __version__

    parser.add_argument("--version", action="version", version=f"initlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=module.__doc__.split("\n")[0])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


# Exit codes, one per kind of failure, so that a script can tell them apart (README lists them).
EXIT_OK = 0
EXIT_BROKEN_PIPE = 1  # the reader of the output went away (`initlab inits | head`)
EXIT_USAGE = 2  # a bad option or input (as argparse exits for a malformed command line)
EXIT_MEMORY = 3  # the machine ran out of memory
EXIT_DISK_FULL = 4  # no space left on the device (or over quota)
EXIT_PERMISSION = 5  # not allowed to read or write a file, or a read-only file system
EXIT_OS = 6  # any other failure of the file system or the OS (a path that is a directory, ...)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


def main(argv=None):
    """Run the command line; return its exit code. Every failure is one line on stderr, never a
    traceback: a user's error and the machine's condition (memory, disk, permission, Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE

    def fail(code, message):
        print(f"initlab {args.command}: error: {message}", file=sys.stderr)
        return code

    try:
        return args.run(args) or EXIT_OK
    except ValueError as error:
        # Bad input reaches the user as one clear line, not a traceback.
        return fail(EXIT_USAGE, error)
    except BrokenPipeError:
        # The reader went away (`initlab inits | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        return fail(
            EXIT_MEMORY,
            "out of memory; ask for less (fewer seeds, epochs, a smaller "
            "width or depth), or free memory",
        )
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted")
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        reason = error.strerror or str(error)
        if error.errno in _DISK_FULL:
            return fail(EXIT_DISK_FULL, f"no space left to write{where}: {reason}")
        if error.errno in _PERMISSION:
            return fail(EXIT_PERMISSION, f"permission denied{where}: {reason}")
        return fail(EXIT_OS, f"{reason}{where}")


if __name__ == "__main__":
    sys.exit(main())
