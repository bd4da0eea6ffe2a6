"""Frames and epochs per second of the explorer (`initlab serve`), as a page receives them.

Starts `initlab serve` in a fresh process on a free port of 127.0.0.1 (and times how long until
it answers), then plays each case over a websocket, as a browser tab does, for a few seconds:
frames per second are the frames received, epochs per second the epochs they advanced, divided by
the wall time. Every frame carries the full picture (boundary grid, per-seed numbers, every
layer's histograms), so this is what the page gets; drawing it is the browser's work on top.

Targets (issue 13): the page is ready within 2 s of `serve` starting; with the post's network
and one seed at least 10 frames per second while training at least 1000 epochs per second; 32
seeds train without the page stalling (frames keep coming: at least 5 per second here).

    python benchmarks/bench_explorer.py            # 5 s per case
    python benchmarks/bench_explorer.py --quick    # smoke run: 1 s per case
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from _common import environment, verdict

CASES = (  # (label, settings)
    ("post's network, 1 seed, asked 1000 epochs/s", {"seeds": 1, "epochs_per_second": 1000}),
    ("post's network, 1 seed, as fast as it goes", {"seeds": 1, "epochs_per_second": 100000}),
    ("post's network, 32 seeds, asked 1000 epochs/s", {"seeds": 32, "epochs_per_second": 1000}),
    ("post's network, 32 seeds, as fast as it goes", {"seeds": 32, "epochs_per_second": 100000}),
)
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def start_server():
    """(process, address, seconds until it answered HTTP)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "initlab.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return process, f"127.0.0.1:{port}", time.monotonic() - began
        except OSError:
            if process.poll() is not None or time.monotonic() - began > 30:
                raise RuntimeError("initlab serve did not start") from None
            time.sleep(0.02)


def play(address, settings, seconds):
    """(frames per second, epochs per second) of `seconds` of play with these settings."""
    from websockets.sync.client import connect

    with connect(f"ws://{address}/ws", max_size=None) as socket_:
        receive = lambda: json.loads(socket_.recv(timeout=60))  # noqa: E731
        receive()  # the options
        socket_.send(
            json.dumps({"type": "settings", "settings": {**settings, "max_epochs": 1_000_000}})
        )
        while receive()["type"] != "frame":
            pass
        socket_.send(json.dumps({"type": "play"}))
        frame = receive()
        while not frame.get("playing"):
            frame = receive()
        first_epoch, began, frames = frame["epoch"], time.monotonic(), 0
        while time.monotonic() - began < seconds:
            frame = receive()
            frames += 1
        elapsed = time.monotonic() - began
        socket_.send(json.dumps({"type": "pause"}))
    return frames / elapsed, (frame["epoch"] - first_epoch) / elapsed


def training_alone(seeds, seconds):
    """Epochs per second of Ensemble.fit alone on the same data and models, in slices of 100
    epochs, in this process: what play could reach with no frames at all."""
    from initlab.serve.session import Session
    from initlab.serve.settings import parse_settings

    session = Session(parse_settings({"seeds": seeds, "max_epochs": 1_000_000}))
    session.train(10)
    began, epochs = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        epochs += session.train(100)
    return epochs / (time.perf_counter() - began)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s per case")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    print(f"bench_explorer: frames and epochs per second a page receives, {seconds:g} s per case")
    print(environment())
    print(f"  load average before: {os.getloadavg()[0]:.1f}")
    process, address, ready = start_server()
    try:
        results = {}
        print(f"  {'initlab serve answered after':48s} {ready:6.2f} s")
        for label, settings in CASES:
            fps, eps = play(address, settings, seconds)
            results[label] = (fps, eps)
            print(f"  {label:48s} {fps:6.1f} frames/s {eps:9.0f} epochs/s")
    finally:
        process.terminate()
        process.wait(10)
    for seeds in (1, 32):
        label = f"training alone (Ensemble.fit), {seeds} seed{'s' if seeds > 1 else ''}"
        print(f"  {label:48s} {'':17s} {training_alone(seeds, seconds):9.0f} epochs/s")
    one_fps, one_eps = results[CASES[0][0]]
    many_fps, _ = results[CASES[3][0]]
    print(
        f"  target: ready < 2 s: {verdict(ready < 2)}; one seed >= 10 frames/s and >= 1000 "
        f"epochs/s: {verdict(one_fps >= 10 and one_eps >= 1000)}; 32 seeds >= 5 frames/s: "
        f"{verdict(many_fps >= 5)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
