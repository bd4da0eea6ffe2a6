"""The `initlab` command: parses arguments and hands them to a study. No logic lives here.

Each subcommand is a module with `add_arguments(parser)` and `run(args) -> int`; COMMANDS lists
them, so a new study adds one line here.
"""

import argparse
import importlib
import os
import sys

# name -> (module, one-line help)
COMMANDS = {
    "reproduce": ("initlab.studies.reproduce",
                  "the post's study over many seeds: figures, table and histories"),
    "diagnose": ("initlab.studies.diagnose", "per-layer signals of deep MLPs: why a scheme fails"),
    "deep": ("initlab.studies.deep", "MLPs of depth 5 to 50 on digits: accuracy and signal scale"),
    "inits": ("initlab.studies.inits", "list every initialisation scheme and its library names"),
    "sweep": ("initlab.studies.sweep", "a grid of training runs from a TOML spec, resumable, "
                                       "on local cores or Dask"),
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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except ValueError as error:
        # Bad input reaches the user as one clear line, not a traceback.
        print(f"initlab {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`initlab inits | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
