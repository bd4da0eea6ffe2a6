"""The `initlab` command: parses arguments and hands them to a study. No logic lives here.

Each subcommand is a module with `add_arguments(parser)` and `run(args) -> int`; COMMANDS lists
them, so a new study adds one line here.
"""

import argparse
import errno
import gc
import importlib
import os
import re
import signal
import sys
import threading

from initlab.studies.arguments import unknown_name

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


class UsageError(Exception):
    """A malformed command line, said in one line: `prog` is the (sub)command it belongs to."""

    def __init__(self, prog, message):
        super().__init__(message)
        self.prog = prog


class _ClearError(argparse.ArgumentError):
    """An ArgumentError whose message is already a whole sentence naming the option."""


class Parser(argparse.ArgumentParser):
    """argparse, with every error one line in initlab's words (UsageError, never a usage block
    and an exit), a did-you-mean for unknown names, and no abbreviated options: `--seed` must
    never silently mean `--seeds`, nor `--epoch` anything but an unknown option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse calls this from inside its `except ArgumentError`: the error is at hand.
        error = sys.exc_info()[1]
        if isinstance(error, argparse.ArgumentError):
            message = _argument_message(error)
        else:
            required = re.fullmatch(r"the following arguments are required: (.+)", message)
            if required:
                names = required.group(1)
                message = f"{names} {'are' if ',' in names else 'is'} required"
        raise UsageError(self.prog, message)

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            what = "command" if action.dest == "command" else _option_name(action)
            message = str(unknown_name(what, value, list(action.choices)))
            raise _ClearError(action, message)

    def _get_value(self, action, arg_string):
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError:
            expected = _EXPECTED_TYPES.get(action.type)
            if expected is None:
                raise
            raise _ClearError(
                action, f"{_option_name(action)} must be {expected}, got {arg_string!r}"
            ) from None


_EXPECTED_TYPES = {int: "an integer", float: "a number"}


def _option_name(action):
    return "/".join(action.option_strings) or action.metavar or action.dest


def _argument_message(error):
    """One sentence for an argparse ArgumentError, naming the option."""
    if isinstance(error, _ClearError):
        return error.message
    name, message = error.argument_name, error.message
    if message == "expected one argument":
        return f"{name} needs a value"
    if message.startswith("expected at least one argument"):
        return f"{name} needs at least one value"
    explicit = re.fullmatch(r"ignored explicit argument (.+)", message)
    if explicit:
        return f"{name} takes no value, got {explicit.group(1)}"
    return f"{name}: {message}" if name else message


def _unrecognized(parser, extras):
    """The UsageError for arguments `parser` does not know: the first, with a did-you-mean."""
    options = [
        option for action in parser._actions for option in action.option_strings if option != "-h"
    ]
    given = " ".join(extras)
    first = extras[0]
    if first.startswith("-"):
        option = first.partition("=")[0]
        message = str(unknown_name("option", option, options, hint=f"; got {given!r}"))
    else:
        message = f"unexpected argument {first!r} (got {given!r}); see {parser.prog} --help"
    return UsageError(parser.prog, message)


def build_parser():
    parser = Parser(
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
    parser.commands = subparsers.choices  # name -> its parser
    return parser


def parse(parser, argv=None):
    """The parsed arguments of argv; UsageError, one line, for anything malformed."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        raise _unrecognized(parser.commands.get(args.command, parser), extras)
    return args


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
    try:
        args = parse(parser, argv)
    except UsageError as error:
        print(f"{error.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
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


def command(argv=None):
    """The `initlab` program: main(argv), then exit with its code."""
    code = main(argv)
    # The command's work is done and said: a Ctrl-C now, while Python shuts down, would only
    # print a traceback from whatever it interrupts (and lose nothing), so it is ignored.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Python's last garbage collections at exit walk every object the libraries made (Numba's
    # type system most: most of a second after reproduce's table). Frozen, they are skipped;
    # each is still freed as the modules are cleared, and atexit hooks and weakref finalizers
    # still run. Only a __del__ of an object in a reference cycle would not: every file initlab
    # writes is closed by now.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    command()
