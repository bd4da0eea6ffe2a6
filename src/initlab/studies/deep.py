"""The deep-network study: how deep can an MLP be on digits before a scheme stops it learning?

For every activation, depth and scheme (and seed), an MLP of `depth` hidden layers of --width
units, all drawn by the scheme, is measured once at initialisation on a fixed batch of digits'
training set (the std of the activations at the last hidden layer over the first's: the forward
ratio; the std of dL/da at the first hidden layer over the last's: the backward ratio), then
trained for the same fixed budget (--epochs of minibatch SGD), then tested. This is the
experiment behind Glorot & Bengio (2010) and He et al. (2015): with relu, He should hold the
forward ratio near 1 at every depth, Glorot lose about half the variance per layer, N(0, 0.01)
vanish and x10 explode.

    initlab deep --out deep-study                      # the default grid: under a minute, 2 cores
    initlab deep --depths 5 10 20 30 50 --seeds 3 --epochs 30 --out deep-full

Files written in --out: deep.png, summary.{md,csv,json} (one row per activation, depth and scheme,
averaged over seeds, with the mean-field theory's per-layer factors beside the measured ones),
runs.{md,csv,json} (one row per run) and config.json (the arguments and the time taken),
swapped in as one set once all are written; and sweep.db, the store of initlab.sweeps, which
keeps each network's row as it finishes, so that the command, killed and run again, trains only
the networks it lacks (--backend serial, local or dask run them).
"""

import functools
import json
import os
import time
from types import SimpleNamespace

import numpy as np

from initlab import environment
from initlab.blocks.datasets import DIGITS_CLASSES, DIGITS_FEATURES
from initlab.studies import arguments, output, signal_plots
from initlab.studies.diagnose import hidden_activations, ratio
from initlab.studies.schemes import (
    SCHEMES_HELP,
    deep_mlp,
    deep_mlp_bytes,
    default_schemes,
    kernel_models,
    parse_schemes,
)
from initlab.sweeps.runner import (
    STORE_NAME,
    SweepInterrupted,
    has_fields,
    missing_items,
    run_records,
)
from initlab.tools.diagnostics import measure

# Every file this command writes: an earlier run's are replaced only with --force.
OUTPUTS = ("deep.png", "config.json") + tuple(
    f"{stem}.{ext}" for stem in ("summary", "runs") for ext in ("md", "csv", "json")
)

DEFAULT_DEPTHS = "5,10,20,50"
# Samples of the training set that the at-initialisation measurement (and LSUV) sees.
MEASURE_SAMPLES = 500

RUN_COLUMNS = [
    ("activation", "Activation", "s"),
    ("depth", "Depth", "d"),
    ("scheme", "Scheme", "s"),
    ("seed", "Seed", "d"),
    ("forward_ratio", "forward ratio", ".3g"),
    ("backward_ratio", "backward ratio", ".3g"),
    ("train_loss", "final train loss", ".4g"),
    ("test_accuracy", "test acc. (%)", ".1f"),
    ("seconds", "time (s)", ".1f"),
]
SUMMARY_COLUMNS = [
    ("activation", "Activation", "s"),
    ("depth", "Depth", "d"),
    ("scheme", "Scheme", "s"),
    ("test_accuracy", "test acc. (%)", ".1f"),
    ("test_accuracy_range", "range over seeds", "s"),
    ("forward_ratio", "forward ratio", ".3g"),
    ("forward_variance_per_layer", "fwd variance x per layer", ".3g"),
    ("backward_ratio", "backward ratio", ".3g"),
    ("backward_variance_per_layer", "bwd variance x per layer", ".3g"),
    ("predicted_forward_variance_per_layer", "theory: fwd x per layer", ".3g"),
    ("predicted_backward_variance_per_layer", "theory: bwd x per layer", ".3g"),
    ("diverged", "diverged runs", "d"),
]


def add_arguments(parser):
    parser.add_argument(
        "--depths",
        nargs="+",
        default=[DEFAULT_DEPTHS],
        metavar="DEPTH",
        help=f"numbers of hidden layers, separated by spaces or commas (default {DEFAULT_DEPTHS})",
    )
    parser.add_argument(
        "--activations",
        nargs="+",
        default=["relu,tanh"],
        metavar="NAME",
        help=f"hidden activations among {', '.join(hidden_activations())}, "
        f"separated by "
        f"spaces or commas (default relu,tanh)",
    )
    parser.add_argument(
        "--schemes",
        nargs="+",
        default=None,
        metavar="NAME",
        help=SCHEMES_HELP.format(default=default_schemes()),
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=20,
        help="training epochs per network, the fixed budget (default 20)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="networks per activation, depth and scheme, each with its own "
        "weights and shuffling (default 1)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="the first seed: network k of each cell uses seed S + k for its "
        "weights and shuffling (default 0)",
    )
    parser.add_argument("--width", type=int, default=64, help="units per hidden layer (default 64)")
    parser.add_argument(
        "--learning-rate", type=float, default=0.01, help="SGD learning rate (default 0.01)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    parser.add_argument(
        "--data-seed", type=int, default=0, help="seed of the digits train/test split (default 0)"
    )
    parser.add_argument("--out", required=True, help="directory for the figure and tables")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace result files already in --out (other files are left alone)",
    )
    arguments.add_progress(parser)
    arguments.add_quiet(parser)
    arguments.add_engine_arguments(parser)


def check_arguments(args):
    """Check every argument before any work; return depths, activations, schemes and seeds."""
    depths = arguments.int_list("--depths", args.depths, minimum=1)
    activations = arguments.split_list(args.activations)
    if not activations or len(set(activations)) != len(activations):
        raise ValueError(
            f"--activations must list distinct activations, got {' '.join(activations)!r}"
        )
    for activation in activations:
        arguments.choice("--activations", activation, hidden_activations())
    schemes = parse_schemes(default_schemes() if args.schemes is None else args.schemes)
    # --seeds is a count, as in reproduce; seeds S .. S + N - 1, so --seeds 3 runs seeds 0, 1, 2.
    n_seeds = arguments.check_int("--seeds", args.seeds, minimum=1)
    first_seed = arguments.check_int("--seed", args.seed, minimum=0)
    seeds = list(range(first_seed, first_seed + n_seeds))
    arguments.check_int("--epochs", args.epochs, minimum=1, maximum=arguments.MAX_EPOCHS)
    arguments.check_int("--width", args.width, minimum=1, maximum=arguments.MAX_WIDTH)
    arguments.check_number("--learning-rate", args.learning_rate)
    arguments.check_int("--batch-size", args.batch_size, minimum=1, maximum=arguments.MAX_SAMPLES)
    arguments.check_int("--data-seed", args.data_seed, minimum=0)
    depth = max(arguments.check_int("--depths", d, 1, arguments.MAX_DEPTH) for d in depths)
    # One network at a time: its training, and its signals on the data at initialisation.
    arguments.check_memory(
        f"a network of depth {depth} and width {args.width}",
        deep_mlp_bytes(depth, args.width, args.batch_size, args.epochs),
        "use a smaller --width or --depths",
    )
    return depths, activations, schemes, seeds


def run(args):
    depths, activations, schemes, seeds = check_arguments(args)
    backend, scheduler = arguments.check_engine_arguments(args)
    output.recover_staged(args.out)  # a set a killed run had finished writing goes in first
    out_dir = output.prepare_out_dir(args.out, args.force, OUTPUTS)

    say = arguments.printer(args.quiet)
    grid = [
        (activation, depth, scheme, seed)
        for activation in activations
        for depth in depths
        for scheme in schemes
        for seed in seeds
    ]
    # Only networks the store lacks train, so only their activations' kernels compile.
    untrained = {item["activation"] for item in missing_items(grid_items(grid, args), out_dir)}
    arguments.say_compiling(
        say,
        kernel_models(
            [a for a in activations if a in untrained], args.width, DIGITS_FEATURES, DIGITS_CLASSES
        ),
    )
    started = time.perf_counter()
    try:
        runs, where = train_grid(
            grid, args, out_dir, backend, scheduler, progress=args.progress and not args.quiet
        )
    except SweepInterrupted as stop:
        return arguments.interrupted("deep", stop, "networks", os.path.join(out_dir, STORE_NAME))
    summary = summarise_runs(runs)
    elapsed = time.perf_counter() - started

    title = (
        f"digits, width {args.width}, {args.epochs} epochs of SGD (lr {args.learning_rate}, "
        f"batch {args.batch_size}), seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}"
    )
    config = {key: value for key, value in vars(args).items() if key != "run"}
    config.update(
        depths=depths,
        activations=activations,
        seeds=seeds,
        schemes=[scheme.label for scheme in schemes],
        runs=len(runs),
        elapsed_seconds=round(elapsed, 1),
        environment=environment.describe(),
        trained_in=where,
    )
    # The figure and tables are written beside out_dir, then swapped in as one set.
    with output.staged(out_dir) as stage:
        # Guessing among digits' ten classes: the accuracy a network that learned nothing gets.
        signal_plots.plot_deep(
            summary, os.path.join(stage, "deep.png"), title=title, chance=100 / DIGITS_CLASSES
        )
        output.write_table(summary, stage, "summary", SUMMARY_COLUMNS)
        output.write_table(runs, stage, "runs", RUN_COLUMNS)
        output.write_atomic(os.path.join(stage, "config.json"), json.dumps(config, indent=1))
    written = [os.path.join(out_dir, name) for name in OUTPUTS]

    say(
        f"{title}. forward ratio = std(a) at the last hidden layer / the first; backward "
        f"ratio = std(dL/da) at the first hidden layer / the last; both at initialisation, "
        f"geometric mean over seeds.\n"
    )
    say(output.markdown_table(summary, SUMMARY_COLUMNS))
    say(f"\n{len(runs)} networks trained in {elapsed:.1f} s; {len(written)} files in {out_dir}")
    return 0


# --- execution on initlab.sweeps' engines and store ----------------------------------------------
# What a network's row depends on besides its activation, depth, scheme and seed.
RUN_SETTINGS = ("width", "epochs", "learning_rate", "batch_size", "data_seed")


def grid_items(grid, args):
    """The store's items of the grid's networks: all that a network's row depends on."""
    settings = {name: getattr(args, name) for name in RUN_SETTINGS}
    return [
        {"activation": activation, "depth": depth, "scheme": scheme.label, "seed": seed, **settings}
        for activation, depth, scheme, seed in grid
    ]


def train_grid(grid, args, out_dir, backend="local", scheduler=None, progress=True):
    """(Every network's row, in grid order; where they trained: runner.trained_in): the rows in
    out_dir's store as stored, the others trained on the backend (deepest first, so the workers
    finish together) and stored as each ends. SweepInterrupted(kept, total) when interrupted:
    the store keeps every finished network."""
    rows, _, where = run_records(
        grid_items(grid, args),
        run_networks,
        out_dir,
        backend,
        scheduler,
        groups=_deepest_first,
        progress=None if progress else False,
        desc="initlab deep",
        unit="net",
        label=lambda item: (
            f"{item['activation']} depth {item['depth']} {item['scheme']} seed {item['seed']}"
        ),
        check=has_fields(
            *(name for name, _, _ in RUN_COLUMNS),
            numbers=[name for name, _, form in RUN_COLUMNS if form != "s"],
        ),
    )
    return rows, where


def _deepest_first(items, workers):
    return [[item] for item in sorted(items, key=lambda item: -item["depth"])]


def run_networks(items):
    """Rows of the networks `items` (dicts of activation, depth, scheme, seed and
    RUN_SETTINGS): what a worker runs."""
    rows = []
    for item in items:
        (scheme,) = parse_schemes(item["scheme"])
        rows.append(
            run_one(
                scheme,
                item["depth"],
                item["activation"],
                item["seed"],
                _digits(item["data_seed"]),
                SimpleNamespace(**item),
            )
        )
    return rows


@functools.cache
def _digits(data_seed):
    from initlab.blocks.datasets import digits

    return digits(seed=data_seed)


def run_one(scheme, depth, activation, seed, data, args):
    """Measure one network at initialisation, train it for the budget, test it: one row."""
    X_train, Y_train, X_test, Y_test = data
    X_batch, Y_batch = X_train[:, :MEASURE_SAMPLES], Y_train[:, :MEASURE_SAMPLES]
    started = time.perf_counter()
    # Exploding schemes overflow on purpose: their inf and nan are results, not errors.
    with np.errstate(all="ignore"):
        model = deep_mlp(
            scheme,
            depth,
            args.width,
            n_inputs=X_train.shape[0],
            n_outputs=Y_train.shape[0],
            activation=activation,
            seed=seed,
            X=X_batch,
        )
        records = measure(model, X_batch, Y_batch)
        first, last = records[0], records[depth - 1]
        predicted_forward, predicted_backward = predicted_ratios(model, X_batch, depth)
        history = model.fit(
            X_train,
            Y_train,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
        )
        test = model.evaluate(X_test, Y_test)
    return {
        "activation": activation,
        "depth": depth,
        "scheme": scheme.label,
        "seed": seed,
        "forward_ratio": ratio(last.activation_std, first.activation_std),
        "backward_ratio": ratio(first.activation_grad_std, last.activation_grad_std),
        "predicted_forward_ratio": predicted_forward,
        "predicted_backward_ratio": predicted_backward,
        "train_loss": float(history["loss"][-1]),
        "test_accuracy": test["accuracy"],
        "seconds": time.perf_counter() - started,
    }


def predicted_ratios(model, X, depth):
    """The mean-field theory's forward and backward ratios of a built deep_mlp on a batch X.

    Forward: std(a) at the last hidden layer over the first, from theory.predict_signals (each
    layer's σ_w² and σ_b² read from its drawn weights, the inputs' q carried through the length
    map). Backward: √Π theory.backward_factor over hidden layers 2 .. depth, the std of dL/da
    at the first hidden layer over the last's. (None, None) when the activation is not one the
    theory covers.
    """
    from initlab.tools import theory

    rows = theory.predict_signals(model, X)[:depth]
    if len(rows) < depth or rows[-1]["activation_std"] is None:
        return None, None
    activation = model.layers[0].activation
    forward = ratio(rows[-1]["activation_std"], rows[0]["activation_std"])
    backward_variance = float(
        np.prod(
            [theory.backward_factor(activation, r["weight_variance"], r["q"]) for r in rows[1:]]
        )
    )
    return forward, float(np.sqrt(backward_variance))


def summarise_runs(runs):
    """One row per (activation, depth, scheme): mean accuracy over seeds, geometric-mean ratios."""
    groups = {}
    for row in runs:
        groups.setdefault((row["activation"], row["depth"], row["scheme"]), []).append(row)
    summary = []
    for (activation, depth, scheme), rows in groups.items():
        accuracy = [row["test_accuracy"] for row in rows]
        forward = geometric_mean([row["forward_ratio"] for row in rows])
        backward = geometric_mean([row["backward_ratio"] for row in rows])
        # Stores written before the theory's columns existed hold rows without them.
        predicted = {
            key: geometric_mean([row.get(f"predicted_{key}_ratio") or np.nan for row in rows])
            for key in ("forward", "backward")
        }
        summary.append(
            {
                "activation": activation,
                "depth": depth,
                "scheme": scheme,
                "seeds": len(rows),
                "test_accuracy": float(np.mean(accuracy)),
                "test_accuracy_range": (
                    f"{min(accuracy):.1f}-{max(accuracy):.1f}" if len(rows) > 1 else ""
                ),
                "forward_ratio": forward,
                "forward_variance_per_layer": per_layer_variance_factor(forward, depth),
                "backward_ratio": backward,
                "backward_variance_per_layer": per_layer_variance_factor(backward, depth),
                "predicted_forward_variance_per_layer": per_layer_variance_factor(
                    predicted["forward"], depth
                ),
                "predicted_backward_variance_per_layer": per_layer_variance_factor(
                    predicted["backward"], depth
                ),
                "diverged": sum(not np.isfinite(row["train_loss"]) for row in rows),
            }
        )
    return summary


def per_layer_variance_factor(std_ratio, depth):
    """ratio^(2 / (depth - 1)): the factor by which each layer multiplies the signal's variance.

    A std ratio over depth - 1 layer-to-layer steps; He et al. aim at 1, and Glorot's relu
    networks are expected at 1/2. None for a single layer, which has no step.
    """
    if depth < 2:
        return None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return float(np.power(std_ratio, 2.0 / (depth - 1)))


def geometric_mean(values):
    """exp(mean(log values)): the typical factor of multiplicative quantities such as ratios.

    0 and inf pass through (0 if any value is 0, inf if any is inf, nan if both); nan gives nan.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))
