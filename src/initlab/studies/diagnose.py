"""Diagnose deep MLPs on digits layer by layer: signal std, histograms, dead and saturated units.

For each scheme, a network of --depth hidden layers of --width units (all layers drawn by the
scheme, softmax output) gets one diagnostic pass on a batch of scikit-learn's digits, without
training: the std per layer of activations and gradients, Glorot & Bengio-style histograms, and
tables. With --epochs N it is then trained and re-measured at the --record-at epochs.

    initlab diagnose --depth 20 --width 64 --activation relu \\
        --schemes he_normal glorot_uniform random_normal:0.01 --out diag-relu

signal_std.png also draws, as a wide pale line under each scheme's own, the activation std that
the mean-field theory predicts for each network from its drawn weights and the batch
(initlab.tools.theory.predict_signals); the layers table gives it beside the measured one.

Files written in --out: signal_std.png, histograms.png, summary.{md,csv,json} (one row per
scheme), layers.{md,csv,json} (one row per scheme, layer and measured epoch) and, when
training, signal_std_training.png.
"""

import os
import time

import numpy as np

from initlab.blocks import activations
from initlab.blocks.datasets import DIGITS_TRAIN
from initlab.studies import arguments, output, signal_plots
from initlab.studies.schemes import (
    SCHEMES_HELP,
    deep_mlp,
    deep_mlp_bytes,
    default_schemes,
    kernel_models,
    parse_schemes,
)
from initlab.tools.diagnostics import SignalRecorder, layer_signals, summarise
from initlab.tools.theory import predict_signals

# Every file this command may write: an earlier run's are replaced only with --force.
OUTPUTS = ("signal_std.png", "histograms.png", "signal_std_training.png") + tuple(
    f"{stem}.{ext}" for stem in ("summary", "layers") for ext in ("md", "csv", "json")
)


def hidden_activations():
    """Every registered elementwise activation, a user's included (softmax is an output's)."""
    return tuple(sorted(name for name, cls in activations.ACTIVATIONS.items() if cls().elementwise))


SUMMARY_COLUMNS = [
    ("scheme", "Scheme", "s"),
    ("first_activation_std", "std a, layer 1", ".3g"),
    ("last_activation_std", "std a, last", ".3g"),
    ("forward_ratio", "forward ratio", ".3g"),
    ("backward_ratio", "backward ratio", ".3g"),
    ("weight_grad_ratio", "dL/dW ratio", ".3g"),
    ("mean_dead_fraction", "dead units", ".1%"),
    ("mean_saturated_fraction", "saturated units", ".1%"),
    ("mean_saturated_value_fraction", "saturated values", ".1%"),
    ("initial_loss", "loss at init", ".4g"),
]
LAYER_COLUMNS = [
    ("scheme", "Scheme", "s"),
    ("epoch", "Epoch", "s"),
    ("layer", "Layer", "d"),
    ("preactivation_mean", "mean z", ".3g"),
    ("preactivation_std", "std z", ".3g"),
    ("activation_mean", "mean a", ".3g"),
    ("activation_std", "std a", ".3g"),
    ("theory_activation_std", "std a, theory", ".3g"),
    ("activation_grad_std", "std dL/da", ".3g"),
    ("weight_grad_std", "std dL/dW", ".3g"),
    ("dead_fraction", "dead", ".1%"),
    ("saturated_fraction", "saturated", ".1%"),
    ("saturated_value_fraction", "saturated values", ".1%"),
]


def add_arguments(parser):
    parser.add_argument("--depth", type=int, default=20, help="hidden layers (default 20)")
    parser.add_argument("--width", type=int, default=64, help="units per hidden layer (default 64)")
    parser.add_argument(
        "--activation",
        default="relu",
        help=f"hidden activation, one of {', '.join(hidden_activations())} (default relu)",
    )
    parser.add_argument(
        "--schemes",
        nargs="+",
        default=None,
        metavar="NAME",
        help=SCHEMES_HELP.format(default=default_schemes()),
    )
    parser.add_argument("--out", required=True, help="directory for figures and tables")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace result files already in --out (other files are left alone)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=500,
        help=f"digits training samples in the measured batch (default 500, at most "
        f"{DIGITS_TRAIN}: the training split holds that many)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data split")
    parser.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="train this many epochs after measuring at init (default 0: none)",
    )
    parser.add_argument(
        "--record-at",
        nargs="+",
        default=None,
        metavar="EPOCH",
        help="epochs (from 0) to re-measure during training, separated by spaces "
        "or commas (default: the first, middle and last)",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.01,
        help="SGD learning rate when training (default 0.01)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="minibatch size when training (default 32)"
    )
    arguments.add_quiet(parser)


def check_arguments(args):
    """Check every argument before any work; return the parsed schemes and record epochs."""
    arguments.check_int("--depth", args.depth, minimum=1, maximum=arguments.MAX_DEPTH)
    arguments.check_int("--width", args.width, minimum=1, maximum=arguments.MAX_WIDTH)
    arguments.choice("--activation", args.activation, hidden_activations())
    schemes = parse_schemes(default_schemes() if args.schemes is None else args.schemes)
    # Digits' training split is all there is: a larger batch would quietly be that split.
    arguments.check_int("--samples", args.samples, minimum=2, maximum=DIGITS_TRAIN)
    arguments.check_int("--seed", args.seed, minimum=0)
    arguments.check_int("--epochs", args.epochs, minimum=0, maximum=arguments.MAX_EPOCHS)
    arguments.check_number("--learning-rate", args.learning_rate)
    arguments.check_int("--batch-size", args.batch_size, minimum=1, maximum=arguments.MAX_SAMPLES)
    # Each scheme's network in turn; the signals of every scheme are kept for the figures.
    samples = args.samples
    arguments.check_memory(
        f"{len(schemes)} networks of depth {args.depth} and width {args.width}",
        deep_mlp_bytes(
            args.depth,
            args.width,
            args.batch_size,
            max(args.epochs, 1),
            signals=len(schemes) * 4,
            samples=samples,
        ),
        "use a smaller --width, --depth or --samples",
    )
    record_at = []
    if args.record_at is not None:
        if args.epochs == 0:
            raise ValueError(
                f"--record-at {' '.join(arguments.split_list(args.record_at))!r} needs --epochs > 0"
            )
        record_at = arguments.int_list("--record-at", args.record_at, minimum=0)
        late = [epoch for epoch in record_at if epoch >= args.epochs]
        if late:
            raise ValueError(
                f"--record-at lists {late}, but training runs epochs 0 to {args.epochs - 1}"
            )
    elif args.epochs > 0:
        record_at = sorted({0, (args.epochs - 1) // 2, args.epochs - 1})
    return schemes, record_at


def run(args):
    schemes, record_at = check_arguments(args)
    out_dir = output.prepare_out_dir(args.out, args.force, OUTPUTS)
    from initlab.blocks.datasets import digits

    say = arguments.printer(args.quiet)
    started = time.perf_counter()
    X_train, Y_train, X_test, Y_test = digits(seed=args.seed)
    X, Y = X_train[:, : args.samples], Y_train[:, : args.samples]
    hidden = slice(0, args.depth)
    if args.epochs:
        arguments.say_compiling(
            say, kernel_models([args.activation], args.width, X.shape[0], Y.shape[0])
        )

    init_records, init_signals, trained_records, summary = {}, {}, {}, []
    # The mean-field theory's activation std per hidden layer, from each network's drawn weights.
    predicted = {}
    for scheme in schemes:
        model = deep_mlp(
            scheme,
            args.depth,
            args.width,
            n_inputs=X.shape[0],
            n_outputs=Y.shape[0],
            activation=args.activation,
            seed=args.seed,
            X=X,
        )
        signals = layer_signals(model, X, Y)
        records = summarise(model, signals)
        init_records[scheme.label] = records[hidden]
        init_signals[scheme.label] = signals[hidden]
        with np.errstate(all="ignore"):
            predicted[scheme.label] = [
                row["activation_std"] for row in predict_signals(model, X)[hidden]
            ]
        row = summary_row(scheme.label, records[hidden], initial_loss(model, X, Y))
        if args.epochs:
            recorder = SignalRecorder(X, Y, epochs=record_at)
            with np.errstate(all="ignore"):
                model.fit(
                    X_train,
                    Y_train,
                    epochs=args.epochs,
                    learning_rate=args.learning_rate,
                    batch_size=args.batch_size,
                    callbacks=[recorder],
                )
                row["test_accuracy"] = model.evaluate(X_test, Y_test)["accuracy"]
            trained_records[scheme.label] = [r for r in records[hidden]] + [
                r for r in recorder.records if r.layer <= args.depth
            ]
        summary.append(row)

    title = f"{args.depth} {args.activation} layers of {args.width} units, digits, seed {args.seed}"
    signal_plots.plot_signal_std(
        init_records,
        os.path.join(out_dir, "signal_std.png"),
        title=f"At initialisation: {title}",
        predicted=predicted,
    )
    signal_plots.plot_histograms(
        init_signals,
        os.path.join(out_dir, "histograms.png"),
        activation=args.activation,
        title=f"At initialisation: {title}",
    )
    layer_rows = [
        {"scheme": label, **record.as_dict()}
        for label, records in (trained_records or init_records).items()
        for record in records
    ]
    for row in layer_rows:
        if row["epoch"] is None:
            row["theory_activation_std"] = predicted[row["scheme"]][row["layer"] - 1]
        row["epoch"] = "init" if row["epoch"] is None else row["epoch"]
    columns = SUMMARY_COLUMNS + (
        [("test_accuracy", "test acc. after training", ".1f")] if args.epochs else []
    )
    written = output.write_table(summary, out_dir, "summary", columns)
    written += output.write_table(layer_rows, out_dir, "layers", LAYER_COLUMNS)
    written += [os.path.join(out_dir, name) for name in ("signal_std.png", "histograms.png")]
    if args.epochs:
        path = os.path.join(out_dir, "signal_std_training.png")
        signal_plots.plot_signal_std_over_training(
            trained_records, path, title=f"During training: {title}"
        )
        written.append(path)

    say(
        f"{title}; forward ratio = std(a) at layer {args.depth} / layer 1, backward ratio = "
        f"std(dL/da) at layer 1 / layer {args.depth}, both at initialisation\n"
    )
    say(output.markdown_table(summary, columns))
    say(f"\n{len(written)} files in {out_dir} ({time.perf_counter() - started:.1f} s)")
    return 0


def summary_row(label, hidden_records, loss):
    """One scheme's summary: scale of the signals at the first and last hidden layer, and more."""
    first, last = hidden_records[0], hidden_records[-1]
    dead = [r.dead_fraction for r in hidden_records if r.dead_fraction is not None]
    saturated = [r.saturated_fraction for r in hidden_records if r.saturated_fraction is not None]
    saturated_values = [
        r.saturated_value_fraction for r in hidden_records if r.saturated_value_fraction is not None
    ]
    return {
        "scheme": label,
        "first_activation_std": first.activation_std,
        "last_activation_std": last.activation_std,
        "forward_ratio": ratio(last.activation_std, first.activation_std),
        "backward_ratio": ratio(first.activation_grad_std, last.activation_grad_std),
        "weight_grad_ratio": ratio(first.weight_grad_std, last.weight_grad_std),
        "mean_dead_fraction": float(np.mean(dead)) if dead else None,
        "mean_saturated_fraction": float(np.mean(saturated)) if saturated else None,
        "mean_saturated_value_fraction": (
            float(np.mean(saturated_values)) if saturated_values else None
        ),
        "initial_loss": loss,
    }


def ratio(numerator, denominator):
    """numerator / denominator, with 0/0 and x/0 as nan and inf rather than warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(numerator, denominator))


def initial_loss(model, X, Y):
    with np.errstate(all="ignore"):
        return model.evaluate(X, Y)["loss"]
