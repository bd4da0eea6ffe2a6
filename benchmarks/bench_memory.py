"""Peak memory of the post's run and of the main job, each a whole fresh process.

The post's run: the post's three models (zeros, large random values, He; 2-12-6-1, relu, relu,
sigmoid), each trained 15000 epochs on make_moons 400 with print_log, then evaluated on the
training and test sets, as the post does, in a process that imports no torch. The figure is the
worker process's peak resident set (resource.getrusage ru_maxrss), beside that of a process that
only imports NumPy and initlab. It runs on the NumPy path (jit_compile=False: what initlab does
without Numba, its core install) and on the default path (compiled where Numba is installed,
which loads Numba and LLVM).

The main job: `initlab reproduce`'s default run (the README's first command: three schemes x 10
seeds x 15000 epochs, figures and tables written to a temporary directory), its peak resident
set as the kernel accounts it for the finished child (os.wait4). With Numba installed,
`reproduce --no-jit` is measured too, for comparison (no target).

Targets: the post's run on the NumPy path under 100 MB (issue 5); the main job under 300 MB
(issue 16).

    python benchmarks/bench_memory.py            # full run, about a minute
    python benchmarks/bench_memory.py --quick    # smoke run: 300 epochs, a short reproduce
"""

import argparse
import contextlib
import io
import resource
import sys
import tempfile

from _common import (
    environment,
    in_worker,
    initlab_command,
    jit_available,
    run_process,
    timed,
    verdict,
    worker_report,
)

TARGET_MB = 100
MAIN_JOB_TARGET_MB = 300


def post_run(epochs, data, jit_compile):
    from initlab import Dense, Initializer, NeuralNetwork

    if data == "sklearn":  # as the post writes it
        import numpy as np
        import sklearn.datasets

        X_train, Y_train = sklearn.datasets.make_moons(n_samples=400, noise=0.2)
        X_test, Y_test = sklearn.datasets.make_moons(n_samples=100, noise=0.2)
        X_train, Y_train = X_train.T, np.reshape(Y_train, (1, -1))
        X_test, Y_test = X_test.T, np.reshape(Y_test, (1, -1))
    else:
        from initlab.blocks import datasets

        X_train, Y_train = datasets.moons(400, noise=0.2, seed=0)
        X_test, Y_test = datasets.moons(100, noise=0.2, seed=1)

    def get_model(initializer):
        model = NeuralNetwork()
        model.add(Dense(units=12, activation="relu", initializer=initializer))
        model.add(Dense(units=6, activation="relu", initializer=initializer))
        model.add(Dense(units=1, activation="sigmoid"))
        model.compile(loss="crossentropy")
        return model

    results = []
    for initializer in (Initializer(scale=0), Initializer(scale=10), "he"):
        model = get_model(initializer)
        with contextlib.redirect_stdout(io.StringIO()):  # the post prints 16 lines a model
            model.fit(
                X_train,
                Y_train,
                learning_rate=0.01,
                epochs=epochs,
                print_log=True,
                jit_compile=jit_compile,
            )
        results.append((model.evaluate(X_train, Y_train), model.evaluate(X_test, Y_test)))
    return results


def peak_mb():
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 epochs")
    parser.add_argument("--epochs", type=int, default=15000)
    parser.add_argument("--worker", nargs=2, metavar=("WHAT", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        what, epochs = args.worker[0], int(args.worker[1])
        import numpy  # noqa: F401

        import initlab  # noqa: F401

        seconds = (0.0, 0.0)
        if what != "imports":
            data, path = what.split("-")
            seconds, _ = timed(post_run, epochs, data, path == "default" and "auto")
        assert "torch" not in sys.modules
        worker_report(seconds, peak_mb())
        return 0
    epochs = 300 if args.quick else args.epochs
    print(
        f"bench_memory: the post's three models, {epochs} epochs each, peak resident memory "
        f"of a fresh process"
    )
    print(environment())
    _, baseline = in_worker(__file__, "imports", 0)
    seconds, peak = in_worker(__file__, "initlab-numpy", epochs)
    print(f"  {'python + numpy + initlab imported':44s} {baseline:7.1f} MB")
    print(
        f"  {'the post run, initlab datasets, NumPy path':44s} {peak:7.1f} MB  ({seconds[0]:.1f} s)"
    )
    if jit_available():
        seconds_jit, peak_jit = in_worker(__file__, "initlab-default", epochs)
        print(
            f"  {'the post run, initlab datasets, default path':44s} {peak_jit:7.1f} MB  "
            f"({seconds_jit[0]:.1f} s; compiled, with Numba and LLVM loaded)"
        )
    try:
        import importlib.util

        have_sklearn = importlib.util.find_spec("sklearn") is not None
    except (ImportError, ValueError):
        have_sklearn = False
    if have_sklearn:
        seconds_sk, peak_sk = in_worker(__file__, "sklearn-numpy", epochs)
        print(
            f"  {'the post run, sklearn make_moons, NumPy path':44s} {peak_sk:7.1f} MB  "
            f"({seconds_sk[0]:.1f} s)"
        )
    ok = peak < TARGET_MB
    print(f"  NumPy path: peak {peak:.1f} MB; target < {TARGET_MB} MB: {verdict(ok)}")

    # The quick run's reproduce is a short one, and skips the --no-jit comparison (the NumPy
    # path's reproduce takes half a minute, and has no target).
    size = ("--seeds", 2, "--epochs", 200) if args.quick else ()
    label = " ".join(map(str, ("initlab reproduce", *size)))
    print(f"\nthe main job, `{label}`, a fresh process:")
    variants = [()] + ([("--no-jit",)] if jit_available() and not args.quick else [])
    for extra in variants:
        with tempfile.TemporaryDirectory() as out:
            argv = initlab_command("reproduce", "--out", out, "--force", "--no-progress")
            report = run_process(argv + list(map(str, size + extra)))
        name = " ".join([label, *extra])
        if report["returncode"] != 0:
            print(f"  {name}: failed (exit {report['returncode']}):\n{report['output']}")
            ok &= bool(extra)  # only the default run is the target's
            continue
        print(f"  {name:44s} {report['peak_mb']:7.1f} MB  ({report['seconds']:.1f} s)")
        if not extra:
            met = report["peak_mb"] < MAIN_JOB_TARGET_MB
            ok &= met
            # A smoke run's study is smaller than the target's: measured, not judged.
            judged = "not judged on a smoke run" if args.quick else verdict(met)
            print(f"  peak {report['peak_mb']:.1f} MB; target < {MAIN_JOB_TARGET_MB} MB: {judged}")
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
