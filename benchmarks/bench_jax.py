"""initlab against JAX on CPU, side by side in one run: the post's model, 64 seeds, an MLP.

JAX is the contender a speed-minded user would pick, written as its users write it: the whole
epoch loop in `jax.lax.scan` under `jax.jit`, `jax.value_and_grad` for the gradients, a
`jax.tree.map` gradient-descent update, `jax.vmap` of the one model's training over the seeds'
weights, batch-first arrays, float64 through `jax.config.update("jax_enable_x64", True)`. It runs
in a fresh process (_common.in_worker), as PyTorch does in the other scripts, so that XLA's
threads never share a process with NumPy's. There it is compiled ahead
(`jax.jit(...).lower(...).compile()`, timed apart: the "first fit s" column), run once as a
warm-up, then timed, copying the per-epoch losses back to NumPy included.

Workloads, one definition each, taken from the scripts that own them:
    one model   bench_moons: the post's 2-12-6-1 (relu, relu, sigmoid), binary cross-entropy from
                the logits, full-batch gradient descent at 0.01 on make_moons 400, 15000 epochs,
                float64 and float32
    64 seeds    bench_ensemble: the same model for seeds 0..63 at once, 1500 epochs
    MLP         bench_mlp: 784-256-128-10 (relu, relu, softmax + categorical cross-entropy),
                minibatches of 128 in a new order every epoch, 10,000 digits-sized samples,
                float32, 5 epochs; each library with 1 and 2 threads (--threads)

Contenders:
    initlab default      fit(...), jit_compile left at its default, as a user calls it
    initlab NumPy        fit(..., jit_compile=False): the reference every loss is checked against
    initlab jit          fit(..., jit_compile=True) (needs Numba)
    Ensemble ...         Ensemble(models).fit, the same three ways, for 64 seeds
    JAX                  as above; for 64 seeds, jax.vmap of the one model's scan
    products alone       the MLP's products that initlab's kernel hands to BLAS, and nothing
                         else (run_products): the floor of any path over the same BLAS
initlab's contenders run in this process after a first fit that compiles whatever their path
compiles ("first fit s"). Every contender starts from initlab's weights for the same seed and
keeps every epoch's loss; the MLP's JAX run follows initlab's minibatch order (the model's own
shuffling Generator). So every loss is checked against initlab's NumPy path: float64 to 1e-12
relative, float32 to 1e-4.

Targets (issue 16), each printed with its ratio and MET / NOT MET:
    one model   initlab default at least 2.5x faster than JAX, in float64 and in float32
    64 seeds    initlab's compiled Ensemble at least 8x faster than JAX's vmap per model-epoch,
                in float64 and float32, and at most 8x one model's time (initlab default)
    MLP         initlab default at its fastest at least as fast as JAX at its fastest

    python benchmarks/bench_jax.py             # full run, a few minutes
    python benchmarks/bench_jax.py --quick     # smoke run: float64 and the MLP, few epochs
"""

import argparse
import functools
import os

import numpy as np
from _common import (
    environment,
    in_worker,
    jax_available,
    jit_available,
    time_rounds,
    timed,
    verdict,
    worker_report,
)
from bench_ensemble import K, fit_ensemble, fit_one
from bench_mlp import BATCH, SIZES, initlab_model, make_data
from bench_mlp import LEARNING_RATE as MLP_LEARNING_RATE
from bench_mlp import run_initlab as run_initlab_mlp
from bench_moons import LEARNING_RATE, initial_weights

import initlab
from initlab.blocks import datasets

ONE_MODEL_TARGET = 2.5  # initlab default / JAX, at least
SEEDS_TARGET = 8  # compiled Ensemble / JAX vmap, per model-epoch, at least
SEEDS_OVER_ONE_TARGET = 8  # Ensemble of 64 / one model, at most
MLP_TARGET = 1  # initlab / JAX, at least
RTOL = {"float64": 1e-12, "float32": 1e-4}
# XLA's CPU backend on one thread: no Eigen thread pool, one intra-op thread.
JAX_ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}


# --- JAX, as its users write it ------------------------------------------------------------------
def dense_stack(jax, params, x):
    """Logits of a stack of Dense layers, relu between them; params [(W (in, out), b (out,))]."""
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def post_model_train(jax, epochs):
    """train(params, x, y) -> (params, per-epoch losses): the post's full-batch training."""
    import jax.numpy as jnp

    def loss_fn(params, x, y):
        z = dense_stack(jax, params, x)
        return jnp.mean(jax.nn.softplus(z) - y * z)  # sigmoid + cross-entropy, from the logits

    def train(params, x, y):
        def epoch(params, _):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            return jax.tree.map(lambda p, g: p - LEARNING_RATE * g, params, grads), loss

        return jax.lax.scan(epoch, params, length=epochs)

    return train


def mlp_train(jax, m, batch):
    """train(params, x, labels, orders) -> (params, per-epoch losses): minibatches in the order
    orders[epoch], the epoch's loss the mean over its samples (the last batch may be smaller)."""
    import jax.numpy as jnp

    full, rest = divmod(m, batch)

    def loss_fn(params, x, labels):
        log_p = jax.nn.log_softmax(dense_stack(jax, params, x))
        return -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))

    def step(params, x, labels):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        return jax.tree.map(lambda p, g: p - MLP_LEARNING_RATE * g, params, grads), loss

    def train(params, x, labels, orders):
        def epoch(params, order):
            def one_batch(params, index):
                return step(params, x[index], labels[index])

            batches = order[: full * batch].reshape(full, batch)
            params, losses = jax.lax.scan(one_batch, params, batches)
            total = losses.sum() * batch
            if rest:
                index = order[full * batch :]
                params, loss = step(params, x[index], labels[index])
                total = total + loss * rest
            return params, total / m

        return jax.lax.scan(epoch, params, orders)

    return train


def batch_first(weights, dtype):
    """initlab's [(W (out, in), b (out, 1))] as JAX users lay them out: [(W.T, b[:, 0])]."""
    return [(np.asarray(w.T, dtype), np.asarray(b[:, 0], dtype)) for w, b in weights]


def run_jax(workload, dtype, epochs, n_samples):
    """((wall, CPU) seconds of the timed run, {"compile": seconds, "history": losses})."""
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if workload == "mlp":
        X, labels = make_data(n_samples)
        model = initlab_model()
        params = batch_first([(layer.weights, layer.bias) for layer in model.layers], dtype)
        rng = model.shuffle_generator()  # the order initlab's fit draws, epoch after epoch
        orders = np.stack([rng.permutation(n_samples) for _ in range(epochs)]).astype(np.int32)
        train = mlp_train(jax, n_samples, BATCH)
        arguments = (params, X.T.astype(dtype), labels.astype(np.int32), orders)
    else:
        X, Y = datasets.moons(400, noise=0.2, seed=0)
        if workload == "one":
            params = batch_first(initial_weights(X), dtype)
            train = post_model_train(jax, epochs)
        else:  # the seeds' weights stacked on a leading axis, trained under vmap
            per_seed = [batch_first(initial_weights(X, dtype, seed=s), dtype) for s in range(K)]
            params = jax.tree.map(lambda *leaves: np.stack(leaves), *per_seed)
            train = jax.vmap(post_model_train(jax, epochs), in_axes=(0, None, None))
        arguments = (params, X.T.astype(dtype), Y.T.astype(dtype))
    arguments = jax.device_put(arguments)
    compile_seconds, compiled = timed(lambda: jax.jit(train).lower(*arguments).compile())

    def fit():
        _, losses = compiled(*arguments)
        return np.asarray(losses)  # waits for the result, as a user reading the losses does

    fit()  # warm-up: the first call of a compiled function allocates its buffers
    seconds, losses = timed(fit)
    history = losses.T if workload == "seeds" else losses  # (epochs, K), as Ensemble's
    return seconds, {"compile": compile_seconds[0], "history": history.tolist()}


def run_products(n_samples, epochs):
    """The MLP's products that the compiled kernel hands to BLAS, and nothing else (no gather,
    activation, loss, update or Python between batches): for each batch of every epoch, the
    smaller last one included, each layer that the kernel's rule sends to BLAS (jit.BLAS_WEIGHTS
    weights, a batch of jit.BLAS_SAMPLES) runs its product, its weights' gradient and, above the
    first layer, the product sent back. The same np.dot calls as the kernel's, in a Numba
    function, so through the same BLAS (SciPy's): the floor of any path over that BLAS. A little
    below it, even: the weights never change and the batch stays in cache."""
    import numba

    from initlab.fast import jit

    @numba.njit(nogil=True)
    def layer_products(W, S, Z, G, U, back):
        np.dot(W, S, Z)
        np.dot(Z, S.T, G)
        if back:
            np.dot(W.T, Z, U)

    def products(batch):
        rng = np.random.default_rng(0)
        layers = []
        for index, (fan_in, units) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            if (fan_in + 1) * units >= jit.BLAS_WEIGHTS and batch >= jit.BLAS_SAMPLES:
                W = rng.standard_normal((units, fan_in + 1)).astype(np.float32)
                S = rng.standard_normal((fan_in + 1, batch)).astype(np.float32)
                Z, U = np.empty((units, batch), np.float32), np.empty_like(S)
                layers.append((W, S, Z, np.empty_like(W), U, index > 0))
        for layer in layers:  # compiles, before the clock starts
            layer_products(*layer)
        return layers[::-1]  # as the backward pass runs them

    full, last = products(BATCH), products(n_samples % BATCH)

    def run():
        for _ in range(epochs):
            for _ in range(n_samples // BATCH):
                for layer in full:
                    layer_products(*layer)
            for layer in last:
                layer_products(*layer)

    return timed(run)[0]


def worker(library, workload, dtype, epochs, n_samples):
    """One run in this fresh process; prints its JSON report."""
    if library == "jax":
        seconds, result = run_jax(workload, dtype, epochs, n_samples)
    elif library == "products":
        seconds, result = run_products(n_samples, epochs), {"compile": 0.0, "history": []}
    else:  # initlab's MLP, with the BLAS threads its environment sets
        X, labels = make_data(n_samples)
        first, _ = timed(run_initlab_mlp, X[:, :1000], labels[:1000], 1)  # warm-up
        seconds, history = timed(run_initlab_mlp, X, labels, epochs)
        result = {"compile": first[0], "history": history.tolist()}
    worker_report(seconds, result)


# --- the side-by-side runs -----------------------------------------------------------------------
class Target:
    """One of the issue's targets: a ratio of wall times that must be >= (or <=) `required`."""

    def __init__(self, name, ratio, required, at_most=False):
        self.name, self.ratio, self.required, self.at_most = name, ratio, required, at_most

    @property
    def met(self):
        return self.ratio <= self.required if self.at_most else self.ratio >= self.required

    def line(self):
        required = f"{'<=' if self.at_most else '>='} {self.required:g}x"
        return f"  {self.name:58s} {self.ratio:7.2f}x  target {required:8s} {verdict(self.met)}"


def first_fit(function, *args, **options):
    """Wall seconds of a first, short fit: it compiles whatever its path compiles."""
    (wall, _), _ = timed(function, *args, **options)
    return wall


def measure(contenders, rounds, first_seconds):
    """Best of `rounds` for each contender, in turn: {name: ((wall, cpu), history, first fit s)}.

    A contender returns ((wall, cpu), history), or ((wall, cpu), (history, first fit s)) when it
    ran in a worker; the others' first fits are in first_seconds.
    """
    results = {}
    for name, (seconds, result) in time_rounds(contenders, rounds).items():
        history, first = result if isinstance(result, tuple) else (result, first_seconds[name])
        results[name] = (seconds, np.asarray(history, dtype=float), first)
    return results


def table(title, results, reference, units, dtype):
    """Print the contenders' times per unit and their losses against `reference`; returns
    whether every loss agrees with it (rtol for the dtype)."""
    rtol, same = RTOL[dtype], True
    print(f"\n{title}:")
    print(
        f"  {'contender':28s} {'µs/unit':>9s} {'CPU µs':>9s} {'first fit s':>11s} "
        f"{'final loss':>18s} {'max rel. diff':>13s}"
    )
    for name, ((wall, cpu), history, first) in results.items():
        difference = float(np.max(np.abs(history - reference) / np.abs(reference)))
        same &= difference <= rtol
        print(
            f"  {name:28s} {wall / units * 1e6:9.2f} {cpu / units * 1e6:9.2f} {first:11.2f} "
            f"{np.ravel(history[-1])[0]:18.14f} {difference:13.1e}"
            + ("" if difference <= rtol else f"  above {rtol:g}!")
        )
    return same


def jax_contender(workload, dtype, epochs, n_samples, env=None, library="jax"):
    """A run in a fresh process: () -> ((wall, CPU) seconds, (history, first fit s))."""

    def run():
        seconds, result = in_worker(__file__, library, workload, dtype, epochs, n_samples, env=env)
        return seconds, (result["history"], result["compile"])

    return run


def paths(have_jit):
    """initlab's ways of training: {name: fit's options}; default passes none."""
    ways = {"default": {}, "NumPy": {"jit_compile": False}}
    if have_jit:
        ways["jit"] = {"jit_compile": True}
    return ways


def one_model(epochs, rounds, have_jit, have_jax, targets, dtypes):
    from bench_moons import run_initlab

    X, Y = datasets.moons(400, noise=0.2, seed=0)
    weights = initial_weights(X)
    same = True
    for dtype in dtypes:
        first, contenders = {}, {}
        for way, options in paths(have_jit).items():
            first[f"initlab {way}"] = first_fit(run_initlab, X, Y, weights, 2, dtype, **options)
            contenders[f"initlab {way}"] = functools.partial(
                timed, run_initlab, X, Y, weights, epochs, dtype, **options
            )
        if have_jax:
            contenders["JAX"] = jax_contender("one", dtype, epochs, 400)
        results = measure(contenders, rounds, first)
        reference = run_initlab(X, Y, weights, epochs, dtype, jit_compile=False)
        title = f"one model, {dtype}, {epochs} epochs (unit: an epoch)"
        same &= table(title, results, reference, epochs, dtype)
        if have_jax:
            ratio = results["JAX"][0][0] / results["initlab default"][0][0]
            name = f"one model, {dtype}: initlab default faster than JAX"
            targets.append(Target(name, ratio, ONE_MODEL_TARGET))
    return same


def many_seeds(epochs, rounds, have_jit, have_jax, targets, dtypes):
    X, Y = datasets.moons(400, noise=0.2, seed=0)
    same = True
    one, stack, vmap = "one model", f"Ensemble of {K}", f"JAX vmap over {K}"
    for dtype in dtypes:
        first, contenders = {}, {}
        for way, options in paths(have_jit).items():
            first[f"{one}, {way}"] = first_fit(fit_one, X, Y, 2, dtype, **options)
            contenders[f"{one}, {way}"] = functools.partial(
                timed, fit_one, X, Y, epochs, dtype, **options
            )
        for way, options in paths(have_jit).items():
            first[f"{stack}, {way}"] = first_fit(fit_ensemble, X, Y, 2, dtype, **options)
            contenders[f"{stack}, {way}"] = functools.partial(
                timed, fit_ensemble, X, Y, epochs, dtype, **options
            )
        if have_jax:
            contenders[vmap] = jax_contender("seeds", dtype, epochs, 400)
        results = measure(contenders, rounds, first)
        reference = fit_ensemble(X, Y, epochs, dtype, jit_compile=False)
        singles = {name: result for name, result in results.items() if name.startswith(one)}
        stacked = {name: result for name, result in results.items() if name not in singles}
        title = f"{K} seeds, {dtype}, {epochs} epochs"
        same &= table(
            f"{title}: one model (seed 0; unit: an epoch)", singles, reference[:, 0], epochs, dtype
        )
        same &= table(
            f"{title}: {K} at once (unit: a model-epoch)", stacked, reference, epochs * K, dtype
        )
        if not have_jit:
            continue
        ensemble = results[f"{stack}, jit"][0][0]
        if have_jax:
            name = f"{K} seeds, {dtype}: compiled Ensemble faster than JAX vmap"
            targets.append(Target(name, results[vmap][0][0] / ensemble, SEEDS_TARGET))
        name = f"{K} seeds, {dtype}: compiled Ensemble's time / one model's"
        ratio = ensemble / results[f"{one}, default"][0][0]
        targets.append(Target(name, ratio, SEEDS_OVER_ONE_TARGET, at_most=True))
    return same


def _has_blas():
    """Whether the compiled kernel can call BLAS here (Numba's np.dot needs SciPy)."""
    from initlab.fast import jit

    return jit.HAVE_BLAS


def _blas_threads(count):
    return {"OPENBLAS_NUM_THREADS": str(count)}  # read when NumPy loads: a worker's setting


def mlp(n_samples, epochs, threads, rounds, have_jax, targets):
    contenders, floor = {}, []
    for count in threads:
        label = f"{count} thread{'s' * (count > 1)}"
        contenders[f"initlab default, {label}"] = jax_contender(
            "mlp", "float32", epochs, n_samples, env=_blas_threads(count), library="initlab"
        )
        if have_jax:
            # XLA's CPU backend takes one thread, or its pool over every core: nothing between.
            contenders[f"JAX, {label if count == 1 else 'all cores'}"] = jax_contender(
                "mlp", "float32", epochs, n_samples, env=JAX_ONE_THREAD if count == 1 else None
            )
        if jit_available() and _has_blas():
            floor.append(f"products alone, {label}")
            contenders[floor[-1]] = jax_contender(
                "mlp", "float32", epochs, n_samples, env=_blas_threads(count), library="products"
            )
    results = measure(contenders, rounds, {})
    floor = {name: results.pop(name) for name in floor}
    X, labels = make_data(n_samples)
    reference = run_initlab_mlp(X, labels, epochs, jit_compile=False)
    title = (
        f"MLP 784-256-128-10, float32, {n_samples} samples, batches of {BATCH}, {epochs} "
        f"epoch(s) (unit: an epoch; CPU time is the worker's, all its threads)"
    )
    same = table(title, results, reference, epochs, "float32")
    if floor:
        print("  the kernel's BLAS calls and nothing else (run_products):")
    for name, ((wall, cpu), _, _) in floor.items():
        print(f"  {name:28s} {wall / epochs * 1e6:9.2f} {cpu / epochs * 1e6:9.2f}")
    if have_jax:
        ours = min(wall for name, ((wall, _), *_) in results.items() if name.startswith("initlab"))
        theirs = min(wall for name, ((wall, _), *_) in results.items() if name.startswith("JAX"))
        name = "MLP, float32: initlab default as fast as JAX (fastest each)"
        targets.append(Target(name, theirs / ours, MLP_TARGET))
    return same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few epochs, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15000, help="one model's epochs")
    parser.add_argument("--seeds-epochs", type=int, default=1500, help="64 seeds' epochs")
    parser.add_argument("--mlp-epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="for the MLP")
    parser.add_argument("--no-jax", action="store_true", help="time initlab alone")
    parser.add_argument(
        "--worker",
        nargs=5,
        metavar=("LIBRARY", "WORKLOAD", "DTYPE", "EPOCHS", "SAMPLES"),
        help=argparse.SUPPRESS,
    )  # internal: one run, in its own process
    args = parser.parse_args(argv)
    if args.worker:
        library, workload, dtype, epochs, n_samples = args.worker
        worker(library, workload, dtype, int(epochs), int(n_samples))
        return 0
    if args.quick:
        rounds, epochs, seeds_epochs, mlp_epochs, mlp_samples = 1, 100, 40, 1, 1000
        args.threads = args.threads[:1]
    else:
        rounds, epochs, seeds_epochs = args.rounds, args.epochs, args.seeds_epochs
        mlp_epochs, mlp_samples = args.mlp_epochs, 10_000
    have_jax = not args.no_jax and jax_available()
    have_jit = jit_available()
    print(f"bench_jax: initlab against JAX (CPU), best of {rounds} round(s)")
    if args.quick:
        print("quick run: a smoke test; its MET / NOT MET verdicts mean nothing")
    versions = ""
    if have_jax:
        from importlib.metadata import version

        versions = f", jax {version('jax')}"
    print(
        environment() + (versions if have_jax else ", no jax") + ("" if have_jit else ", no numba")
    )
    print(f"initlab from {os.path.dirname(initlab.__file__)}")
    targets = []
    # A quick run keeps to float64 (one compile of each kernel); the MLP runs JAX in float32.
    dtypes = ("float64",) if args.quick else ("float64", "float32")
    same = one_model(epochs, rounds, have_jit, have_jax, targets, dtypes)
    same &= many_seeds(seeds_epochs, rounds, have_jit, have_jax, targets, dtypes)
    same &= mlp(mlp_samples, mlp_epochs, args.threads, rounds, have_jax, targets)
    print(
        f"\nlosses equal initlab's NumPy path (rtol {RTOL['float64']:g} in float64, "
        f"{RTOL['float32']:g} in float32): {same}"
    )
    print("targets (issue 16), as ratios of wall times:")
    if not targets:
        print("  none measured: they are against JAX and the compiled path (no jax or no numba)")
    for target in targets:
        print(target.line())
    ok = same and all(target.met for target in targets)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
