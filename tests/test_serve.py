"""The explorer's server without a browser: settings checks, the numbers a session streams, the
websocket protocol, a tab's lifecycle, what HTTP serves, and the speed of play.

The numbers are checked against references: ln 2 for zeros (p = 0.5 everywhere), the same models
trained alone with NeuralNetwork.fit, diagnostics.measure, np.histogram.
"""

import json
import math
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from initlab import Dense, NeuralNetwork
from initlab.serve.command import _audience, _listen, allowed_hosts
from initlab.serve.session import GRID, Session, histogram, theory_prediction
from initlab.serve.settings import MAX_SEEDS, Settings, parse_settings
from initlab.tools import diagnostics

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
sync_client = pytest.importorskip("websockets.sync.client")

from initlab.serve.app import create_app  # noqa: E402 - after the web stack is known present

LN2 = math.log(2)


# --- settings ----------------------------------------------------------------------------------


def test_defaults_are_the_posts_experiment():
    settings = parse_settings({})
    assert settings == Settings()
    assert (settings.dataset, settings.train_size, settings.test_size, settings.noise) == (
        "moons",
        400,
        100,
        0.2,
    )
    assert settings.hidden == (12, 6) and settings.activation == "relu"
    assert settings.scheme_label == "he" and settings.output_scheme == "random_normal"
    assert (settings.learning_rate, settings.optimizer, settings.batch_size) == (0.01, "sgd", None)


def test_values_written_as_text_as_a_url_holds_them():
    settings = parse_settings(
        {
            "seeds": "4",
            "learning_rate": "0.5",
            "hidden": "8, 8,4",
            "scheme": "random_normal",
            "scheme_value": "10",
            "batch_size": "",
            "layer_schemes": "",
        }
    )
    assert settings.seeds == 4 and settings.learning_rate == 0.5 and settings.hidden == (8, 8, 4)
    assert settings.scheme_label == "random_normal:10" and settings.batch_size is None
    assert parse_settings(settings.as_dict()) == settings  # the URL round trip


@pytest.mark.parametrize(
    "values, message",
    [
        ({"seeds": 33}, "seeds must be an integer from 1 to 32, got 33"),
        ({"seeds": 0}, "seeds must be an integer from 1 to 32, got 0"),
        ({"seeds": 2.0}, r"seeds must be an integer from 1 to 32, got 2.0"),
        ({"seeds": True}, "seeds must be an integer from 1 to 32, got True"),
        ({"seeds": "many"}, "seeds must be an integer from 1 to 32, got 'many'"),
        ({"hidden": "12,257"}, r"hidden must be 1 to 8 layer sizes from 1 to 256.*got '12,257'"),
        ({"hidden": "4," * 8 + "4"}, "hidden must be 1 to 8 layer sizes"),
        ({"hidden": ""}, "hidden must be 1 to 8 layer sizes"),
        ({"hidden": {"a": 1}}, "hidden must be 1 to 8 layer sizes"),
        ({"train_size": 5001}, "train_size must be an integer from 10 to 5000, got 5001"),
        ({"test_size": 9}, "test_size must be an integer from 10 to 5000, got 9"),
        ({"learning_rate": 0}, r"learning_rate must be a number > 0.0 and <= 10.0, got 0"),
        ({"learning_rate": "nan"}, r"learning_rate must be a number > 0.0 and <= 10.0, got nan"),
        ({"learning_rate": None}, r"learning_rate must be a number > 0.0 and <= 10.0, got None"),
        ({"noise": -0.1}, r"noise must be a number from 0.0 to 2.0, got -0.1"),
        ({"dataset": "mnist"}, r"dataset must be one of \['moons', 'circles', 'spirals', 'xor', "),
        ({"activation": "softmax"}, r"activation must be one of \["),
        ({"optimizer": "lbfgs"}, r"optimizer must be one of \['adam', 'momentum', 'sgd'\]"),
        ({"scheme": "he_uniformish"}, r"scheme must be one of \[.*'zeros'\], got 'he_uniformish'"),
        ({"scheme": "lsuv", "scheme_value": 2}, "scheme_value: scheme 'lsuv:2' takes no value"),
        ({"scheme": "zeros", "scheme_value": 2}, "scheme_value: scheme 'zeros:2'"),
        ({"scheme_value": 1e9}, r"scheme_value must be a number from 0.0 to 1000.0"),
        ({"layer_schemes": "he"}, r"layer_schemes must list one scheme per hidden layer \(2\)"),
        ({"layer_schemes": "he,lsuv"}, r"layer_schemes\[1\]: lsuv initialises the whole model"),
        ({"layer_schemes": "he,nope"}, r"layer_schemes\[1\]: scheme 'nope' is not known"),
        ({"output_scheme": "he:-1"}, r"output_scheme: scheme 'he:-1': the value after ':'"),
        (
            {"batch_size": 401},
            r"batch_size must be empty for the full batch or an integer from 1 "
            r"to train_size \(400\), got 401",
        ),
        ({"epochs_per_second": 0}, "epochs_per_second must be an integer from 1 to 100000"),
        ({"max_epochs": 10**7}, "max_epochs must be an integer from 1 to 1000000"),
        ({"data_seed": -1}, "data_seed must be an integer from 0 to 4294967295"),
        ({"epochs": 10}, r"settings has unknown fields \['epochs'\]"),
        (
            {"seeds": 32, "train_size": 5000, "hidden": "256,256"},
            r"seeds x train_size x hidden units must be at most 16777216 "
            r"\(memory and time grow with it\), got 32 x 5000 x 512 = 81920000",
        ),
        ("seeds=3", "settings must be an object of field: value, got 'seeds=3'"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(values)


def test_the_largest_sizes_alone_are_accepted():
    assert parse_settings({"hidden": ",".join(["256"] * 8), "train_size": 5000}).seeds == 1
    assert parse_settings({"seeds": 32, "train_size": 5000}).hidden == (12, 6)


def test_a_huge_value_is_echoed_shortened():
    with pytest.raises(ValueError) as error:
        parse_settings({"noise": "x" * 100_000})
    assert len(str(error.value)) < 200


def test_absent_fields_keep_the_base():
    base = parse_settings({"seeds": 5, "scheme": "zeros"})
    assert parse_settings({"learning_rate": 0.1}, base=base).seeds == 5


# --- the numbers of a session ------------------------------------------------------------------


def test_zeros_keep_the_cost_at_ln2_and_the_accuracy_at_half():
    # Zero hidden weights give zero activations, so the output is sigmoid(b) = 0.5 for every
    # point, and no gradient reaches any weight (balanced classes: the bias gradient is 0 too).
    session = Session(parse_settings({"scheme": "zeros", "seeds": 3}))
    session.train(200)
    frame = session.frame()
    assert frame["epoch"] == 200
    assert frame["loss"] == pytest.approx(LN2, abs=1e-12)
    assert frame["test_loss"] == pytest.approx(LN2, abs=1e-12)
    assert frame["train_accuracy"] == 50.0 and frame["test_accuracy"] == 50.0
    assert set(frame["boundary"]) == {128}  # p = 0.5 -> round(127.5) = 128
    assert frame["layers"][0]["activation_std"] == 0.0


def test_the_streamed_numbers_are_those_of_each_seed_trained_alone():
    settings = parse_settings(
        {
            "seeds": 3,
            "hidden": "5,4",
            "activation": "tanh",
            "scheme": "glorot_uniform",
            "learning_rate": 0.1,
            "optimizer": "momentum",
            "batch_size": 64,
        }
    )
    session = Session(settings)
    assert session.train(30) == 30 and session.train(20) == 20
    frame = session.frame()
    losses, accuracies = [], []
    for seed in (1, 2, 3):
        model = NeuralNetwork(seed=seed)
        model.add(Dense(5, "tanh", initializer="glorot_uniform"))
        model.add(Dense(4, "tanh", initializer="glorot_uniform"))
        model.add(Dense(1, "sigmoid"))
        model.compile(loss="crossentropy", optimizer={"name": "momentum", "learning_rate": 0.1})
        model.fit(session.X_train, session.Y_train, epochs=50, batch_size=64)
        scores = model.evaluate(session.X_test, session.Y_test)
        losses.append(model.evaluate(session.X_train, session.Y_train)["loss"])
        accuracies.append(scores["accuracy"])
    np.testing.assert_allclose(frame["per_seed"]["train_loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(frame["per_seed"]["test_accuracy"], accuracies)
    assert frame["point"]["train_loss"] == pytest.approx(
        [min(losses), float(np.median(losses)), max(losses)], rel=1e-9
    )
    # The shown seed is the median one, and its boundary is its prediction on the grid.
    shown = frame["shown_seed"]
    assert losses[shown - 1] == pytest.approx(float(np.median(losses)), rel=1e-9)
    expected = np.rint(session.models[shown - 1].predict(session.grid)[0] * 255)
    np.testing.assert_array_equal(frame["boundary"], expected)
    assert len(frame["boundary"]) == GRID * GRID


def test_layers_are_the_diagnostics_of_the_shown_seed():
    session = Session(parse_settings({"hidden": "16,16,16", "seeds": 1, "train_size": 200}))
    frame = session.frame()
    records = diagnostics.measure(session.models[0], session.X_train, session.Y_train)
    assert [layer["layer"] for layer in frame["layers"]] == [1, 2, 3, 4]
    for layer, record in zip(frame["layers"], records, strict=True):
        assert layer["activation_std"] == pytest.approx(record.activation_std, rel=1e-12)
        assert layer["gradient_std"] == pytest.approx(record.preactivation_grad_std, rel=1e-12)
        # Every activation of the layer on the training set is counted once.
        assert sum(layer["activation_histogram"]["counts"]) == record.units * 200
        assert sum(layer["gradient_histogram"]["counts"]) == record.units * 200


def test_he_brings_the_cost_below_0_3_and_epochs_stop_at_max_epochs():
    session = Session(parse_settings({"max_epochs": 1500}))
    assert session.frame()["loss"] > 0.3
    assert session.train(1000) == 1000
    assert session.frame()["loss"] < 0.3
    assert session.train(1000) == 500 and session.finished and session.train(1) == 0
    frame = session.frame()
    assert frame["epoch"] == frame["point"]["epoch"] == 1500 and frame["finished"]


def test_lsuv_gives_every_layer_unit_preactivation_variance():
    session = Session(parse_settings({"scheme": "lsuv", "hidden": "32,32,32", "seeds": 2}))
    for model in session.models:
        records = diagnostics.measure(model, session.X_train, session.Y_train)
        for record in records:
            assert record.preactivation_std == pytest.approx(1.0, abs=0.1)


def test_layer_by_layer_and_output_schemes_reach_their_layers():
    session = Session(parse_settings({"layer_schemes": "zeros,ones", "output_scheme": "zeros"}))
    first, second, output = session.models[0].layers
    assert not first.params["weights"].any() and (second.params["weights"] == 1).all()
    assert not output.params["weights"].any()


def test_the_data_set_and_seeds_are_reproducible():
    a = Session(parse_settings({"dataset": "spirals", "seeds": 2, "data_seed": 7}))
    b = Session(parse_settings({"dataset": "spirals", "seeds": 2, "data_seed": 7}))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(
        a.models[1].layers[0].params["weights"], b.models[1].layers[0].params["weights"]
    )
    assert not np.array_equal(a.X_train[:, :100], a.X_test[:, :100])  # two streams


def test_histogram_of_equal_and_non_finite_values():
    assert histogram(np.zeros(10), bins=4) == {
        "low": -0.5,
        "high": 0.5,
        "counts": [0, 0, 10, 0],
        "non_finite": 0,
    }
    result = histogram([1.0, np.inf, np.nan, 3.0], bins=2)
    assert result == {"low": 1.0, "high": 3.0, "counts": [1, 1], "non_finite": 2}
    assert histogram([np.nan])["counts"] == []


def test_start_says_whether_the_first_training_compiles(new_machine, monkeypatch):
    session = Session(parse_settings({"hidden": "8", "seeds": "2"}))
    # A new machine: the page is told, and says so until training has run.
    assert session.start()["compiling"] is True
    # Once the kernel is loaded or cached (as a first training leaves it), it starts at once.
    monkeypatch.setattr(new_machine, "is_compiled", lambda layers, loss, dtype: True)
    assert session.start()["compiling"] is False


def test_theory_predicts_chi1_and_the_phase_of_the_drawn_layers():
    settings = parse_settings({"hidden": "64,64", "scheme": "he"})
    session = Session(settings)
    theory = theory_prediction(settings, session.models[0])
    # He draws Var(W) = 2 / fan_in: sigma_w^2 = fan_in Var(W) is 2 up to sampling noise, and
    # relu's chi1 is sigma_w^2 / 2 (Poole et al. 2016), so He sits near the edge of chaos.
    assert theory["weight_variance"] == pytest.approx(2, rel=0.1)
    assert theory["bias_variance"] == 0
    assert theory["chi1"] == pytest.approx(theory["weight_variance"] / 2, rel=1e-9)
    expected = (
        "order"
        if theory["chi1"] < 1 - 1e-3
        else "chaos"
        if theory["chi1"] > 1 + 1e-3
        else "critical"
    )
    assert theory["phase"] == expected
    assert session.start()["theory"] == theory


# --- the server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    """The app served by uvicorn in a thread on a free port of 127.0.0.1: (app, base URL)."""
    app = create_app()
    listener = _listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    instance = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", ws_max_size=64 * 1024)
    )
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield app, f"127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


class Page:
    """A websocket client that speaks the page's protocol."""

    def __init__(self, address, **options):
        self.connection = sync_client.connect(f"ws://{address}/ws", **options)
        self.socket = self.connection.__enter__()
        self.options = self.receive()

    def send(self, message):
        self.socket.send(json.dumps(message) if not isinstance(message, str) else message)

    def receive(self, timeout=30):
        return json.loads(self.socket.recv(timeout=timeout))

    def until(self, kind, timeout=30, where=lambda message: True):
        """Messages up to and including the first of type `kind` for which `where` holds."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(timeout=deadline - time.monotonic())
            seen.append(message)
            if message["type"] == kind and where(message):
                return seen
        raise AssertionError(f"no {kind} message in {timeout} s; got {seen[-3:]}")

    def start(self, **settings):
        """Send settings; return the "start" message and the first frame after it (frames of a
        play that the new settings stop may come first)."""
        self.send({"type": "settings", "settings": settings})
        start = self.until("start")[-1]
        frame = self.receive()
        assert frame["type"] == "frame", frame
        return start, frame

    def close(self):
        self.connection.__exit__(None, None, None)


@pytest.fixture
def page(server):
    client = Page(server[1])
    yield client
    client.close()


def test_first_message_lists_the_choices(page):
    options = page.options
    assert options["type"] == "options" and options["defaults"]["hidden"] == "12,6"
    assert "he" in options["schemes"] and "lsuv" in options["schemes"]
    assert set(options["fields"]) == set(Settings().as_dict())


def test_start_step_play_pause_reset(page):
    start, frame = page.start(scheme="he", seeds=2)
    assert start["settings"]["seeds"] == 2 and start["seeds"] == [1, 2]
    assert len(start["train"]["x"]) == 400 and len(start["test"]["label"]) == 100
    assert frame["epoch"] == 0 and frame["playing"] is False
    page.send({"type": "step"})
    assert page.until("frame")[-1]["epoch"] == 1
    page.send({"type": "play"})
    playing = page.until("frame", where=lambda m: m["epoch"] >= 200)[-1]
    assert playing["playing"] is True
    page.send({"type": "pause"})
    paused = page.until("frame", where=lambda m: not m["playing"])[-1]
    with pytest.raises(TimeoutError):  # nothing more comes while paused
        page.socket.recv(timeout=0.5)
    assert paused["epoch"] >= 200
    page.send({"type": "reset"})
    start, frame = page.until("frame")
    assert start["type"] == "start" and frame["epoch"] == 0


def test_a_changed_scheme_starts_over_and_zeros_stay_at_ln2(page):
    page.start(scheme="he")
    page.send({"type": "play"})
    page.until("frame", where=lambda m: m["epoch"] >= 100)
    start, frame = page.start(scheme="zeros")  # stops the play, starts at epoch 0
    assert start["settings"]["scheme"] == "zeros" and frame["epoch"] == 0
    page.send({"type": "play"})
    later = page.until("frame", where=lambda m: m["epoch"] >= 500)[-1]
    assert later["loss"] == pytest.approx(LN2, abs=1e-12) and later["train_accuracy"] == 50
    page.send({"type": "pause"})
    page.until("frame", where=lambda m: not m["playing"])


@pytest.mark.parametrize(
    "message, expected",
    [
        ("not json", "a message must be JSON"),
        ("[1, 2]", "a message must be an object whose type is one of"),
        ('{"type": "shutdown"}', "a message must be an object whose type is one of"),
        ({"type": "settings", "settings": {"seeds": 64}}, "seeds must be an integer from 1 to 32"),
        ({"type": "settings", "settings": {"hidden": "300"}}, "hidden must be 1 to 8 layer sizes"),
        ({"type": "settings", "settings": None}, "settings must be an object"),
        ({"type": "play"}, "no experiment yet"),
    ],
)
def test_bad_messages_get_a_message_and_the_server_goes_on(page, message, expected):
    page.send(message)
    error = page.receive()
    assert error["type"] == "error" and expected in error["message"]
    _, frame = page.start(seeds=1)  # still serving this tab
    assert frame["epoch"] == 0


def test_a_failure_inside_the_server_is_a_message_and_the_tab_goes_on(page, monkeypatch):
    from initlab.serve import app as app_module

    def broken(settings):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(app_module, "Session", broken)
    page.send({"type": "settings", "settings": {"seeds": 2}})
    error = page.receive()
    assert error == {
        "type": "error",
        "message": "the server failed on settings: ZeroDivisionError: a bug",
    }
    monkeypatch.undo()
    _, frame = page.start(seeds=2)
    assert frame["epoch"] == 0


def test_refused_settings_change_nothing(page):
    page.start(scheme="zeros", seeds=3)
    page.send({"type": "step"})
    page.until("frame")
    page.send({"type": "settings", "settings": {"seeds": MAX_SEEDS + 1}})
    assert page.receive()["type"] == "error"
    page.send({"type": "step"})
    frame = page.until("frame")[-1]
    assert frame["epoch"] == 2 and len(frame["per_seed"]["train_loss"]) == 3


def test_a_message_over_the_size_limit_closes_only_that_connection(server, page):
    big = Page(server[1])
    big.send({"type": "settings", "settings": {"hidden": "1," * 40_000}})
    with pytest.raises(Exception):  # noqa: B017 - the server closes it (1009, too big)
        big.receive(timeout=5)
    _, frame = page.start()
    assert frame["epoch"] == 0


def test_a_tab_that_goes_away_stops_its_training(server):
    app, address = server
    client = Page(address)
    client.start(seeds=4)
    client.send({"type": "play"})
    client.until("frame", where=lambda m: m["playing"])
    (tab,) = [tab for tab in app.state.tabs if tab.playing]
    task = tab.task
    client.close()
    deadline = time.monotonic() + 10
    while tab in app.state.tabs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tab not in app.state.tabs
    assert task.done() and task.cancelled()
    assert tab.session is None


def test_tabs_beyond_the_limit_are_told_so(server, monkeypatch):
    from initlab.serve import app as app_module

    def wait_until_no_tabs():  # a closed tab leaves the server's list a moment later
        deadline = time.monotonic() + 10
        while server[0].state.tabs and time.monotonic() < deadline:
            time.sleep(0.02)

    wait_until_no_tabs()
    monkeypatch.setattr(app_module, "MAX_TABS", 2)
    first, second = Page(server[1]), Page(server[1])
    try:
        third = sync_client.connect(f"ws://{server[1]}/ws").__enter__()
        error = json.loads(third.recv(timeout=10))
        assert error == {
            "type": "error",
            "message": "2 tabs are open on this server, its "
            "limit: close one, then reload this page",
        }
        third.close()
    finally:
        first.close()
        second.close()
    wait_until_no_tabs()
    Page(server[1]).close()  # room again


def test_another_sites_page_may_not_connect(server):
    with pytest.raises(Exception) as error:  # noqa: B017 - refused at the handshake
        Page(server[1], origin="http://evil.example")
    assert "403" in str(error.value) or "1008" in str(error.value)


def _handshake_status(address, host, origin):
    """The status line the server answers a websocket handshake with, sent by hand so that the
    Host header can be anyone's."""
    name, port = address.rsplit(":", 1)
    with socket.create_connection((name, int(port)), timeout=10) as connection:
        connection.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        # An accepted socket's first message (its options) may follow in the same read.
        return connection.recv(4096).split(b"\r\n", 1)[0].decode()


def test_a_page_of_another_name_pointed_at_this_computer_may_not_connect(server):
    # DNS rebinding: evil.example resolves to 127.0.0.1, so its page's Origin matches the Host
    # its browser sends; only the name gives it away.
    port = server[1].rsplit(":", 1)[1]
    for name in ("127.0.0.1", "localhost", "[::1]"):
        own = f"{name}:{port}"
        assert _handshake_status(server[1], own, f"http://{own}").endswith(
            "101 Switching Protocols"
        )
    evil = f"evil.example:{port}"
    assert _handshake_status(server[1], evil, f"http://{evil}").endswith("400 Bad Request")
    request = urllib.request.Request(f"http://{server[1]}/", headers={"Host": evil})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400


@pytest.mark.parametrize(
    "host, names",
    [
        ("127.0.0.1", ("127.0.0.1", "localhost", "[::1]")),
        ("127.0.0.2", ("127.0.0.1", "localhost", "[::1]", "127.0.0.2")),
        ("::1", ("127.0.0.1", "localhost", "[::1]")),
        ("localhost", ("127.0.0.1", "localhost", "[::1]")),
        # Told to listen where other computers reach it: by any of the names they use.
        ("0.0.0.0", ("*",)),
        ("", ("*",)),
        ("192.168.1.5", ("*",)),
    ],
)
def test_a_server_answers_to_its_own_names(host, names):
    from initlab.serve.app import LOOPBACK_HOSTS

    assert allowed_hosts(host, LOOPBACK_HOSTS) == names


def test_http_serves_the_page_and_its_assets_only(server):
    address = server[1]
    with urllib.request.urlopen(f"http://{address}/") as response:
        body = response.read().decode()
        assert 'data-testid="boundary"' in body
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    with urllib.request.urlopen(f"http://{address}/static/vendor/uPlot.iife.min.js") as response:
        assert response.status == 200
    for path in (
        "/static/../settings.py",
        "/static/%2e%2e/settings.py",
        "/settings.py",
        "/static/vendor/../../app.py",
        "/etc/passwd",
    ):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://{address}{path}")
        assert error.value.code == 404, path
    request = urllib.request.Request(f"http://{address}/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)
    assert error.value.code == 405


def test_play_keeps_to_the_asked_rate_and_reports_its_speed(page):
    # 40 epochs a second is far below what the machine can do even when loaded, so play must
    # pace itself: 2 epochs a frame at 20 frames a second. (How fast play can go is measured by
    # benchmarks/bench_explorer.py; timings are not asserted in tests on a shared machine.)
    page.start(seeds=1, epochs_per_second=40)
    page.send({"type": "play"})
    first = page.until("frame", where=lambda m: m["playing"])[-1]
    began = time.monotonic()
    frames = page.until("frame", where=lambda m: time.monotonic() - began > 2.5)
    seconds = time.monotonic() - began
    page.send({"type": "pause"})
    page.until("frame", where=lambda m: not m["playing"])
    epochs = frames[-1]["epoch"] - first["epoch"]
    assert 0.6 * 40 <= epochs / seconds <= 1.2 * 40, (epochs, seconds)
    epochs_seen = [frame["epoch"] for frame in frames]
    assert epochs_seen == sorted(epochs_seen) and len(set(epochs_seen)) == len(frames)
    # The frame's own speed is over the frames of its last second: the same pace.
    speed = frames[-1]["speed"]
    assert speed["epochs_per_second"] == pytest.approx(40, rel=0.4)
    assert speed["fps"] == pytest.approx(len(frames) / seconds, rel=0.4)


# --- the command -------------------------------------------------------------------------------


def test_it_says_who_can_reach_it():
    assert "127.0.0.1 only" in _audience("127.0.0.1")
    assert "localhost only" in _audience("localhost")
    assert "any computer" in _audience("0.0.0.0")
    assert "Listening on every address: any computer" in _audience("")


def test_a_port_this_user_may_not_use_says_so(monkeypatch):
    import errno

    def refused(self, address):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refused)
    with pytest.raises(ValueError) as refused_error:
        _listen("127.0.0.1", 80)
    assert str(refused_error.value) == (
        "cannot listen on --host '127.0.0.1' --port 80: Permission denied; choose a port of "
        "1024 or above (0 picks a free one)"
    )


def test_an_address_not_of_this_computer_is_named_as_the_problem():
    with pytest.raises(ValueError) as refused:
        _listen("999.1.1.1", 0)
    assert str(refused.value).startswith("cannot listen on --host '999.1.1.1' --port 0: ")
    assert str(refused.value).endswith(
        "expected an address of this computer, such as 127.0.0.1 (the default)"
    )


def test_a_busy_port_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on --host '127.0.0.1' --port {port}"):
            _listen("127.0.0.1", port)
        with pytest.raises(ValueError, match=r"choose another port \(0 picks a free one\)$"):
            _listen("127.0.0.1", port)


def test_bad_port_is_refused_before_anything_starts(capsys):
    from initlab import cli

    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "--port must be an integer from 0 to 65535, got 70000" in capsys.readouterr().err


def test_importing_initlab_does_not_import_the_web_stack():
    import subprocess

    code = (
        "import sys, initlab, initlab.cli; initlab.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'uvicorn', 'websockets')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
