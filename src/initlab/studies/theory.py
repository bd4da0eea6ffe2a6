"""Signal-propagation theory for one activation: phase diagram, theory over real networks.

For --activation, the mean-field theory (initlab.tools.theory) is computed over a grid of weight
variances σ_w² (logarithmic) and bias variances σ_b²: the fixed point q* of the pre-activations'
second moment, χ1, the correlation fixed point c* and the depth scales ξ_q, ξ_c, with the edge
of chaos (χ1 = 1) and the named schemes placed on it (all with zero bias, σ_w² = fan_in · Var(W)):
zeros (0), N(0, 0.01²) (--width · 1e-4), LeCun and Glorot for equal widths (1), He (2) and the
post's randn x 10 (100 · --width). Then, at each --bias-variance, for σ_w² at half, once and
twice its edge value, networks of --depth Dense layers of --width units with Gaussian weights and
biases are run forward on pairs of inputs over --seeds, and their per-layer q^l and c^l are drawn
under the theory's.

    initlab theory --activation tanh --bias-variance 0.05 --out theory-tanh
    initlab theory --activation relu --bias-variance 0,0.1 --width 512 --out theory-relu

Files written in --out: phase_diagram.png, propagation.png, and tables (md, csv, json) of every
number drawn: phase (one row per grid cell), edge (the critical σ_w² per σ_b²), schemes,
propagation (one row per point and layer: theory, and the seeds' mean, min and max), gains
(the exact variance-preserving gain and γ beside PyTorch's calculate_gain), and config.json.
"""

import json
import math
import os
import time

import numpy as np

from initlab.blocks import activations as activations_module
from initlab.studies import arguments, output, signal_plots
from initlab.tools import theory

TABLES = ("phase", "edge", "schemes", "propagation", "gains")
OUTPUTS = ("phase_diagram.png", "propagation.png", "config.json") + tuple(
    f"{stem}.{ext}" for stem in TABLES for ext in ("md", "csv", "json")
)

# The σ_w² of the edge that the propagation points take, for each --bias-variance.
EDGE_MULTIPLES = (0.5, 1.0, 2.0)

PHASE_COLUMNS = [
    ("weight_variance", "σ_w²", ".4g"),
    ("bias_variance", "σ_b²", ".4g"),
    ("q_star", "q*", ".4g"),
    ("chi1", "χ1", ".4g"),
    ("c_star", "c*", ".4g"),
    ("xi_q", "ξ_q", ".4g"),
    ("xi_c", "ξ_c", ".4g"),
]
EDGE_COLUMNS = [
    ("bias_variance", "σ_b²", ".4g"),
    ("critical_weight_variance", "critical σ_w²", ".5g"),
    ("critical_weight_std", "critical σ_w", ".4g"),
    ("q_star", "q* there", ".4g"),
    ("xi_q", "ξ_q there", ".4g"),
]
SCHEME_COLUMNS = [
    ("scheme", "Scheme", "s"),
    ("weight_variance", "σ_w²", ".4g"),
    ("bias_variance", "σ_b²", ".4g"),
    ("q_star", "q*", ".4g"),
    ("chi1", "χ1", ".4g"),
    ("phase", "phase", "s"),
    ("xi_c", "ξ_c", ".4g"),
]
PROPAGATION_COLUMNS = [
    ("point", "Point", "s"),
    ("layer", "Layer", "d"),
    ("q_theory", "q theory", ".4g"),
    ("q_measured", "q measured (mean)", ".4g"),
    ("q_relative_error", "q rel. error", ".2%"),
    ("q_min", "q min", ".4g"),
    ("q_max", "q max", ".4g"),
    ("c_theory", "c theory", ".4f"),
    ("c_measured", "c measured (mean)", ".4f"),
    ("c_min", "c min", ".4f"),
    ("c_max", "c max", ".4f"),
]
GAIN_COLUMNS = [
    ("activation", "Activation", "s"),
    ("exact_gain", "exact gain 1/√E[φ(z)²]", ".5f"),
    ("pytorch_gain", "calculate_gain", ".5f"),
    ("relative_difference", "calculate_gain / exact - 1", "+.2%"),
    ("gamma", "γ = 1/std φ(z)", ".5f"),
]


def add_arguments(parser):
    parser.add_argument(
        "--activation",
        default="tanh",
        help=f"the activation, one of {', '.join(elementwise_activations())} (default tanh)",
    )
    parser.add_argument(
        "--bias-variance",
        default="0.05",
        help="comma-separated σ_b² values at which networks are measured, each "
        "at 0.5, 1 and 2 times its critical σ_w² (default 0.05)",
    )
    parser.add_argument("--depth", type=int, default=30, help="layers (default 30)")
    parser.add_argument("--width", type=int, default=256, help="units per layer (default 256)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        metavar="N",
        help="measured networks per point, seeds S .. S + N - 1 (default 3)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="the first seed of the measured networks (default 0)",
    )
    parser.add_argument(
        "--pairs", type=int, default=32, help="pairs of inputs per network (default 32)"
    )
    parser.add_argument(
        "--input-correlation",
        type=float,
        default=0.5,
        help="correlation c0 of each pair of inputs (default 0.5)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=40,
        help="phase diagram cells along σ_w² (half as many along σ_b²; default 40)",
    )
    parser.add_argument(
        "--max-bias-variance",
        type=float,
        default=0.5,
        help="top of the phase diagram's σ_b² axis (default 0.5)",
    )
    parser.add_argument("--out", required=True, help="directory for figures and tables")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace result files already in --out (other files are left alone)",
    )
    arguments.add_quiet(parser)


def elementwise_activations():
    """The registered activations the theory applies to (softmax is not elementwise), sorted."""
    return sorted(name for name in activations_module.ACTIVATIONS if theory.is_elementwise(name))


def check_arguments(args):
    """Check every argument before any work; return the bias variances and the seeds."""
    arguments.choice("--activation", args.activation, elementwise_activations())
    bias_variances = number_list("--bias-variance", args.bias_variance)
    arguments.check_int("--depth", args.depth, minimum=1)
    arguments.check_int("--width", args.width, minimum=2)
    # --seeds is a count, as in every command; seeds S .. S + N - 1.
    n_seeds = arguments.check_int("--seeds", args.seeds, minimum=1, maximum=arguments.MAX_SEEDS)
    first_seed = arguments.check_int("--seed", args.seed, minimum=0)
    seeds = list(range(first_seed, first_seed + n_seeds))
    arguments.check_int("--pairs", args.pairs, minimum=1)
    c0 = arguments.check_number(
        "--input-correlation", args.input_correlation, minimum=-1, strict=False
    )
    if c0 > 1:
        raise ValueError(f"--input-correlation must be in [-1, 1], got {c0!r}")
    arguments.check_int("--resolution", args.resolution, minimum=4)
    arguments.check_number("--max-bias-variance", args.max_bias_variance)
    return bias_variances, seeds


def number_list(option, text):
    """Parse "a,b" into distinct finite numbers >= 0, in the order given."""
    values = []
    for part in (part.strip() for part in str(text).split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{option} must be comma-separated numbers >= 0, got {text!r}"
            ) from None
        values.append(arguments.check_number(option, value, minimum=0, strict=False))
    if not values:
        raise ValueError(f"{option} must list at least one number >= 0, got {text!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{option} lists a value more than once: {text!r}")
    return values


def named_schemes(width):
    """(label, σ_w²) of the named schemes, zero bias, for layers of `width` units (= fan_in)."""
    return [
        ("zeros", 0.0),
        ("N(0, 0.01²)", width * 1e-4),
        ("LeCun / Glorot", 1.0),
        ("He", 2.0),
        ("randn x 10 (the post)", 100.0 * width),
    ]


def run(args):
    bias_variances, seeds = check_arguments(args)
    out_dir = output.prepare_out_dir(args.out, args.force, OUTPUTS)
    started = time.perf_counter()
    activation = args.activation

    schemes = named_schemes(args.width)
    largest = max(wv for _, wv in schemes)
    weight_grid = np.logspace(-2, math.log10(2 * largest), args.resolution)
    bias_grid = np.linspace(0.0, args.max_bias_variance, args.resolution // 2 + 1)
    phase_rows = phase_table(activation, weight_grid, bias_grid)
    edge_rows = edge_table(activation, np.union1d(bias_grid, bias_variances))
    scheme_rows = scheme_table(activation, schemes)
    points = propagation_points(activation, bias_variances)
    propagation_rows = propagation_table(
        activation, points, args.depth, args.width, seeds, args.pairs, args.input_correlation
    )
    gain_rows = theory.gain_table()
    elapsed = time.perf_counter() - started

    title = f"{activation}: mean-field theory"
    phase_path = os.path.join(out_dir, "phase_diagram.png")
    signal_plots.plot_phase_diagram(
        phase_rows,
        edge_rows,
        scheme_rows,
        points,
        phase_path,
        title=f"{title}; schemes for layers of {args.width} units",
    )
    propagation_path = os.path.join(out_dir, "propagation.png")
    signal_plots.plot_propagation(
        propagation_rows,
        propagation_path,
        title=(
            f"{activation}: theory (lines) over {len(seeds)} seeds of width {args.width} "
            f"(dots: mean, band: min-max), input correlation {args.input_correlation}"
        ),
    )
    written = [phase_path, propagation_path]
    for stem, rows, columns in (
        ("phase", phase_rows, PHASE_COLUMNS),
        ("edge", edge_rows, EDGE_COLUMNS),
        ("schemes", scheme_rows, SCHEME_COLUMNS),
        ("propagation", propagation_rows, PROPAGATION_COLUMNS),
        ("gains", gain_rows, GAIN_COLUMNS),
    ):
        written += output.write_table(rows, out_dir, stem, columns)
    config = {key: value for key, value in vars(args).items() if key != "run"}
    config.update(
        seeds=seeds,
        bias_variances=bias_variances,
        points=[
            {"label": label, "weight_variance": wv, "bias_variance": bv} for label, wv, bv in points
        ],
        elapsed_seconds=round(elapsed, 1),
    )
    config_path = os.path.join(out_dir, "config.json")
    output.write_atomic(config_path, json.dumps(config, indent=1))
    written.append(config_path)

    say = arguments.printer(args.quiet)
    say(f"{title}. Edge of chaos (χ1 = 1), σ_w² = fan_in · Var(W):\n")
    say(
        output.markdown_table(
            [
                row
                for row in edge_rows
                if row["bias_variance"] in bias_variances or row["bias_variance"] == 0
            ],
            EDGE_COLUMNS,
        )
    )
    say(f"\nNamed schemes, layers of {args.width} units, no bias:\n")
    say(output.markdown_table(scheme_rows, SCHEME_COLUMNS))
    say(f"\n{len(written)} files in {out_dir} ({elapsed:.1f} s)")
    return 0


def phase_table(activation, weight_grid, bias_grid):
    """One row per (σ_w², σ_b²) cell: q*, χ1, c*, ξ_q, ξ_c."""
    weights, biases = np.meshgrid(weight_grid, bias_grid)
    parts = theory.phase_quantities(activation, weights, biases)
    keys = ("q_star", "chi1", "c_star", "xi_q", "xi_c")
    return [
        {
            "weight_variance": float(weights[index]),
            "bias_variance": float(biases[index]),
            **{key: float(parts[key][index]) for key in keys},
        }
        for index in np.ndindex(weights.shape)
    ]


def edge_table(activation, bias_variances):
    """One row per σ_b²: the critical σ_w² (χ1 = 1), its square root, q* and ξ_q there."""
    critical = np.atleast_1d(theory.critical_weight_variance(activation, bias_variances))
    rows = []
    for bv, wv in zip(bias_variances, critical, strict=True):
        row = {
            "bias_variance": float(bv),
            "critical_weight_variance": float(wv),
            "critical_weight_std": float(np.sqrt(wv)),
            "q_star": None,
            "xi_q": None,
        }
        if np.isfinite(wv):
            row["q_star"] = theory.fixed_point(activation, wv, bv)
            row["xi_q"] = theory.depth_scales(activation, wv, bv)[0]
        rows.append(row)
    return rows


def scheme_table(activation, schemes):
    """One row per named scheme (zero bias): q*, χ1, its phase and ξ_c."""
    rows = []
    for label, wv in schemes:
        chi = theory.chi1(activation, wv, 0.0)
        phase = "ordered" if chi < 1 - 1e-9 else "chaotic" if chi > 1 + 1e-9 else "critical"
        rows.append(
            {
                "scheme": label,
                "weight_variance": wv,
                "bias_variance": 0.0,
                "q_star": theory.fixed_point(activation, wv, 0.0),
                "chi1": chi,
                "phase": phase,
                "xi_c": theory.depth_scales(activation, wv, 0.0)[1],
            }
        )
    return rows


def propagation_points(activation, bias_variances):
    """(label, σ_w², σ_b²): for each σ_b², EDGE_MULTIPLES times its critical σ_w².

    Where the activation has no edge at that σ_b² (χ1 < 1 everywhere), σ_w² = 1, 2, 4 instead.
    """
    points = []
    for bv in bias_variances:
        edge = theory.critical_weight_variance(activation, bv)
        base, multiples = (edge, EDGE_MULTIPLES) if np.isfinite(edge) else (1.0, (1.0, 2.0, 4.0))
        for multiple in multiples:
            wv = float(base * multiple)
            points.append((f"σ_w²={wv:.3g}, σ_b²={bv:.3g}", wv, float(bv)))
    return points


def propagation_table(activation, points, depth, width, seeds, pairs, c0):
    """One row per point and layer: the theory's q^l, c^l and the seeds' mean, min and max."""
    rows = []
    for label, wv, bv in points:
        with np.errstate(all="ignore"):
            q_theory, c_theory = theory.propagate(activation, wv, bv, depth, q0=1.0, c0=c0)
            q, c = theory.measure_propagation(
                activation, wv, bv, depth, width, seeds=seeds, pairs=pairs, q0=1.0, c0=c0
            )
        for layer in range(depth):
            measured = float(q[:, layer].mean())
            rows.append(
                {
                    "point": label,
                    "weight_variance": wv,
                    "bias_variance": bv,
                    "layer": layer + 1,
                    "q_theory": float(q_theory[layer]),
                    "q_measured": measured,
                    "q_relative_error": (
                        measured / q_theory[layer] - 1
                        if np.isfinite(q_theory[layer]) and q_theory[layer] > 0
                        else None
                    ),
                    "q_min": float(q[:, layer].min()),
                    "q_max": float(q[:, layer].max()),
                    "c_theory": float(c_theory[layer]),
                    "c_measured": float(c[:, layer].mean()),
                    "c_min": float(c[:, layer].min()),
                    "c_max": float(c[:, layer].max()),
                }
            )
    return rows
