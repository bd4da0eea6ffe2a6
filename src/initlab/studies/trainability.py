"""Which (depth, σ_w²) train: Schoenholz et al.'s experiment at this machine's scale.

For each depth and σ_w², networks of `depth` tanh layers of --width units (Gaussian weights of
variance σ_w² / fan_in and biases of variance σ_b², as the theory assumes; the softmax output
drawn the same way) are trained on scikit-learn's digits for a fixed budget of SGD epochs, one
per seed, then tested. Beside each cell is the theory's prediction: networks train when
depth <= DEPTH_MULTIPLE · ξ_c (Schoenholz et al. 2017, §6: "the maximum trainable depth is about
6 ξ_c"), ξ_c from initlab.tools.theory.depth_scales, which diverges on the edge of chaos.

    initlab trainability --out trainability          # the default grid: 4-6 minutes on 2 cores
    initlab trainability --full --out full --backend dask --scheduler tcp://host:8786

It runs on initlab.sweeps' engines and store: the networks of one depth train together as one
Ensemble (a group of the sweep), each network's row is stored in --out's sweep.db as its group
ends, and the command killed and run again trains only the networks its store lacks.

Files written in --out, swapped in as one set: trainability.png (the heat map of test accuracy
over depth and σ_w², the predicted maximum depth 6 ξ_c drawn over it, the critical σ_w² marked),
trainability.{md,csv,json} (one row per cell: mean and range of test accuracy over seeds, ξ_c,
the predicted maximum depth), prediction.{md,csv,json} (the curve drawn: σ_w², ξ_c, 6 ξ_c),
runs.{md,csv,json} (one row per network) and config.json.

    >>> rows = trainability(depths=(2,), weight_variances=(1.0,), seeds=(0,), width=8, epochs=1)
    >>> sorted(rows[0])[:3]
    ['activation', 'batch_size', 'bias_variance']

Reference: S. Schoenholz et al., "Deep information propagation", ICLR 2017, §6 and figure 6.
"""

import functools
import json
import math
import os
import time

import numpy as np

from initlab import checks, environment
from initlab.studies import arguments, output, signal_plots
from initlab.tools import theory

# The default grid: its measured time on 2 cores is in the README; the band is visible on it.
DEFAULT_DEPTHS = (10, 20, 30, 45, 60)
DEFAULT_WEIGHT_VARIANCES = (0.75, 1.0, 1.25, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0)
DEFAULT_WIDTH = 128
DEFAULT_EPOCHS = 10
DEFAULT_LEARNING_RATE = 0.01
DEFAULT_SEEDS = 2
BIAS_VARIANCE = 0.05
# The paper's shape (Schoenholz et al. 2017, figure 6: depths to 300, σ_w² from 1 to 4, width
# 300), for a cluster.
FULL_DEPTHS = tuple(range(10, 301, 10))
FULL_WEIGHT_VARIANCES = tuple(round(1.0 + 0.1 * k, 1) for k in range(31))
FULL_WIDTH = 300
FULL_EPOCHS = 20
FULL_SEEDS = 3
# Schoenholz et al. (2017), figure 6 and §6: networks train up to about 6 ξ_c layers.
DEPTH_MULTIPLE = 6
# Guessing among digits' ten classes: what a network that learned nothing scores.
CHANCE = 10.0
# Points of the drawn 6 ξ_c curve across the σ_w² axis.
CURVE_POINTS = 400
# CPU seconds one network takes per layer and SGD step, a + b · 3 · width² · batch (fitted to
# NumPy's times at widths 64 and 300 on this machine, within 20% at 32 and 128): the estimate
# printed before a grid starts.
SECONDS_PER_LAYER_STEP = 1.4e-4
SECONDS_PER_MULTIPLY_ADD = 2.2e-10

OUTPUTS = ("trainability.png", "config.json") + tuple(
    f"{stem}.{ext}"
    for stem in ("trainability", "prediction", "runs")
    for ext in ("md", "csv", "json")
)
# What a network's row depends on besides its depth, σ_w² and seed.
RUN_SETTINGS = (
    "activation",
    "bias_variance",
    "width",
    "epochs",
    "learning_rate",
    "batch_size",
    "data_seed",
)

RUN_COLUMNS = [
    ("depth", "Depth", "d"),
    ("weight_variance", "σ_w²", ".4g"),
    ("seed", "Seed", "d"),
    ("test_accuracy", "test acc. (%)", ".1f"),
    ("train_loss", "final train loss", ".4g"),
]
CELL_COLUMNS = [
    ("depth", "Depth", "d"),
    ("weight_variance", "σ_w²", ".4g"),
    ("test_accuracy", "test acc. (%), mean", ".1f"),
    ("test_accuracy_min", "min", ".1f"),
    ("test_accuracy_max", "max", ".1f"),
    ("xi_c", "ξ_c", ".4g"),
    ("predicted_max_depth", "6 ξ_c", ".4g"),
    ("predicted_trainable", "depth <= 6 ξ_c", "s"),
    ("diverged", "diverged runs", "d"),
]
PREDICTION_COLUMNS = [
    ("weight_variance", "σ_w²", ".4g"),
    ("xi_c", "ξ_c", ".4g"),
    ("predicted_max_depth", "6 ξ_c", ".4g"),
]


def add_arguments(parser):
    parser.add_argument(
        "--depths",
        nargs="+",
        default=None,
        metavar="DEPTH",
        help="numbers of hidden layers, separated by spaces or commas "
        f"(default {','.join(map(str, DEFAULT_DEPTHS))})",
    )
    parser.add_argument(
        "--weight-variances",
        nargs="+",
        default=None,
        metavar="SW2",
        help="σ_w² values, fan_in · Var(W), separated by spaces or commas "
        f"(default {','.join(map(str, DEFAULT_WEIGHT_VARIANCES))})",
    )
    parser.add_argument(
        "--bias-variance",
        type=float,
        default=BIAS_VARIANCE,
        help=f"σ_b² = Var(b) of every layer (default {BIAS_VARIANCE}, as in the paper)",
    )
    parser.add_argument(
        "--activation", default="tanh", help="hidden activation, any elementwise one (default tanh)"
    )
    parser.add_argument(
        "--width", type=int, default=None, help=f"units per hidden layer (default {DEFAULT_WIDTH})"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"epochs of minibatch SGD, the fixed budget (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEFAULT_LEARNING_RATE,
        help=f"SGD learning rate (default {DEFAULT_LEARNING_RATE})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="minibatch size (default 32)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help=f"networks per cell, seeds S .. S + N - 1 (default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="the first seed (default 0)"
    )
    parser.add_argument(
        "--data-seed", type=int, default=0, help="seed of the digits train/test split (default 0)"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="the paper's shape, for a cluster: depths 10-300 by 10, σ_w² 1-4 by 0.1, width "
        f"{FULL_WIDTH}, {FULL_EPOCHS} epochs, {FULL_SEEDS} seeds (options given still apply)",
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


def number_list(option, values):
    """Distinct finite numbers >= 0 from a list option ("1,1.5 2")."""
    text = values if isinstance(values, str) else " ".join(map(str, values))
    parsed = []
    for part in arguments.split_list(values):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{option} must be numbers >= 0, separated by commas or spaces, got {text!r}"
            ) from None
        parsed.append(arguments.check_number(option, value, minimum=0, strict=False))
    if not parsed:
        raise ValueError(f"{option} must list at least one number >= 0, got {text!r}")
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"{option} lists a value more than once: {text!r}")
    return parsed


def check_arguments(args):
    """Check every argument before any work; return the grid's settings as a dict."""
    from initlab.studies.theory import elementwise_activations

    full = args.full

    def chosen(value, default, full_value):
        return value if value is not None else full_value if full else default

    depths = arguments.int_list(
        "--depths", chosen(args.depths, DEFAULT_DEPTHS, FULL_DEPTHS), minimum=1
    )
    for depth in depths:
        arguments.check_int("--depths", depth, minimum=1, maximum=arguments.MAX_DEPTH)
    weight_variances = number_list(
        "--weight-variances",
        chosen(args.weight_variances, DEFAULT_WEIGHT_VARIANCES, FULL_WEIGHT_VARIANCES),
    )
    bias_variance = arguments.check_number(
        "--bias-variance", args.bias_variance, minimum=0, strict=False
    )
    arguments.choice("--activation", args.activation, elementwise_activations())
    width = arguments.check_int(
        "--width", chosen(args.width, DEFAULT_WIDTH, FULL_WIDTH), 1, arguments.MAX_WIDTH
    )
    epochs = arguments.check_int(
        "--epochs", chosen(args.epochs, DEFAULT_EPOCHS, FULL_EPOCHS), 1, arguments.MAX_EPOCHS
    )
    learning_rate = arguments.check_number("--learning-rate", args.learning_rate)
    batch_size = arguments.check_int("--batch-size", args.batch_size, 1, arguments.MAX_SAMPLES)
    n_seeds = arguments.check_int(
        "--seeds", chosen(args.seeds, DEFAULT_SEEDS, FULL_SEEDS), 1, arguments.MAX_SEEDS
    )
    first_seed = arguments.check_int("--seed", args.seed, minimum=0)
    data_seed = arguments.check_int("--data-seed", args.data_seed, minimum=0)
    # One group at a time per worker: at most MAX_GROUP networks of the deepest depth.
    from initlab.studies.schemes import deep_mlp_bytes
    from initlab.sweeps.engines import MAX_GROUP

    arguments.check_memory(
        f"{min(MAX_GROUP, n_seeds * len(weight_variances))} networks of depth {max(depths)} and "
        f"width {width}",
        min(MAX_GROUP, n_seeds * len(weight_variances))
        * deep_mlp_bytes(max(depths), width, batch_size, epochs, signals=0),
        "use a smaller --width or --depths",
    )
    return {
        "activation": args.activation,
        "bias_variance": bias_variance,
        "depths": depths,
        "weight_variances": weight_variances,
        "seeds": list(range(first_seed, first_seed + n_seeds)),
        "width": width,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "data_seed": data_seed,
    }


def estimated_seconds(depths, n_networks_per_depth, width, epochs, batch_size, n_train):
    """Core-seconds the grid takes with NumPy on this machine's cores (SECONDS_PER_...)."""
    steps = epochs * math.ceil(n_train / batch_size)
    per_layer_step = SECONDS_PER_LAYER_STEP + SECONDS_PER_MULTIPLY_ADD * 3 * width**2 * batch_size
    return sum(depths) * n_networks_per_depth * steps * per_layer_step


def grid_items(grid):
    """The grid's networks as store items: dicts of everything a row depends on, deepest first
    then by σ_w² and seed (the order the tables keep)."""
    settings = {name: grid[name] for name in RUN_SETTINGS}
    return [
        {"depth": depth, "weight_variance": wv, "seed": seed, **settings}
        for depth in sorted(grid["depths"])
        for wv in grid["weight_variances"]
        for seed in grid["seeds"]
    ]


def run(args):
    grid = check_arguments(args)
    backend, scheduler = arguments.check_engine_arguments(args)
    output.recover_staged(args.out)  # a set a killed run had finished writing goes in first
    out_dir = output.prepare_out_dir(args.out, args.force, OUTPUTS)
    say = arguments.printer(args.quiet)

    items = grid_items(grid)
    X_train, Y_train = _digits(grid["data_seed"])[:2]
    n_train = X_train.shape[1]
    core_seconds = estimated_seconds(
        grid["depths"],
        len(grid["weight_variances"]) * len(grid["seeds"]),
        grid["width"],
        grid["epochs"],
        grid["batch_size"],
        n_train,
    )
    say(
        f"{len(items)} networks: depths {_span(grid['depths'])}, σ_w² "
        f"{_span(grid['weight_variances'])}, width {grid['width']}, {grid['epochs']} epochs, "
        f"{len(grid['seeds'])} seeds. Estimated {_duration(core_seconds)} of one core "
        f"(about {_duration(core_seconds / 2)} on 2 cores); networks already in the store "
        f"are not trained again.",
        flush=True,
    )
    # Every network has the grid's activation and softmax: one kernel serves every depth.
    probe = _network(
        grid["activation"],
        weight_variance=1.0,
        bias_variance=grid["bias_variance"],
        depth=1,
        width=grid["width"],
        seed=0,
        n_inputs=X_train.shape[0],
        n_outputs=Y_train.shape[0],
    )
    arguments.say_compiling(say, [probe])
    started = time.perf_counter()
    from initlab.sweeps import engines
    from initlab.sweeps.runner import STORE_NAME, SweepInterrupted, has_fields, run_records

    def deepest_first(missing, workers):
        # Networks of one depth train together; the deepest first, so the workers end together.
        ordered = sorted(missing, key=lambda item: -item["depth"])
        return engines.make_groups(ordered, workers, architecture)

    try:
        runs, _, where = run_records(
            items,
            train_networks,
            out_dir,
            backend,
            scheduler,
            groups=deepest_first,
            progress=None if args.progress and not args.quiet else False,
            desc="initlab trainability",
            unit="net",
            label=lambda item: f"depth {item['depth']}, σ_w² {item['weight_variance']:g}",
            check=has_fields(
                *(name for name, _, _ in RUN_COLUMNS),
                numbers=[name for name, _, form in RUN_COLUMNS if form != "s"],
            ),
        )
    except SweepInterrupted as stop:
        return arguments.interrupted(
            "trainability", stop, "networks", os.path.join(out_dir, STORE_NAME)
        )
    elapsed = time.perf_counter() - started
    cells = summarise(runs)
    critical = float(theory.critical_weight_variance(grid["activation"], grid["bias_variance"]))
    curve = prediction_curve(
        grid["activation"], grid["bias_variance"], curve_range(grid["weight_variances"])
    )

    title = (
        f"{grid['activation']}, σ_b² = {grid['bias_variance']:g}, width {grid['width']}, digits: "
        f"{grid['epochs']} epochs of SGD (lr {grid['learning_rate']:g}, batch "
        f"{grid['batch_size']}), mean over {len(grid['seeds'])} seeds"
    )
    config = {key: value for key, value in vars(args).items() if key != "run"}
    config.update(
        grid,
        critical_weight_variance=critical,
        depth_multiple=DEPTH_MULTIPLE,
        runs=len(runs),
        elapsed_seconds=round(elapsed, 1),
        estimated_core_seconds=round(core_seconds, 1),
        environment=environment.describe(),
        trained_in=where,
    )
    with output.staged(out_dir) as stage:
        signal_plots.plot_trainability(
            cells,
            curve,
            critical,
            os.path.join(stage, "trainability.png"),
            title=title,
            chance=CHANCE,
        )
        output.write_table(cells, stage, "trainability", CELL_COLUMNS)
        output.write_table(curve, stage, "prediction", PREDICTION_COLUMNS)
        output.write_table(runs, stage, "runs", RUN_COLUMNS)
        output.write_atomic(os.path.join(stage, "config.json"), json.dumps(config, indent=1))

    say(f"\n{title}. Test accuracy (%), mean over seeds; 6 ξ_c the predicted maximum depth:\n")
    say(accuracy_grid(cells))
    say(
        f"\ncritical σ_w² = {critical:.4g}. {len(runs)} networks in {elapsed:.1f} s; "
        f"{len(OUTPUTS)} files in {out_dir}"
    )
    return 0


def _span(values):
    return f"{min(values):g}-{max(values):g}" if len(values) > 1 else f"{values[0]:g}"


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def accuracy_grid(cells):
    """The mean test accuracy as a markdown table: a row per depth, a column per σ_w², and a
    first row of 6 ξ_c."""
    weights = sorted({cell["weight_variance"] for cell in cells})
    depths = sorted({cell["depth"] for cell in cells})
    by_cell = {(cell["depth"], cell["weight_variance"]): cell for cell in cells}
    lines = [
        "| depth \\ σ_w² | " + " | ".join(f"{wv:g}" for wv in weights) + " |",
        "|---|" + "---|" * len(weights),
        "| 6 ξ_c | "
        + " | ".join(
            _format_depth(by_cell[(depths[0], wv)]["predicted_max_depth"]) for wv in weights
        )
        + " |",
    ]
    for depth in depths:
        lines.append(
            f"| {depth} | "
            + " | ".join(f"{by_cell[(depth, wv)]['test_accuracy']:.0f}" for wv in weights)
            + " |"
        )
    return "\n".join(lines)


def _format_depth(value):
    """6 ξ_c as the table prints it: ∞ on the edge of chaos, where nothing limits the depth; nan
    where the theory does not say (ξ_c is not computed deep in the chaotic phase)."""
    if value is None or math.isnan(value):
        return "nan"
    return "∞" if math.isinf(value) else f"{value:.3g}"


def summarise(runs):
    """One row per (depth, σ_w²): test accuracy's mean, min and max over seeds, the mean final
    train loss, ξ_c, the predicted maximum depth 6 ξ_c and whether depth <= 6 ξ_c."""
    groups = {}
    for row in runs:
        groups.setdefault((row["depth"], row["weight_variance"]), []).append(row)
    cells = []
    for (depth, wv), rows in groups.items():
        accuracy = [row["test_accuracy"] for row in rows]
        xi_c = rows[0]["xi_c"]
        cells.append(
            {
                "depth": depth,
                "weight_variance": wv,
                "bias_variance": rows[0]["bias_variance"],
                "seeds": len(rows),
                "test_accuracy": float(np.mean(accuracy)),
                "test_accuracy_min": float(min(accuracy)),
                "test_accuracy_max": float(max(accuracy)),
                "train_loss": float(np.mean([row["train_loss"] for row in rows])),
                "xi_c": xi_c,
                "predicted_max_depth": rows[0]["predicted_max_depth"],
                "predicted_trainable": depth <= rows[0]["predicted_max_depth"],
                "diverged": sum(not math.isfinite(row["train_loss"]) for row in rows),
            }
        )
    return cells


def curve_range(weight_variances):
    """The σ_w² span the figure shows: the grid's, half a step beyond each end."""
    weights = sorted(weight_variances)
    if len(weights) == 1:
        return weights[0] * 0.5, weights[0] * 1.5 or 1.0
    return (
        max(0.0, weights[0] - (weights[1] - weights[0]) / 2),
        weights[-1] + (weights[-1] - weights[-2]) / 2,
    )


def prediction_curve(activation, bias_variance, span, points=CURVE_POINTS):
    """The theory's maximum trainable depth across σ_w²: rows of σ_w², ξ_c and 6 ξ_c.

    σ_w² spans `span` evenly and includes the critical σ_w² itself, where ξ_c = ∞.
    """
    low, high = span
    weights = np.linspace(max(low, 1e-3), high, points)
    critical = theory.critical_weight_variance(activation, bias_variance)
    if np.isfinite(critical) and low < critical < high:
        weights = np.union1d(weights, [critical])
    xi_c = np.atleast_1d(theory.depth_scales(activation, weights, bias_variance)[1])
    return [
        {
            "weight_variance": float(wv),
            "xi_c": float(xi),
            "predicted_max_depth": DEPTH_MULTIPLE * float(xi),
        }
        for wv, xi in zip(weights, xi_c, strict=True)
    ]


# --- what a worker runs -------------------------------------------------------------------------
def architecture(item):
    """Items that may train as one Ensemble: all settings but σ_w² and the seed alike."""
    return tuple(sorted((k, v) for k, v in item.items() if k not in ("weight_variance", "seed")))


def train_networks(items):
    """Rows of the networks `items` (one architecture: depth and RUN_SETTINGS alike), trained
    together as one Ensemble; each row is the item with test_accuracy (%), train_loss (the last
    epoch's), xi_c and predicted_max_depth. A network's numbers do not depend on its group."""
    from initlab.tools.ensemble import Ensemble

    first = items[0]
    X_train, Y_train, X_test, Y_test = _digits(first["data_seed"])
    ensemble = Ensemble(
        [
            _network(
                first["activation"],
                item["weight_variance"],
                first["bias_variance"],
                first["depth"],
                first["width"],
                item["seed"],
                X_train.shape[0],
                Y_train.shape[0],
            )
            for item in items
        ]
    )
    # Chaotic and far-ordered networks may overflow on purpose: their nan is a result.
    with np.errstate(all="ignore"):
        history = ensemble.fit(
            X_train,
            Y_train,
            epochs=first["epochs"],
            learning_rate=first["learning_rate"],
            batch_size=first["batch_size"],
        )
        accuracy = ensemble.evaluate(X_test, Y_test)["accuracy"]
    rows = []
    for k, item in enumerate(items):
        xi_c = float(
            theory.depth_scales(item["activation"], item["weight_variance"], item["bias_variance"])[
                1
            ]
        )
        rows.append(
            {
                **item,
                "test_accuracy": float(accuracy[k]),
                "train_loss": float(history["loss"][-1, k]),
                "xi_c": xi_c,
                "predicted_max_depth": DEPTH_MULTIPLE * xi_c,
            }
        )
    return rows


@functools.cache
def _digits(data_seed):
    from initlab.blocks.datasets import digits

    return digits(seed=data_seed)


def trainability(
    activation="tanh",
    bias_variance=BIAS_VARIANCE,
    depths=DEFAULT_DEPTHS,
    weight_variances=DEFAULT_WEIGHT_VARIANCES,
    seeds=(0, 1),
    width=DEFAULT_WIDTH,
    epochs=DEFAULT_EPOCHS,
    learning_rate=DEFAULT_LEARNING_RATE,
    batch_size=32,
    data_seed=0,
):
    """Train the grid depth x σ_w² x seed on digits in this process; one row per network.

    Each row: the network's settings (activation, bias_variance, depth, weight_variance, seed,
    width, epochs, learning_rate, batch_size, data_seed), test_accuracy (percent), train_loss
    (the last epoch's), xi_c and predicted_max_depth (DEPTH_MULTIPLE · ξ_c). The command runs
    the same networks on the sweep engine.
    """
    depths = [checks.integer("depths", depth, minimum=1) for depth in depths]
    weight_variances = [checks.number("weight_variances", wv, minimum=0) for wv in weight_variances]
    seeds = [checks.integer("seeds", seed, minimum=0) for seed in seeds]
    if not (depths and weight_variances and seeds):
        raise ValueError("depths, weight_variances and seeds must each list at least one value")
    for name, values in (("depths", depths), ("weight_variances", weight_variances)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} lists a value more than once: {values}")
    grid = {
        "activation": activation,
        "bias_variance": checks.number("bias_variance", bias_variance, minimum=0),
        "depths": depths,
        "weight_variances": weight_variances,
        "seeds": seeds,
        "width": checks.integer("width", width, minimum=1),
        "epochs": checks.integer("epochs", epochs, minimum=1),
        "learning_rate": checks.positive("learning_rate", learning_rate),
        "batch_size": checks.integer("batch_size", batch_size, minimum=1),
        "data_seed": checks.integer("data_seed", data_seed, minimum=0),
    }
    theory.depth_scales(activation, 1.0, grid["bias_variance"])  # refuses a non-elementwise φ
    items = grid_items(grid)  # by depth, so the groups' rows come in the items' order
    return [
        row
        for depth in sorted(set(depths))
        for row in train_networks([item for item in items if item["depth"] == depth])
    ]


def _network(activation, weight_variance, bias_variance, depth, width, seed, n_inputs, n_outputs):
    from initlab.blocks.initializers import Initializer
    from initlab.blocks.layers import Dense
    from initlab.engine.model import NeuralNetwork

    model = NeuralNetwork(seed=seed)
    fan_in = n_inputs
    for units, layer_activation in [(width, activation)] * depth + [(n_outputs, "softmax")]:
        model.add(
            Dense(
                units,
                activation=layer_activation,
                initializer=Initializer(
                    "random_normal", stddev=math.sqrt(weight_variance / fan_in)
                ),
                bias_initializer=Initializer("random_normal", stddev=math.sqrt(bias_variance)),
            )
        )
        fan_in = units
    model.compile(loss="categorical_crossentropy")
    return model
