"""Initializers: every scheme against its formula, against PyTorch's own draws, names, bad
parameters, seeding, configs through save and load, and the post's patches."""

import json
import math
import warnings

import numpy as np
import pytest

from initlab import Dense, Initializer, NeuralNetwork
from initlab.blocks import initializers
from initlab.blocks.datasets import moons
from initlab.blocks.initializers import ALIASES, INITIALIZERS, calculate_gain

# A weight of shape (units, fan_in): fan_in 500, fan_out 300, fan_avg 400, 150,000 draws.
SHAPE = (300, 500)
FAN_IN, FAN_OUT, FAN_AVG = 500, 300, 400
C = 0.87962566103423978  # Keras's truncated-normal correction
SQRT12 = math.sqrt(12)


def draw(name, seed=0, shape=SHAPE, **params):
    return Initializer(name, **params)(shape, rng=np.random.default_rng(seed))


def assert_statistics(weights, mean, std, bound):
    """Mean and std within sampling error of the formula; bound reached, or (None) passed 3 std."""
    spread = std / math.sqrt(weights.size)
    assert abs(weights.mean() - mean) <= 5 * spread + 1e-12
    assert weights.std() == pytest.approx(std, rel=0.02)
    deviation = np.abs(weights - mean).max()
    if bound is None:
        # An untruncated normal: 150,000 draws go past 3 standard deviations ~400 times.
        assert deviation > 3 * std
    else:
        assert 0.97 * bound <= deviation <= bound * (1 + 1e-12)


# (name, parameters, mean, standard deviation, max |W - mean| or None for an untruncated normal)
STATISTICS = [
    ("random_normal", {}, 0.0, 1.0, None),
    ("random_normal", {"mean": 0.5, "stddev": 2.0, "scale": 3.0}, 1.5, 6.0, None),
    ("normal_", {"mean": 1.0, "std": 0.5}, 1.0, 0.5, None),
    ("random_uniform", {}, 0.0, 0.1 / SQRT12, 0.05),
    ("uniform_", {}, 0.5, 1 / SQRT12, 0.5),
    ("uniform_", {"a": -3.0, "b": 1.0}, -1.0, 4 / SQRT12, 2.0),
    ("truncated_normal", {"stddev": 1.0}, 0.0, C, 2.0),
    ("truncated_normal", {"mean": 2.0, "stddev": 0.5}, 2.0, 0.5 * C, 1.0),
    ("trunc_normal_", {}, 0.0, C, 2.0),
    # PyTorch's bounds are absolute: at std 0.02, a=-2 and b=2 truncate nothing.
    ("trunc_normal_", {"std": 0.02}, 0.0, 0.02, None),
    ("glorot_normal", {}, 0.0, math.sqrt(1 / FAN_AVG), 2 * math.sqrt(1 / FAN_AVG) / C),
    ("glorot_uniform", {}, 0.0, math.sqrt(1 / FAN_AVG), math.sqrt(3 / FAN_AVG)),
    (
        "xavier_uniform_",
        {"gain": 0.5},
        0.0,
        0.5 * math.sqrt(1 / FAN_AVG),
        0.5 * math.sqrt(3 / FAN_AVG),
    ),
    ("xavier_normal_", {"gain": 2.0}, 0.0, 2 * math.sqrt(1 / FAN_AVG), None),
    ("xavier", {}, 0.0, math.sqrt(1 / FAN_IN), None),
    ("he", {}, 0.0, math.sqrt(2 / FAN_IN), None),
    ("he_normal", {}, 0.0, math.sqrt(2 / FAN_IN), 2 * math.sqrt(2 / FAN_IN) / C),
    ("kaiming_normal", {}, 0.0, math.sqrt(2 / FAN_IN), None),
    (
        "kaiming_normal_",
        {"mode": "fan_out", "nonlinearity": "relu"},
        0.0,
        math.sqrt(2 / FAN_OUT),
        None,
    ),
    ("kaiming_normal", {"a": 0.2}, 0.0, math.sqrt(2 / 1.04 / FAN_IN), None),
    ("kaiming_normal", {"nonlinearity": "tanh"}, 0.0, 5 / 3 / math.sqrt(FAN_IN), None),
    ("kaiming_normal", {"nonlinearity": "selu"}, 0.0, 0.75 / math.sqrt(FAN_IN), None),
    ("kaiming_uniform", {}, 0.0, math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    ("he_uniform", {}, 0.0, math.sqrt(2 / FAN_IN), math.sqrt(6 / FAN_IN)),
    (
        "kaiming_uniform_",
        {"a": math.sqrt(5)},
        0.0,
        1 / math.sqrt(3 * FAN_IN),
        1 / math.sqrt(FAN_IN),
    ),
    ("lecun_normal", {}, 0.0, math.sqrt(1 / FAN_IN), 2 * math.sqrt(1 / FAN_IN) / C),
    ("lecun_uniform", {}, 0.0, math.sqrt(1 / FAN_IN), math.sqrt(3 / FAN_IN)),
    ("pytorch_linear", {}, 0.0, 1 / math.sqrt(3 * FAN_IN), 1 / math.sqrt(FAN_IN)),
    ("sparse", {"sparsity": 0.0, "std": 0.5}, 0.0, 0.5, None),
    ("constant", {"value": 0.3}, 0.3, 0.0, 0.0),
]

# variance_scaling over every mode and distribution, scale 2.
for _mode, _n in (("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", FAN_AVG)):
    _std = math.sqrt(2 / _n)
    STATISTICS += [
        ("variance_scaling", {"scale": 2.0, "mode": _mode}, 0.0, _std, 2 * _std / C),
        (
            "variance_scaling",
            {"scale": 2.0, "mode": _mode, "distribution": "normal"},
            0.0,
            _std,
            2 * _std / C,
        ),
        (
            "variance_scaling",
            {"scale": 2.0, "mode": _mode, "distribution": "untruncated_normal"},
            0.0,
            _std,
            None,
        ),
        (
            "variance_scaling",
            {"scale": 2.0, "mode": _mode, "distribution": "uniform"},
            0.0,
            _std,
            math.sqrt(3) * _std,
        ),
    ]


@pytest.mark.parametrize(
    "name, params, mean, std, bound", STATISTICS, ids=[f"{row[0]}-{row[1]}" for row in STATISTICS]
)
def test_a_large_draw_has_the_formulas_mean_std_and_bounds(name, params, mean, std, bound):
    weights, bias = draw(name, **params)
    assert weights.shape == SHAPE and bias.shape == (SHAPE[0], 1)
    if std == 0:
        np.testing.assert_array_equal(weights, mean)
    else:
        assert_statistics(weights, mean, std, bound)
    if name != "pytorch_linear":
        assert not bias.any()


def test_every_scheme_has_a_statistics_case():
    covered = {ALIASES[name] for name, *_ in STATISTICS}
    structured = {"zeros", "ones", "orthogonal", "identity"}  # tested exactly below
    assert covered | structured == set(INITIALIZERS)


def test_zeros_and_ones_are_exact():
    np.testing.assert_array_equal(draw("zeros")[0], np.zeros(SHAPE))
    np.testing.assert_array_equal(draw("ones_")[0], np.ones(SHAPE))


def test_truncation_correction_is_the_std_of_a_normal_cut_at_two_sigma():
    # Var of N(0, 1) truncated to [-2, 2] = 1 - 2 * 2 phi(2) / (2 Phi(2) - 1).
    phi = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert math.sqrt(1 - 4 * phi / mass) == pytest.approx(
        initializers.TRUNCATED_NORMAL_STD, rel=1e-15
    )


def test_fans_are_read_from_the_units_by_fan_in_layout():
    # fan_in is shape[1]: a mix-up of the two axes changes the std by a factor of 20 here.
    wide, _ = draw("he", shape=(10, 4000))
    tall, _ = draw("he", shape=(4000, 10))
    assert wide.std() == pytest.approx(math.sqrt(2 / 4000), rel=0.05)
    assert tall.std() == pytest.approx(math.sqrt(2 / 10), rel=0.05)
    out, _ = draw("kaiming_normal", shape=(10, 4000), mode="fan_out")
    assert out.std() == pytest.approx(math.sqrt(2 / 10), rel=0.05)


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (40, 40), (1, 7), (7, 1)])
@pytest.mark.parametrize("gain", [1.0, 1.7, -0.5])
def test_orthogonal_is_orthogonal_on_the_smaller_side(shape, gain):
    weights, _ = draw("orthogonal", shape=shape, gain=gain)
    units, fan_in = shape
    gram = weights @ weights.T if units <= fan_in else weights.T @ weights
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(shape)), atol=1e-12)


def test_orthogonal_sign_correction_makes_it_haar_distributed():
    # Without fixing Q's column signs by diag(R), LAPACK's QR gives Q[0, 0] a mean near -0.5.
    rng = np.random.default_rng(0)
    init = Initializer("orthogonal")
    corners = [init((3, 3), rng=rng)[0][0, 0] for _ in range(2000)]
    assert abs(np.mean(corners)) < 0.05


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4)])
def test_identity_and_eye(shape):
    np.testing.assert_array_equal(draw("identity", shape=shape, gain=2.5)[0], 2.5 * np.eye(*shape))
    np.testing.assert_array_equal(draw("eye_", shape=shape)[0], np.eye(*shape))


@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.99])
def test_sparse_zeroes_the_same_number_of_rows_in_every_column(sparsity):
    weights, _ = draw("sparse_", sparsity=sparsity, std=0.5)
    zeros_per_column = (weights == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros_per_column, math.ceil(sparsity * SHAPE[0]))
    assert weights[weights != 0].std() == pytest.approx(0.5, rel=0.05)


def test_pytorch_linear_draws_its_own_uniform_bias():
    _, bias = draw("pytorch_linear")
    assert np.abs(bias).max() <= 1 / math.sqrt(FAN_IN) and np.unique(bias).size == SHAPE[0]


def test_calculate_gain_follows_pytorchs_table():
    assert calculate_gain("linear") == calculate_gain("sigmoid") == calculate_gain("conv2d") == 1
    assert calculate_gain("tanh") == 5 / 3
    assert calculate_gain("relu") == math.sqrt(2)
    assert calculate_gain("selu") == 0.75
    assert calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    with pytest.raises(ValueError, match="'swish'"):
        calculate_gain("swish")
    with pytest.raises(ValueError, match="True"):
        calculate_gain("leaky_relu", True)


# --- agreement with PyTorch's own draws --------------------------------------------------------

TORCH_CASES = [
    ("kaiming_normal_", {}, "kaiming_normal_", {}),
    (
        "kaiming_normal_",
        {"mode": "fan_out", "nonlinearity": "relu"},
        "kaiming_normal_",
        {"mode": "fan_out", "nonlinearity": "relu"},
    ),
    ("kaiming_uniform_", {"a": math.sqrt(5)}, "kaiming_uniform_", {"a": math.sqrt(5)}),
    (
        "kaiming_uniform_",
        {"mode": "fan_out", "nonlinearity": "tanh"},
        "kaiming_uniform_",
        {"mode": "fan_out", "nonlinearity": "tanh"},
    ),
    ("xavier_normal_", {"gain": 1.5}, "xavier_normal_", {"gain": 1.5}),
    ("xavier_uniform_", {"gain": 0.5}, "xavier_uniform_", {"gain": 0.5}),
    ("normal_", {"mean": 0.3, "std": 2.0}, "normal_", {"mean": 0.3, "std": 2.0}),
    ("uniform_", {"a": -1.0, "b": 3.0}, "uniform_", {"a": -1.0, "b": 3.0}),
    ("trunc_normal_", {}, "trunc_normal_", {}),
    ("trunc_normal_", {"std": 0.02}, "trunc_normal_", {"std": 0.02}),
    (
        "trunc_normal_",
        {"mean": 1.0, "std": 1.0, "a": 0.0, "b": 3.0},
        "trunc_normal_",
        {"mean": 1.0, "std": 1.0, "a": 0.0, "b": 3.0},
    ),
    # A window in the tail, where few normal draws land.
    ("trunc_normal_", {"a": 3.0, "b": 3.5}, "trunc_normal_", {"a": 3.0, "b": 3.5}),
    ("trunc_normal_", {"a": -1.5, "b": 0.5}, "trunc_normal_", {"a": -1.5, "b": 0.5}),
    ("he", {}, "kaiming_normal_", {}),
    ("xavier", {}, "kaiming_normal_", {"nonlinearity": "linear"}),
]


@pytest.mark.parametrize(
    "name, params, torch_name, torch_params",
    TORCH_CASES,
    ids=[f"{row[0]}-{row[1]}" for row in TORCH_CASES],
)
def test_draws_match_torch_nn_init_in_distribution(name, params, torch_name, torch_params):
    torch = pytest.importorskip("torch")
    ours, _ = draw(name, **params)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # trunc_normal_ warns that a window in the tail "may be incorrect"; the quantiles agree.
        warnings.simplefilter("ignore", UserWarning)
        theirs = getattr(torch.nn.init, torch_name)(
            torch.empty(SHAPE, dtype=torch.float64), **torch_params
        ).numpy()
    std = theirs.std()
    assert ours.std() == pytest.approx(std, rel=0.02)
    assert abs(ours.mean() - theirs.mean()) < 6 * std / math.sqrt(ours.size)
    quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    np.testing.assert_allclose(
        np.quantile(ours, quantiles), np.quantile(theirs, quantiles), atol=0.06 * std
    )
    # Extremes: loose, as a normal's vary from draw to draw; bounded draws are checked below.
    np.testing.assert_allclose(
        [ours.min(), ours.max()], [theirs.min(), theirs.max()], atol=0.6 * std
    )


@pytest.mark.parametrize(
    "name, params, torch_name, torch_params",
    [
        ("kaiming_uniform_", {"a": math.sqrt(5)}, "kaiming_uniform_", {"a": math.sqrt(5)}),
        ("xavier_uniform_", {"gain": 0.5}, "xavier_uniform_", {"gain": 0.5}),
        ("trunc_normal_", {}, "trunc_normal_", {}),
    ],
)
def test_bounded_draws_share_torchs_bounds(name, params, torch_name, torch_params):
    torch = pytest.importorskip("torch")
    ours, _ = draw(name, **params)
    torch.manual_seed(0)
    theirs = getattr(torch.nn.init, torch_name)(
        torch.empty(SHAPE, dtype=torch.float64), **torch_params
    ).numpy()
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(), rtol=0.003)


def test_exact_schemes_equal_torchs():
    torch = pytest.importorskip("torch")
    init = torch.nn.init
    for name, params, theirs in [
        ("zeros_", {}, init.zeros_(torch.empty(SHAPE, dtype=torch.float64))),
        ("ones_", {}, init.ones_(torch.empty(SHAPE, dtype=torch.float64))),
        ("constant_", {"val": 0.7}, init.constant_(torch.empty(SHAPE, dtype=torch.float64), 0.7)),
        ("eye_", {}, init.eye_(torch.empty(SHAPE, dtype=torch.float64))),
    ]:
        np.testing.assert_array_equal(draw(name, **params)[0], theirs.numpy())


def test_orthogonal_and_sparse_match_torchs_structure():
    torch = pytest.importorskip("torch")
    shape = (60, 100)
    torch.manual_seed(0)
    theirs = torch.nn.init.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=2.0).numpy()
    ours, _ = draw("orthogonal_", shape=shape, gain=2.0)
    np.testing.assert_allclose(
        np.linalg.svd(ours, compute_uv=False), np.linalg.svd(theirs, compute_uv=False), rtol=1e-12
    )
    torch.manual_seed(0)
    theirs = torch.nn.init.sparse_(
        torch.empty(shape, dtype=torch.float64), sparsity=0.3, std=0.05
    ).numpy()
    ours, _ = draw("sparse_", shape=shape, sparsity=0.3, std=0.05)
    np.testing.assert_array_equal((ours == 0).sum(axis=0), (theirs == 0).sum(axis=0))
    assert ours[ours != 0].std() == pytest.approx(theirs[theirs != 0].std(), rel=0.05)


def test_pytorch_linear_matches_nn_linear():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    linear = torch.nn.Linear(FAN_IN, FAN_OUT, dtype=torch.float64)
    weight, bias = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    ours, our_bias = draw("pytorch_linear")
    assert weight.shape == ours.shape == SHAPE
    assert ours.std() == pytest.approx(weight.std(), rel=0.02)
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(weight).max(), rtol=0.003)
    assert np.abs(our_bias).max() <= 1 / math.sqrt(FAN_IN)
    assert np.abs(bias).max() <= 1 / math.sqrt(FAN_IN)


def test_calculate_gain_equals_torchs():
    torch = pytest.importorskip("torch")
    names = set(initializers.nonlinearities()) - {"identity"}  # identity is initlab's alias
    assert {"linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"} <= names
    for nonlinearity in sorted(names):
        assert calculate_gain(nonlinearity) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity), rel=1e-15
        )
    for unknown in ("gelu", "softmax", "swish"):  # PyTorch has no gain for them, nor has initlab
        with pytest.raises(ValueError, match="nonlinearity"):
            calculate_gain(unknown)
    for slope in (0.0, 0.2, math.sqrt(5), 3):
        assert calculate_gain("leaky_relu", slope) == pytest.approx(
            torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15
        )


# --- names -------------------------------------------------------------------------------------


def test_every_library_name_in_the_table_resolves_to_its_scheme():
    for scheme in INITIALIZERS.values():
        for name in (scheme.name, *scheme.keras, *scheme.pytorch, *scheme.aliases):
            assert Initializer(name).method == scheme.name, name


@pytest.mark.parametrize(
    "keras_class, scheme",
    [
        ("HeNormal", "he_normal"),
        ("HeUniform", "kaiming_uniform"),
        ("GlorotNormal", "glorot_normal"),
        ("GlorotUniform", "glorot_uniform"),
        ("LecunNormal", "lecun_normal"),
        ("LecunUniform", "lecun_uniform"),
        ("VarianceScaling", "variance_scaling"),
        ("RandomNormal", "random_normal"),
        ("RandomUniform", "random_uniform"),
        ("TruncatedNormal", "truncated_normal"),
        ("Orthogonal", "orthogonal"),
        ("OrthogonalInitializer", "orthogonal"),
        ("Identity", "identity"),
        ("IdentityInitializer", "identity"),
        ("Zeros", "zeros"),
        ("Ones", "ones"),
        ("Constant", "constant"),
    ],
)
def test_keras_class_names_resolve(keras_class, scheme):
    assert Initializer(keras_class).method == scheme


def test_keras_and_pytorch_defaults_are_kept_where_the_names_differ():
    assert Initializer("random_uniform").params == {"minval": -0.05, "maxval": 0.05}  # Keras
    assert Initializer("uniform_").params == {"minval": 0.0, "maxval": 1.0}  # PyTorch
    assert Initializer("truncated_normal").params["stddev"] == 0.05  # Keras
    assert Initializer("trunc_normal_").params == {
        "mean": 0.0,
        "stddev": 1.0,
        "low": -2.0,
        "high": 2.0,
    }  # PyTorch
    # Keras reads distribution="normal" as its truncated normal.
    assert Initializer("variance_scaling", distribution="normal").params["distribution"] == (
        "truncated_normal"
    )
    # The post's random_normal keeps randn * scale (Keras's default stddev is 0.05).
    assert Initializer().params == {"mean": 0.0, "stddev": 1.0, "scale": 1.0}


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        Initializer("he_normall")
    message = str(error.value)
    assert "'he_normall'" in message
    for name in ("he_normal", "kaiming_normal_", "glorot_uniform", "orthogonal", "sparse_"):
        assert f"'{name}'" in message
    with pytest.raises(ValueError, match="he_normall"):
        Dense(3, initializer="he_normall")


@pytest.mark.parametrize("name", ["get_config", "from_config", "_zero_bias", "_variance_scaling"])
def test_methods_that_are_not_schemes_are_not_names(name):
    with pytest.raises(ValueError, match="not known"):
        Initializer(name)


def test_lsuv_is_not_an_initializer_and_says_where_it_is():
    with pytest.raises(ValueError, match=r"model.initialize\(X, method='lsuv'\)"):
        Initializer("lsuv")


def test_get_accepts_names_configs_instances_functions_and_none():
    init = Initializer("he_normal", seed=1)
    assert initializers.get(init) is init
    assert initializers.get(None).method == "random_normal"
    assert initializers.get("GlorotUniform").method == "glorot_uniform"
    assert initializers.get({"method": "orthogonal", "gain": 2.0}).params == {"gain": 2.0}
    with pytest.raises(ValueError, match="'method'"):
        initializers.get({"function": "my_function"})
    with pytest.raises(ValueError, match="42"):
        initializers.get(42)


# --- bad parameters ----------------------------------------------------------------------------

BAD_PARAMETERS = [
    ("random_normal", {"scale": -1}, "scale", "-1"),
    ("random_normal", {"stddev": -0.5}, "stddev", "-0.5"),
    ("random_normal", {"mean": float("nan")}, "mean", "nan"),
    ("random_normal", {"scale": "big"}, "scale", "'big'"),
    ("random_normal", {"scale": True}, "scale", "True"),
    ("variance_scaling", {"scale": 0}, "scale", "0"),
    ("variance_scaling", {"scale": -2.0}, "scale", "-2.0"),
    ("variance_scaling", {"mode": "fan_sum"}, "mode", "'fan_sum'"),
    ("variance_scaling", {"distribution": "cauchy"}, "distribution", "'cauchy'"),
    ("kaiming_normal", {"mode": "fan_avg"}, "mode", "'fan_avg'"),
    ("kaiming_normal", {"nonlinearity": "swish"}, "nonlinearity", "'swish'"),
    ("kaiming_uniform_", {"a": "0.1"}, "a", "'0.1'"),
    ("sparse", {"sparsity": 1.0}, "sparsity", "1.0"),
    ("sparse", {"sparsity": -0.1}, "sparsity", "-0.1"),
    ("sparse_", {"sparsity": 1.5}, "sparsity", "1.5"),
    ("sparse_", {"std": -1}, "std", "-1"),
    ("random_uniform", {"minval": 1, "maxval": 0}, "minval", "maxval=0"),
    ("uniform_", {"a": 2, "b": 1}, "minval", "minval=2"),
    ("truncated_normal", {"stddev": 0}, "stddev", "0"),
    ("truncated_normal", {"low": 1, "high": -1}, "low", "low=1"),
    ("trunc_normal_", {"a": 40, "b": 41}, "tail", "40"),
    ("trunc_normal_", {"a": 5, "b": 1e6}, "tail", "1000000"),
    ("xavier_normal_", {"gain": -1}, "gain", "-1"),
    ("glorot_uniform", {"gain": float("inf")}, "gain", "inf"),
    ("orthogonal", {"gain": "2"}, "gain", "'2'"),
    ("constant", {"value": None}, "value", "None"),
    ("he_normal", {"mode": "fan_in"}, "mode", "'mode'"),
    ("he", {"scale": 2}, "scale", "'scale'"),
    ("uniform_", {"a": 0, "minval": 0}, "minval", "'a'"),
    ("he", {"seed": -1}, "seed", "-1"),
    ("he", {"seed": 1.5}, "seed", "1.5"),
]


@pytest.mark.parametrize(
    "name, params, argument, echoed",
    BAD_PARAMETERS,
    ids=[f"{row[0]}-{row[1]}" for row in BAD_PARAMETERS],
)
def test_bad_parameters_raise_at_construction_naming_and_echoing_them(
    name, params, argument, echoed
):
    with pytest.raises(ValueError) as error:
        Initializer(name, **params)
    assert argument in str(error.value) and echoed in str(error.value)


def test_the_posts_neutral_scale_is_accepted_by_every_scheme():
    # Every Initializer of the post's framework carried scale=1.0; old configs say so.
    assert Initializer("he", scale=1.0).get_config() == {"method": "he", "seed": None}
    assert Initializer.from_config({"method": "he_normal", "scale": 1.0, "seed": 3}).seed == 3


# --- seeding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_same_seed_same_bits_and_global_state_untouched(name):
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    first = Initializer(name, seed=7)((20, 30))
    second = Initializer(name, seed=7)((20, 30))
    from_rng = [Initializer(name)((20, 30), rng=np.random.default_rng(5)) for _ in range(2)]
    for a, b in ((first, second), from_rng):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_the_posts_he_and_kaiming_normal_draw_the_same_normals():
    # Same core, same stream; only sqrt(2)**2 != 2 in floating point separates them.
    np.testing.assert_allclose(draw("he")[0], draw("kaiming_normal_")[0], rtol=1e-15)


def _two_layer_model(initializer, seed=0, **dense):
    model = NeuralNetwork(seed=seed)
    model.add(Dense(8, activation="relu", initializer=initializer, input_dim=8, **dense))
    model.add(Dense(8, activation="relu", initializer=initializer, **dense))
    model.build(8)
    return [layer.weights.copy() for layer in model.layers]


def test_two_layers_of_one_model_get_different_draws_reproducibly():
    first, second = _two_layer_model("glorot_uniform")
    assert not np.array_equal(first, second)
    again = _two_layer_model("glorot_uniform")
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])
    assert not np.array_equal(first, _two_layer_model("glorot_uniform", seed=1)[0])


def test_an_initializer_with_its_own_seed_gives_two_layers_different_draws_reproducibly():
    first, second = _two_layer_model(Initializer("he_normal", seed=5))
    assert not np.array_equal(first, second)
    # A fresh Initializer with the same seed repeats the sequence, whatever the model's seed.
    again = _two_layer_model(Initializer("he_normal", seed=5), seed=99)
    np.testing.assert_array_equal(first, again[0])
    np.testing.assert_array_equal(second, again[1])


# --- configs, save and load --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_config_round_trips_through_json(name):
    init = Initializer(name, seed=11)
    config = json.loads(json.dumps(init.get_config()))
    rebuilt = Initializer.from_config(config)
    assert rebuilt.get_config() == init.get_config()
    assert repr(rebuilt) == repr(init)
    np.testing.assert_array_equal(rebuilt((6, 4))[0], init((6, 4))[0])


def test_config_keeps_non_default_parameters():
    init = Initializer("kaiming_normal_", a=0.1, mode="fan_out", nonlinearity="leaky_relu", seed=2)
    assert init.get_config() == {
        "method": "kaiming_normal",
        "a": 0.1,
        "mode": "fan_out",
        "nonlinearity": "leaky_relu",
        "seed": 2,
    }
    assert repr(init) == ("Initializer(method='kaiming_normal', a=0.1, mode='fan_out', seed=2)")


def test_initializers_round_trip_through_save_and_load(tmp_path):
    X, Y = moons(40, noise=0.2, seed=0)
    model = NeuralNetwork(seed=4)
    model.add(
        Dense(
            6,
            activation="relu",
            initializer=Initializer("kaiming_normal", mode="fan_out", seed=3),
            bias_initializer=Initializer("constant", value=0.1),
        )
    )
    model.add(
        Dense(
            5,
            activation="tanh",
            initializer="glorot_normal",
            bias_initializer=lambda shape: np.full(shape, 0.5),
        )
    )
    model.add(Dense(1, activation="sigmoid", initializer=Initializer(scale=10)))
    model.compile(loss="crossentropy")
    model.fit(X, Y, epochs=5)
    model.save(tmp_path / "model.npz")
    loaded = NeuralNetwork.load(tmp_path / "model.npz")
    for original, copy in zip(model.layers, loaded.layers):
        assert copy.initializer.get_config() == original.initializer.get_config()
    assert loaded.layers[0].bias_initializer.get_config() == {
        "method": "constant",
        "value": 0.1,
        "seed": None,
    }
    # A function cannot be rebuilt from its name: a stand-in keeps the name (and never draws).
    assert loaded.layers[1].bias_initializer.get_config() == (
        model.layers[1].bias_initializer.get_config()
    )
    assert loaded.layers[2].initializer.scale == 10
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # The rebuilt initializers draw what the originals draw.
    np.testing.assert_array_equal(
        loaded.layers[1].initializer((5, 6), np.random.default_rng(0))[0],
        model.layers[1].initializer((5, 6), np.random.default_rng(0))[0],
    )


# --- the post's patches, functions, and the bias ---------------------------------------------


def test_patching_he_changes_what_he_draws(monkeypatch):
    def he(self):
        return np.full(self.shape, 7.0 * self.scale), np.ones((self.shape[0], 1))

    before = draw("he")[0]
    monkeypatch.setattr(Initializer, "he", he)
    weights, bias = Initializer("he")((3, 2))
    np.testing.assert_array_equal(weights, np.full((3, 2), 7.0))
    np.testing.assert_array_equal(bias, np.ones((3, 1)))
    monkeypatch.undo()
    np.testing.assert_array_equal(draw("he")[0], before)


def test_patching_random_normal_reads_shape_and_scale(monkeypatch):
    def random_normal(self):
        return np.random.randn(*self.shape) * self.scale, np.zeros((self.shape[0], 1))

    monkeypatch.setattr(Initializer, "random_normal", random_normal)
    np.random.seed(0)
    weights, _ = Initializer(scale=10)((12, 2))
    np.random.seed(0)
    np.testing.assert_array_equal(weights, np.random.randn(12, 2) * 10)
    assert not Initializer(scale=0)((12, 2))[0].any()


def test_a_new_patched_method_is_a_scheme_with_the_posts_scale(monkeypatch):
    monkeypatch.setattr(
        Initializer,
        "halves",
        lambda self: (np.full(self.shape, self.scale / 2), np.zeros((self.shape[0], 1))),
        raising=False,
    )
    assert Initializer("halves", scale=3)((2, 2))[0][0, 0] == 1.5
    with pytest.raises(ValueError, match="-3"):
        Initializer("halves", scale=-3)


def test_function_initializers_get_the_generator_when_they_ask_for_it():
    rng = np.random.default_rng(0)
    expected = np.random.default_rng(0).standard_normal((3, 2))
    positional = initializers.get(lambda shape, g: g.standard_normal(shape))
    np.testing.assert_array_equal(positional((3, 2), rng=np.random.default_rng(0))[0], expected)

    def keyword(shape, rng=None):
        return rng.standard_normal(shape)

    np.testing.assert_array_equal(initializers.get(keyword)((3, 2), rng=rng)[0], expected)
    np.testing.assert_array_equal(initializers.get(np.ones)((3, 2))[0], np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        initializers.get(lambda: 0)


def test_a_type_error_inside_a_function_initializer_is_not_hidden():
    def broken(shape, rng):
        return rng.standard_normal(shape) + "oops"

    with pytest.raises(TypeError):
        initializers.get(broken)((3, 2), rng=np.random.default_rng(0))


def _built_layer(**dense):
    layer = Dense(4, **dense)
    layer.build(3, np.random.default_rng(0))
    return layer


def test_bias_initializer_is_chosen_separately_and_defaults_to_zeros():
    assert not _built_layer(initializer="he_normal").bias.any()
    np.testing.assert_array_equal(_built_layer(bias_initializer="ones").bias, np.ones((4, 1)))
    bias = _built_layer(bias_initializer=Initializer("random_uniform", minval=0.1, maxval=0.2)).bias
    assert bias.min() >= 0.1 and bias.max() < 0.2
    assert _built_layer(initializer="pytorch_linear").bias.any()
    assert not _built_layer(initializer="pytorch_linear", bias_initializer="zeros").bias.any()
    # The weights are the same draw with or without a separate bias initializer.
    np.testing.assert_array_equal(
        _built_layer(initializer="he").weights,
        _built_layer(initializer="he", bias_initializer="ones").weights,
    )


@pytest.mark.parametrize(
    "name, close",
    [
        ("hee", "'he' or 'eye'"),
        ("lsu", "'lsuv'"),
        ("glorot_unifrom", "'glorot_uniform' or 'glorot_normal' or 'random_uniform'"),
    ],
)
def test_an_unknown_name_offers_the_closest_ones(name, close):
    with pytest.raises(ValueError) as refused:
        Initializer(name)
    assert str(refused.value).startswith(f"method {name!r} is not known; expected one of [")
    assert str(refused.value).endswith(f"; did you mean {close}?")


@pytest.mark.parametrize(
    "returned", [np.full((2, 3), "1.5"), np.ones((2, 3)) * 1j, [[None] * 3] * 2]
)
def test_an_initializer_that_returns_no_real_numbers_is_named(returned):
    layer = Dense(2, initializer=lambda shape: returned)
    with pytest.raises(
        ValueError,
        match=r"initializer Initializer\(<function .*\) returned weights "
        r"of dtype .*; expected real numbers",
    ):
        layer.build(3, np.random.default_rng(0))
