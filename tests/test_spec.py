"""The sweep spec: every bad value is one ValueError naming its key; the plan's seeds and keys."""

import numpy as np
import pytest

from initlab.sweeps.spec import SETTINGS, load_spec, parse_scheme, parse_spec, plan_runs

ISSUE_SPEC = """
[data]
name = "moons"
train = 400
test = 100
noise = 0.2
[model]
hidden = [12, 6]
activation = "relu"
[train]
epochs = 15000
learning_rate = 0.01
optimizer = "sgd"
[sweep]
scheme = ["zeros", "random_normal:10", "he"]
seeds = 10
"model.hidden" = [[12, 6], [64, 64, 64]]
"""


def test_the_issues_example_gives_its_grid():
    spec = parse_spec(ISSUE_SPEC.replace("hidden = [12, 6]\n", ""))
    assert list(spec.axes) == ["model.scheme", "model.hidden"]
    assert spec.axes == {
        "model.scheme": ["zeros", "random_normal:10", "he"],
        "model.hidden": [[12, 6], [64, 64, 64]],
    }
    assert spec.seeds == 10 and spec.seed == 0
    runs = plan_runs(spec)
    assert len(runs) == 3 * 2 * 10
    assert len({run.key for run in runs}) == len(runs)
    # The first axis varies slowest, then the next, then the run index.
    assert [
        (r.settings["model.scheme"], r.settings["model.hidden"], r.index) for r in runs[9:12]
    ] == [("zeros", [12, 6], 9), ("zeros", [64, 64, 64], 0), ("zeros", [64, 64, 64], 1)]


def test_defaults_fill_every_setting():
    spec = parse_spec("")
    assert spec.axes == {}
    assert spec.fixed == {key: setting.default for key, setting in SETTINGS.items()}
    assert len(plan_runs(spec)) == 1


def test_run_seeds_follow_reproduce_and_do_not_depend_on_the_grid():
    small = plan_runs(parse_spec("[sweep]\nseed = 7\nseeds = 2\nscheme = ['he']"))
    large = plan_runs(
        parse_spec(
            "[sweep]\nseed = 7\nseeds = 5\nscheme = ['zeros', 'he']\n"
            "'train.learning_rate' = [0.01, 0.1]"
        )
    )
    # SeedSequence(seed).spawn(N)[k]: children 0, 1, 2 -> train data, test data, weights.
    child = np.random.SeedSequence(7).spawn(5)[1].spawn(3)
    assert small[1].train_data_seed == int(child[0].generate_state(1, np.uint32)[0])
    assert small[1].test_data_seed == int(child[1].generate_state(1, np.uint32)[0])
    assert small[1].weights_seed == int(child[2].generate_state(1, np.uint64)[0])
    by_key = {run.key: run for run in large}
    for run in small:
        assert by_key[run.key] == run


def test_numbers_are_normalised_so_keys_are_stable():
    one = plan_runs(parse_spec("[train]\nlearning_rate = 1"))
    other = plan_runs(parse_spec("[train]\nlearning_rate = 1.0"))
    assert one[0].key == other[0].key
    assert plan_runs(parse_spec("[train]\nepochs = 10"))[0].key != one[0].key


@pytest.mark.parametrize(
    "text, message",
    [
        ("[dat]\nname = 'moons'", "unknown section [dat]"),
        ("[data]\nsize = 3", "unknown key 'data.size'"),
        (
            "[data]\nname = 'mnist'",
            "data.name must be one of ['moons', 'circles', 'spirals', "
            "'xor', 'gaussians', 'digits'], got 'mnist'",
        ),
        ("[data]\ntrain = 1", "data.train must be an integer >= 2, got 1"),
        ("[data]\ntrain = 'many'", "data.train must be an integer >= 2, got 'many' (a str)"),
        ("[data]\nnoise = -0.1", "data.noise must be a finite number >= 0, got -0.1"),
        ("[data]\nname = 'digits'\ntrain = 2000", "data.train must be at most 1348 for digits"),
        ("[model]\nhidden = []", "model.hidden must be a non-empty list"),
        ("[model]\nhidden = [12, 0]", "model.hidden[1] must be an integer >= 1, got 0"),
        ("[model]\nactivation = 'swishy'", "model.activation must be one of"),
        ("[model]\nactivation = 'rleu'", "got 'rleu' (did you mean 'relu'?)"),
        ("[train]\noptimizer = 'adma'", "got 'adma' (did you mean 'adam'?)"),
        ("[model]\nactivation = 'softmax'", "got 'softmax'"),
        ("[model]\nscheme = 'hee'", "model.scheme 'hee' is not a known scheme"),
        ("[model]\nscheme = 'zeros:2'", "zeros has neither a scale nor a gain"),
        ("[model]\nscheme = 'he:x'", "the value after ':' must be a number, got 'x'"),
        ("[train]\nepochs = 0", "train.epochs must be an integer >= 1, got 0"),
        ("[train]\nepochs = 10.0", "train.epochs must be an integer >= 1, got 10.0 (a float"),
        ("[train]\nepochs = true", "train.epochs must be an integer >= 1, got True (a bool)"),
        ("[train]\nlearning_rate = 0", "train.learning_rate must be a finite number > 0, got 0"),
        ("[train]\noptimizer = 'lbfgs'", "train.optimizer must be one of"),
        ("[train]\nbatch_size = 500", "train.batch_size must be at most data.train (400), got 500"),
        ("[sweep]\nseeds = 0", "sweep.seeds must be an integer >= 1, got 0"),
        ("[sweep]\nseed = -1", "sweep.seed must be an integer >= 0, got -1"),
        ("[sweep]\nscheme = []", "axis sweep.scheme must be a non-empty list of values, got []"),
        ("[sweep]\nscheme = ['he', 'bogus']", "sweep.scheme[1] 'bogus' is not a known scheme"),
        ("[sweep]\nscheme = ['he', 'he']", "axis sweep.scheme lists 'he' more than once"),
        ("[sweep]\n'train.epochs' = []", "axis sweep.'train.epochs' must be a non-empty list"),
        (
            "[sweep]\n'train.epochs' = 5",
            "axis sweep.'train.epochs' must be a non-empty list of values, got 5",
        ),
        (
            "[sweep]\n'train.epochs' = [5, -5]",
            "sweep.'train.epochs'[1] must be an integer >= 1, got -5",
        ),
        ("[sweep]\n'train.momentum' = [0.9]", "unknown key sweep.'train.momentum'"),
        ("[sweep]\nrepeats = 3", "unknown key sweep.'repeats'"),
        (
            "[train]\nepochs = 5\n[sweep]\n'train.epochs' = [5, 6]",
            "'train.epochs' is both fixed (5) and an axis in [sweep]",
        ),
        ("[sweep]\n'model.hidden' = [[3], 4]", "sweep.'model.hidden'[1] must be a non-empty list"),
        ("data = 3", "data must be a [data] section, got 3"),
        ("[data\n", "not valid TOML"),
        # Sizes past any study's, as the commands' options bound them: typing mistakes.
        (
            "[train]\nepochs = 100000000000",
            "train.epochs must be an integer in [1, 1000000000], got 100000000000",
        ),
        ("[sweep]\nseeds = 100000000", "sweep.seeds must be an integer in [1, 1000000], got"),
        ("[data]\ntrain = 100000000000", "data.train must be an integer in [2, 10000000], got"),
        ("[data]\ntest = 100000000", "data.test must be an integer in [1, 10000000], got"),
        ("[model]\nhidden = [4, 100000]", "model.hidden[1] must be an integer in [1, 65536]"),
        ("[data]\nnoise = 1e308", "data.noise must be a number in [0, 100], got 1e+308"),
        (
            "[sweep]\n'data.noise' = [0.1, 101]",
            "sweep.'data.noise'[1] must be a number in [0, 100]",
        ),
    ],
)
def test_every_bad_value_is_one_error_naming_the_key(text, message):
    with pytest.raises(ValueError) as caught:
        parse_spec(text)
    assert message in str(caught.value)


def test_load_spec_names_the_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text("[train]\nepochs = -1\n")
    with pytest.raises(ValueError, match=r"spec '.*grid.toml': train.epochs must be"):
        load_spec(path)
    with pytest.raises(ValueError, match="cannot be read"):
        load_spec(tmp_path / "missing.toml")
    path.write_text("[train]\nepochs = 3\n")
    assert load_spec(path).fixed["train.epochs"] == 3


def test_parse_scheme_reads_the_study_grammar():
    assert parse_scheme("he") == ("he", None, None)
    assert parse_scheme("random_normal:10") == ("random_normal", "scale", 10.0)
    assert parse_scheme("orthogonal:2") == ("orthogonal", "gain", 2.0)
    assert parse_scheme("LSUV") == ("lsuv", None, None)
    with pytest.raises(ValueError, match="takes no value"):
        parse_scheme("lsuv:1")


def test_a_spec_survives_json_with_its_axes_in_order():
    spec = parse_spec("[sweep]\n'train.epochs' = [3, 2]\nscheme = ['zeros', 'he']")
    again = type(spec).from_json(spec.to_json())
    assert again == spec and list(again.axes) == ["train.epochs", "model.scheme"]
    assert [run.key for run in plan_runs(again)] == [run.key for run in plan_runs(spec)]


def test_the_readmes_spec_is_valid():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    (text,) = re.findall(r"```toml\n(.+?)\n```", readme, flags=re.DOTALL)
    spec = parse_spec(text)
    assert list(spec.axes) == ["model.scheme", "train.learning_rate"]
    assert len(plan_runs(spec)) == 3 * 2 * 10
