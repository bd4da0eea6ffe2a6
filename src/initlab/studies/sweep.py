"""Run a grid of training runs from a TOML spec, resumably, here or on a Dask cluster.

    initlab sweep SPEC --out DIR [--backend serial|local|dask] [--scheduler tcp://host:port]
                  [--workers N] [--force] [--checkpoint-seconds S] [--no-progress]
    initlab sweep --report DIR

SPEC is a TOML file (initlab.sweeps.spec describes it); every value is checked before anything
trains. Results go into DIR/sweep.db (SQLite, one row per finished run); when the sweep is
complete the report is written beside it, as one set: summary.{md,csv,json}, costs.png and
figures chosen from the axes (initlab.studies.sweep_report). Running the same command again
trains only the runs DIR lacks; Ctrl-C keeps every finished run and says how to resume.
--report DIR writes the report of whatever DIR holds, complete or not.
"""

import os
import shlex
import sys
import time

from initlab.studies import arguments, sweep_report
from initlab.sweeps.runner import STORE_NAME, SweepInterrupted, run_sweep
from initlab.sweeps.spec import load_spec
from initlab.sweeps.trainer import CHECKPOINT_SECONDS, networks_per_kernel


def add_arguments(parser):
    parser.add_argument("spec", nargs="?", metavar="SPEC", help="the sweep's TOML file")
    parser.add_argument("--out", metavar="DIR", help="directory of the store and the report")
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="write the report of the sweep stored in DIR, and train nothing",
    )
    arguments.add_engine_arguments(parser)
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes for local and a new LocalCluster (default: this machine's cores)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run a spec whose settings changed from the stored one's (the stored runs are kept)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=CHECKPOINT_SECONDS,
        metavar="S",
        help=f"save a long run's weights and optimizer state every "
        f"S seconds (default {CHECKPOINT_SECONDS:g})",
    )
    arguments.add_progress(parser)


def run(args):
    if args.report is not None:
        if args.spec is not None or args.out is not None:
            raise ValueError("--report DIR takes no SPEC or --out: it reads DIR's store")
        paths = sweep_report.write_report(args.report)
        print(f"wrote {', '.join(os.path.basename(p) for p in paths)} to {args.report}")
        return 0
    if args.spec is None or args.out is None:
        raise ValueError("give a SPEC file and --out DIR (or --report DIR)")
    if not args.checkpoint_seconds >= 0:
        raise ValueError(f"--checkpoint-seconds must be >= 0, got {args.checkpoint_seconds!r}")
    spec = load_spec(args.spec)
    started = time.perf_counter()
    try:
        status = run_sweep(
            spec,
            args.out,
            backend=args.backend,
            scheduler=args.scheduler,
            workers=args.workers,
            force=args.force,
            progress=args.progress,
            checkpoint_seconds=args.checkpoint_seconds,
            before_training=lambda runs: arguments.say_compiling(print, networks_per_kernel(runs)),
        )
    except SweepInterrupted as stop:
        again = shlex.join(["initlab", "sweep", args.spec, "--out", args.out])
        return arguments.interrupted(
            "sweep", stop, "runs", os.path.join(args.out, STORE_NAME), again
        )
    elapsed = time.perf_counter() - started
    try:
        paths = sweep_report.write_report(args.out)
    except KeyboardInterrupt:
        print(
            f"\ninitlab sweep: interrupted while writing the report; all {status.total} runs "
            f"are stored. Write it with: initlab sweep --report {shlex.quote(args.out)}",
            file=sys.stderr,
        )
        return 130
    print(
        f"{status.trained} runs trained in {elapsed:.1f} s ({status.stored_before} were "
        f"stored already, {status.total} in all); wrote "
        f"{', '.join(os.path.basename(p) for p in paths)} to {args.out}"
    )
    with open(paths[0]) as handle:
        print(handle.read(), end="")
    return 0
