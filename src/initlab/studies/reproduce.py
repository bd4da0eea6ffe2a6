"""Reproduce the post over many seeds: train, then write figures, tables and histories to --out.

    initlab reproduce [--seeds N] [--epochs E] [--schemes NAME ...] [--seed S] [--out DIR]
                      [--force] [--jit | --no-jit] [--backend auto|serial|local|dask]
                      [--scheduler ADDRESS] [--no-progress] [--quiet]

Writes to DIR: dataset.png, costs.png, boundaries.png (figures); results.md, results.csv,
results.json (the table, per scheme, with the settings; the JSON also holds every run's numbers and
seeds); histories.npz (the cost of every scheme, run and epoch), written beside DIR and swapped
in as one set. Every argument is checked, and DIR is created and probed for writing, before any
training starts. Files already in DIR are replaced only with --force, and only these files:
nothing else in DIR is touched.

The runs train on initlab.sweeps' engines (--backend: this process, a process per core, or Dask; by
default this process when the runs train compiled, whose Ensemble threads use every core, else a
process per core), in groups of one Ensemble each, and each run's numbers (its costs, accuracies
and trained weights) go into DIR/sweep.db as its group ends. Killed and run again with the same
command, it trains only the runs the store lacks; a run's numbers do not depend on its group,
backend or interruption, so the files are the bits of one uninterrupted run
(post_study.run_study's).
"""

import gc
import io
import os
import shlex
import time
from pathlib import Path

import numpy as np

from initlab import checks
from initlab.studies import arguments, output, plots, report
from initlab.studies.post_study import (
    EPOCHS,
    N_SEEDS,
    check_int,
    check_record,
    post_model,
    resolve_schemes,
    seed_plan,
    study_bytes,
    study_items,
    study_result,
    study_seconds,
    train_runs,
)
from initlab.sweeps import engines
from initlab.sweeps.runner import STORE_NAME, SweepInterrupted, missing_items, run_records

DEFAULT_OUT = os.path.join("results", "post")
# What starting the local pool's (or a cluster's) workers adds before the first run trains:
# measured 3-12 s on a 2-core machine, idle to busy.
WORKER_START_SECONDS = 5.0
# On the compiled path an Ensemble trains in one thread per core: in this process, the runs use
# every core without the workers' start (a third of the training's time for the default run).
DEFAULT_BACKEND = "auto"
FIGURES = ("dataset.png", "costs.png", "boundaries.png")
TABLES = ("results.md", "results.csv", "results.json")
HISTORIES = "histories.npz"
OUTPUTS = FIGURES + TABLES + (HISTORIES,)
SCHEMES_HELP = (
    "schemes to add to the post's zeros, random_normal_x10 and he, separated by "
    "spaces or commas, written as for diagnose and deep: a name `initlab inits` "
    "lists, name:value (random_normal:0.01) or lsuv (e.g. glorot_uniform lsuv)"
)


def add_arguments(parser):
    parser.add_argument(
        "--seeds",
        type=int,
        default=N_SEEDS,
        metavar="N",
        help=f"runs per scheme, each with its own data and weights (default {N_SEEDS})",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=EPOCHS,
        metavar="E",
        help=f"full-batch epochs per run (default {EPOCHS}, as in the post)",
    )
    parser.add_argument("--schemes", nargs="+", default=[], metavar="NAME", help=SCHEMES_HELP)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the one seed every run's data and weights derive from (default 0)",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"directory for figures, tables and the store of finished runs, sweep.db "
        f"(default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace result files already in DIR (other files are left alone)",
    )
    arguments.add_jit(parser)
    arguments.add_engine_arguments(parser, default=DEFAULT_BACKEND)
    arguments.add_progress(parser)
    arguments.add_quiet(parser)


def compiles(jit_compile):
    """Whether the study will train on the compiled path (see NeuralNetwork.fit)."""
    from initlab.engine.model import check_jit_compile

    return check_jit_compile(jit_compile, post_model("he"), n_features=2)


def run(args):
    # Every check comes first: a bad argument must not cost a training run.
    n_seeds = check_int("--seeds", args.seeds, minimum=1, maximum=arguments.MAX_SEEDS)
    epochs = check_int("--epochs", args.epochs, minimum=1, maximum=arguments.MAX_EPOCHS)
    seed = check_int("--seed", args.seed, minimum=0)
    schemes = resolve_schemes(args.schemes)
    arguments.check_jit(args.jit)
    memory = study_bytes(len(schemes), n_seeds, epochs)
    # The whole process: Python, NumPy, scikit-learn, matplotlib (and Numba, on the compiled
    # path) and the figures besides the runs.
    jit_compile = compiles(args.jit)
    libraries = ("sklearn", "matplotlib") + (("numba",) if jit_compile else ())
    process = arguments.process_bytes(libraries, drawing=plots.FIGURES_BYTES)
    arguments.check_memory(
        f"{len(schemes) * n_seeds} runs of {epochs} epochs",
        memory + process,
        "use fewer --seeds or --epochs",
    )
    backend, scheduler = arguments.check_engine_arguments(args, compiled=jit_compile)
    output.recover_staged(args.out)  # a set a killed run had finished writing goes in first
    out = Path(output.prepare_out_dir(args.out, args.force, OUTPUTS))
    say = arguments.printer(args.quiet)

    runs = seed_plan(seed, n_seeds)
    items = study_items(schemes, runs, epochs, jit_compile)
    missing = missing_items(items, out)  # an earlier run's store may hold some, or all
    threads = ensemble_threads(backend, jit_compile)

    def groups(items, workers):
        return study_groups(items, workers, threads)

    if missing:
        if jit_compile:  # the calibration below compiles the kernel, if it is not cached
            arguments.say_compiling(say, [post_model("he")])
        # The estimate counts the cores a local pool (or cluster) gets; a cluster elsewhere, one.
        workers = 1 if backend == "serial" or scheduler else engines.default_workers()
        workers = min(workers, len(groups(missing, workers)))
        seconds = study_seconds(1, len(missing), epochs, jit_compile) / workers
        if backend != "serial":
            # Worker processes start, import initlab (and Numba, and load its kernel) first.
            seconds += WORKER_START_SECONDS
        duration = f"about {_duration(seconds)}"
    else:  # nothing to train: no calibration (nor a kernel to compile for it)
        duration = f"nothing to train: every run is in {out / STORE_NAME}"
    say(
        f"Training {len(schemes)} schemes x {n_seeds} seed{'s' if n_seeds > 1 else ''} x "
        f"{epochs} epochs "
        f"({', '.join(scheme.name for scheme in schemes)}; about "
        f"{checks.format_bytes(memory + process)} of memory, {checks.format_bytes(memory)} "
        f"of it the runs' and the rest Python, its libraries and the figures; {duration})"
    )
    start = time.perf_counter()
    try:
        records, stored, trained_in = run_records(
            items,
            train_runs,
            out,
            backend,
            scheduler,
            groups=groups,
            progress=args.progress and not args.quiet,
            desc="training",
            unit="run",
            check=check_record,
        )
    except SweepInterrupted as stop:
        return arguments.interrupted(
            "reproduce", stop, "runs", out / STORE_NAME, resume_command(args)
        )
    trained = time.perf_counter() - start
    try:
        result = study_result(
            seed, schemes, runs, epochs, records, jit_compile, trained_in=trained_in
        )
        # The table as soon as it is known: the figures take a second or two more, and a
        # Ctrl-C meanwhile loses no run (the store holds them all).
        say()
        say(report.table(result))
        say(report.TABLE_KEY)
        with output.staged(out) as stage:
            write_results(result, stage)
    except KeyboardInterrupt:
        stop = SweepInterrupted(len(items), len(items))
        return arguments.interrupted(
            "reproduce", stop, "runs", out / STORE_NAME, resume_command(args)
        )
    before = f" ({stored} were stored already)" if stored else ""
    say(
        f"Trained {len(items) - stored} models in {trained:.1f} s{before}; "
        f"wrote {', '.join(OUTPUTS)} to {out}{os.sep}"
    )
    return 0


def study_groups(items, workers, threads=1):
    """The groups the runs train in: one Ensemble each, about two per worker (a group is what
    a Ctrl-C or a kill loses at most, and the progress bar's step), split over `threads`."""
    return engines.make_groups(
        items,
        workers,
        architecture=lambda item: (item["epochs"], item["training"]),
        threads=threads,
    )


def ensemble_threads(backend, jit_compile):
    """The threads each group's Ensemble trains in: compiled in this process, one per core."""
    if backend != "serial" or not jit_compile:
        return 1
    from initlab.fast import jit

    return jit.thread_count()


def resume_command(args):
    """The command that resumes this one: its options, as given."""
    words = ["initlab", "reproduce"]
    for option, value, default in (
        ("--seeds", args.seeds, N_SEEDS),
        ("--epochs", args.epochs, EPOCHS),
        ("--seed", args.seed, 0),
    ):
        if value != default:
            words += [option, str(value)]
    if args.schemes:
        words += ["--schemes", *args.schemes]
    words += ["--out", str(args.out)]
    jit = {True: "--jit", False: "--no-jit"}.get(args.jit)  # "auto", the default, says nothing
    for flag, given in (("--force", args.force), (jit, jit is not None)):
        if given:
            words.append(flag)
    if args.backend != DEFAULT_BACKEND:
        words += ["--backend", args.backend]
    if args.scheduler is not None:
        words += ["--scheduler", args.scheduler]
    for flag, given in (("--no-progress", not args.progress), ("--quiet", args.quiet)):
        if given:
            words.append(flag)
    return shlex.join(words)


def _duration(seconds):
    """'40 s', '12 min', '3.5 h', '2.1 days': a rough estimate, said roughly."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.2g} {unit}"
    return f"{seconds:.2g} s"


def write_results(result, out):
    """Write every output file into `out`, each atomically (complete, or not replaced at all);
    the command writes them into output.staged(DIR), which swaps them into DIR as one set."""
    out = Path(out)
    runs = report.representative_runs(result)
    output.write_atomic(out / "results.md", report.to_markdown(result, FIGURES))
    output.write_atomic(out / "results.csv", report.to_csv(result))
    output.write_atomic(out / "results.json", report.to_json(result))
    output.write_atomic(out / HISTORIES, _histories(result))
    # The figures come last, each drawn when it is saved, then cleared and collected (a figure
    # and its canvas refer to each other), so that one at a time holds memory and what the
    # tables took is free for them: the command's peak is while the last figure is drawn. The
    # objects made before are frozen meanwhile, so that each collection walks the figure's
    # only, not every object Numba's type system made (a fifth of a second each).
    figures = {
        "dataset.png": lambda: plots.dataset_figure(result, run=0),
        "costs.png": lambda: plots.cost_figure(result),
        "boundaries.png": lambda: plots.boundary_figure(result, runs),
    }
    gc.freeze()
    try:
        for name, draw in figures.items():
            figure = draw()
            output.save_figure(figure, out / name, dpi=plots.DPI)
            figure.clear()
            del figure
            gc.collect()
    finally:
        gc.unfreeze()


def _histories(result):
    """histories.npz's bytes: every cost of every run, and the accuracies."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        costs=result.costs,
        schemes=np.array([scheme.name for scheme in result.schemes]),
        train_accuracy=result.train_accuracy,
        test_accuracy=result.test_accuracy,
    )
    return buffer.getvalue()
