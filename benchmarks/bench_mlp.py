"""A BLAS-bound case: MLP 784-256-128-10 on 10,000 samples, minibatches of 128, float32.

Workload: relu, relu, softmax + categorical cross-entropy (from the logits in both libraries),
He initialisation, plain gradient descent at 0.01, minibatches of 128 in a fresh random order
every epoch, 10,000 random samples (Gaussian inputs, 10 random classes), the mean loss of every
epoch kept (PyTorch: `loss.item()` every batch, as initlab computes every batch's cost).
Both libraries start from the same weights; each shuffles with its own generator.

Contenders: initlab NeuralNetwork(dtype="float32").fit(batch_size=128), with NumPy's OpenBLAS
on 1 and on 2 threads (OPENBLAS_NUM_THREADS), and PyTorch CPU eager (nn.Sequential +
CrossEntropyLoss + optim.SGD) with torch.set_num_threads(1) and (2): each run in a fresh process
after a warm-up (_common.in_worker), so that no library's threads disturb another's.

Target (issue 5): initlab, at its fastest, at least as fast as PyTorch CPU at its fastest.

    python benchmarks/bench_mlp.py            # full run
    python benchmarks/bench_mlp.py --quick    # smoke run
"""

import argparse
import functools
import os

import numpy as np
from _common import (
    environment,
    in_worker,
    time_rounds,
    timed,
    torch_available,
    verdict,
    worker_report,
)

import initlab
from initlab import Dense, NeuralNetwork

SIZES = (784, 256, 128, 10)
BATCH = 128
LEARNING_RATE = 0.01


def make_data(n_samples, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((SIZES[0], n_samples)).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], size=n_samples)
    return X, labels


def initlab_model():
    model = NeuralNetwork(seed=0, dtype="float32")
    model.add(Dense(units=SIZES[1], activation="relu", initializer="he"))
    model.add(Dense(units=SIZES[2], activation="relu", initializer="he"))
    model.add(Dense(units=SIZES[3], activation="softmax", initializer="he"))
    model.compile(loss="categorical_crossentropy")
    model.build(SIZES[0])
    return model


def run_initlab(X, labels, epochs, **options):
    """The per-epoch losses; options go to fit as they are (jit_compile=...): without them fit
    takes its default path, whatever that is."""
    model = initlab_model()
    return model.fit(
        X,
        labels.reshape(1, -1),
        epochs=epochs,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        **options,
    )["loss"]


def run_torch(X, labels, epochs, threads):
    import torch

    torch.set_num_threads(threads)
    layers = []
    for i, layer in enumerate(initlab_model().layers):
        linear = torch.nn.Linear(layer.fan_in, layer.units)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.weights)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.bias[:, 0])))
        layers.append(linear)
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    x = torch.from_numpy(np.ascontiguousarray(X.T))  # PyTorch is batch-first
    y = torch.from_numpy(labels)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(0)
    m = x.shape[0]
    history = np.empty(epochs)
    for epoch in range(epochs):
        order = torch.randperm(m, generator=generator)
        total = 0.0
        for start in range(0, m, BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(net(x[index]), y[index])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        history[epoch] = total / m
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1,000 samples, 1 epoch, one round, 1 thread",
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="thread counts to time each library with (default: 1 2)",
    )
    parser.add_argument(
        "--worker",
        nargs=4,
        metavar=("LIBRARY", "THREADS", "SAMPLES", "EPOCHS"),
        help=argparse.SUPPRESS,
    )  # internal: one run, in its own process
    args = parser.parse_args(argv)
    if args.worker:
        library, (threads, n_samples, epochs) = args.worker[0], map(int, args.worker[1:])
        X, labels = make_data(n_samples)
        run = run_initlab if library == "initlab" else functools.partial(run_torch, threads=threads)
        run(X[:, :1000], labels[:1000], 1)  # warm-up: the first steps of a process are slow
        seconds, history = timed(run, X, labels, epochs)
        worker_report(seconds, history[-1])
        return 0
    n_samples, epochs, rounds = (1000, 1, 1) if args.quick else (10_000, args.epochs, args.rounds)
    if args.quick:
        args.threads = args.threads[:1]
    have_torch = not args.no_torch and torch_available()
    print(
        f"bench_mlp: {'-'.join(map(str, SIZES))}, {n_samples} samples, batches of {BATCH}, "
        f"float32, {epochs} epochs, best of {rounds} round(s)"
    )
    if args.quick:
        print("quick run: a smoke test; its MET / NOT MET verdicts mean nothing")
    print(environment() + ("" if have_torch else ", no torch"))
    print(f"initlab from {os.path.dirname(initlab.__file__)}")
    contenders = {}
    for threads in args.threads:
        plural = "s" * (threads > 1)
        # NumPy's BLAS reads its thread count when it loads: set it for the worker process.
        contenders[f"initlab, {threads} thread{plural}"] = lambda t=threads: in_worker(
            __file__, "initlab", t, n_samples, epochs, env={"OPENBLAS_NUM_THREADS": str(t)}
        )
        if have_torch:
            contenders[f"PyTorch eager, {threads} thread{plural}"] = lambda t=threads: in_worker(
                __file__, "torch", t, n_samples, epochs
            )
    results = time_rounds(contenders, rounds)
    # Wall time: the threads of a run work together, and their CPU seconds add up.
    results = {name: (seconds[0], last) for name, (seconds, last) in results.items()}
    ours = min(seconds for name, (seconds, _) in results.items() if name.startswith("initlab"))
    print(f"  {'contender':26s} {'ms/epoch':>9s} {'x initlab':>10s} {'last epoch loss':>16s}")
    for name, (seconds, last) in results.items():
        print(f"  {name:26s} {seconds / epochs * 1e3:9.1f} {seconds / ours:10.2f} {last:16.6f}")
    ok = True
    if have_torch:
        for threads in args.threads:
            plural = "s" * (threads > 1)
            mine = results[f"initlab, {threads} thread{plural}"][0]
            theirs = results[f"PyTorch eager, {threads} thread{plural}"][0]
            print(
                f"  with {threads} thread{plural} each: initlab is {theirs / mine:.2f}x the "
                f"speed of PyTorch"
            )
        torch_best = min(
            seconds for name, (seconds, _) in results.items() if name.startswith("PyTorch")
        )
        ratio = torch_best / ours
        ok = ratio >= 1
        print(
            f"  fastest against fastest: initlab is {ratio:.2f}x the speed of PyTorch eager; "
            f"target >= 1x: {verdict(ok)}"
        )
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
