"""The training loop: every layer's forward, the loss, every layer's backward, then one update.

NeuralNetwork.fit (and Ensemble.fit) build a TrainingLoop over the model's buffers and run its
epochs with `run_epochs`, which records the costs and calls the callbacks:

    loop = TrainingLoop(model.layers, model.loss, model.optimizer, model.parameters,
                        model.gradients, X, Y, batch_size=None, rngs=[shuffle_rng])
    cost = loop.run_epoch()        # the mean cost over the epoch's batches

Why it is fast. The post's model does about 0.3 MFLOP an epoch, so its time goes to Python and
to NumPy's cost per call (1 to 2 µs for a small product, 0.4 to 1 µs for anything else), not to
arithmetic. So the loop makes few, cheap calls:
- Every buffer is allocated once, when the loop is built. Each layer, its activation, the loss
  and the optimizer bind their NumPy calls to those buffers (`training_steps`, `training_step`):
  an epoch then runs a flat list of bound calls (functools.partial objects, positional `out`)
  that allocate nothing.
- Every layer's input carries a row of ones under the data, so a Dense layer gets z = W x + b
  and [dW | db] from one product each: no bias addition, no sum over the samples.
- All parameters live in one flat vector (`pack_parameters`), so the update is two calls.
The loop never looks at the type of a layer: any layer that follows the contract in layers.py
trains here (by default through its plain `forward`/`backward`, which remain the reference).

Leading axes: X may be (n_features, m), shared by every stacked model, or (K, n_features, m),
one data set per model; with one shuffling Generator per model, each model draws its own order.
"""

import time

import numpy as np

from initlab.blocks.optimizers import SGD

# A fit whose epochs run many at a time (a compiled full batch, nothing looking between epochs)
# runs them in calls of about this long, so that Ctrl-C ends it within moments.
CALL_SECONDS = 0.05


def run_epochs(
    make_run_epoch,
    epochs,
    log_every,
    owner,
    costs,
    callbacks=(),
    print_log=False,
    cost_shape=(),
    history=None,
):
    """The epoch loop of fit; returns the history: every epoch's cost.

    make_run_epoch() -> run_epoch() -> cost; it is called once the callbacks' on_train_begin
    have run. A run_epoch with an attribute at_once(count) -> costs, which runs that many
    epochs in one call, runs them so when no callback looks between epochs. The history has
    shape (epochs,) + cost_shape, fewer rows if a callback set owner.stop_training; `history`,
    if given, is that array allocated by the caller (so that a fit allocates everything before
    it changes anything). The list `costs` receives the costs at epoch 0, every log_every and
    the last, printed as the post prints them when print_log. Callbacks get `owner`:
    on_train_begin(owner), on_epoch_end(owner, epoch, cost), on_train_end(owner).
    """
    if history is None:
        history = np.empty((epochs,) + tuple(cost_shape))
    owner.stop_training = False
    begin, epoch_end, end = _callback_hooks(callbacks)
    for hook in begin:
        hook(owner)
    run_epoch = make_run_epoch()
    # Without a callback between epochs, a loop that can run many epochs in one call does
    # (unless on_train_begin already asked to stop: then one epoch runs, as below).
    at_once = None if epoch_end or owner.stop_training else getattr(run_epoch, "at_once", None)
    if at_once is not None:
        _run_at_once(at_once, epochs, log_every, costs, print_log, history)
    else:
        for epoch in range(epochs):
            cost = run_epoch()
            history[epoch] = cost
            if epoch % log_every == 0 or epoch == epochs - 1:
                costs.append(cost)
                if print_log:
                    print(f"Epochs: {epoch} - Cost: {cost}")
            for hook in epoch_end:
                hook(owner, epoch, cost)
            if owner.stop_training:
                history = history[: epoch + 1]
                break
    for hook in end:
        hook(owner)
    return history


def _run_at_once(at_once, epochs, log_every, costs, print_log, history):
    """Epochs in calls of at_once(count) -> costs of count epochs, each call twice as long as the
    last until one takes CALL_SECONDS; the history, costs and printed log as run_epochs keeps
    them epoch by epoch."""
    epoch, count = 0, 1
    while epoch < epochs:
        count = min(count, epochs - epoch)
        started = time.perf_counter()
        chunk = at_once(count)
        elapsed = time.perf_counter() - started
        history[epoch : epoch + count] = chunk
        for offset in range(count):
            if (epoch + offset) % log_every == 0 or epoch + offset == epochs - 1:
                cost = chunk[offset]
                costs.append(cost.copy() if np.ndim(cost) else cost)
                if print_log:
                    print(f"Epochs: {epoch + offset} - Cost: {cost}")
        epoch += count
        if elapsed < CALL_SECONDS:
            count *= 2


def _callback_hooks(callbacks):
    if callbacks is None:
        callbacks = ()
    if not isinstance(callbacks, (list, tuple)):
        callbacks = (callbacks,)
    hooks = ([], [], [])
    for callback in callbacks:
        for hook_list, name in zip(
            hooks, ("on_train_begin", "on_epoch_end", "on_train_end"), strict=True
        ):
            hook = getattr(callback, name, None)
            if hook is not None:
                hook_list.append(hook)
    return hooks


def is_packed(layers, params, grads):
    """Whether every layer's parameters and gradients are views of the flat vectors."""
    return all(value.base is params for layer in layers for value in layer.params.values()) and all(
        value.base is grads for layer in layers for value in layer.grads.values()
    )


class TrainingLoop:
    """Runs epochs of training over buffers allocated once.

    Parameters
    ----------
    layers, loss, optimizer : as compiled in the model, with the layers packed (pack_parameters).
    params, grads : the flat parameter and gradient vectors the layers' arrays are views into.
    X : (..., n_features, m) and Y : (..., n_outputs, m), already checked.
    batch_size : int or None (full batch).
    shuffle : draw a new order of the samples every epoch (minibatches only).
    rngs : Generators for the order: one, or one per stacked model (K), each drawing its own.
    jit_compile : run each step's forward and backward passes as one compiled kernel (jit.py,
        needs Numba) instead of the bound NumPy calls; raises jit.Unsupported, saying why,
        for a model it does not cover.
    """

    def __init__(
        self,
        layers,
        loss,
        optimizer,
        params,
        grads,
        X,
        Y,
        batch_size=None,
        shuffle=True,
        rngs=(),
        jit_compile=False,
    ):
        self.m = X.shape[-1]
        self.X, self.Y = X, Y
        self.rngs = list(rngs)
        self.shuffle = shuffle
        bind = _StepBinder(layers, loss, optimizer, params, grads, jit_compile)
        if batch_size is None or batch_size >= self.m:
            self.batch_size = None
            self._step = bind(self.X.shape[:-2], self.X.shape[-2], self.Y.shape, self.m)
            self._step.x[..., :-1, :] = self.X
            np.copyto(self._step.y, self.Y)
            self._step.load_targets()
            self.run_epoch = self._step.run  # full batch: the data never move
            if self._step.descend is not None:
                self.run_epoch = _with_at_once(self._step.run, self._step.descend)
            return
        self.batch_size = batch_size
        self._in_order = np.arange(self.m)  # the order when shuffle is off, made once per fit
        per_model_orders = shuffle and len(self.rngs) > 1
        lead = np.broadcast_shapes(self.X.shape[:-2], (len(self.rngs),) if per_model_orders else ())
        # At most two batch shapes: full batches, and the remainder at the end of the epoch.
        sizes = {batch_size, self.m % batch_size} - {0}
        self._steps = {
            size: bind(
                lead,
                self.X.shape[-2],
                lead + self.Y.shape[-2:-1] + (size,),
                size,
                sample_major=True,
            )
            for size in sizes
        }
        # Samples are gathered from sample-major copies of the data (each sample's numbers side
        # by side, one copy per fit): a batch is then b contiguous rows, not b scattered columns
        # (for 784 x 10,000 inputs, 30 µs instead of 160 to 360 µs a batch).
        samples_x = np.ascontiguousarray(np.swapaxes(X, -1, -2))
        samples_y = np.ascontiguousarray(np.swapaxes(Y, -1, -2))
        self._gather_x = {
            size: _Gather(samples_x, np.swapaxes(step.x[..., :-1, :], -1, -2))
            for size, step in self._steps.items()
        }
        self._gather_y = {
            size: _Gather(samples_y, np.swapaxes(step.y, -1, -2))
            for size, step in self._steps.items()
        }
        self.run_epoch = self._minibatch_epoch

    def _order(self):
        if not self.shuffle:
            return self._in_order
        if len(self.rngs) == 1:
            return self.rngs[0].permutation(self.m)
        return np.stack([rng.permutation(self.m) for rng in self.rngs])

    def _minibatch_epoch(self):
        order = self._order()
        total = 0.0
        for start in range(0, self.m, self.batch_size):
            index = order[..., start : start + self.batch_size]
            size = index.shape[-1]
            step = self._steps[size]
            self._gather_x[size](index)
            self._gather_y[size](index)
            step.load_targets()
            # With plain gradient descent the kernel also updates, in the same call.
            cost = step.run() if step.descend is None else step.descend(1)[0]
            total = total + cost * size
        return total / self.m


class _StepBinder:
    """Builds one training step, bound to buffers, for a given batch shape."""

    def __init__(self, layers, loss, optimizer, params, grads, jit_compile=False):
        self.layers, self.loss, self.optimizer = layers, loss, optimizer
        self.params, self.grads = params, grads
        self.jit_compile = jit_compile

    def __call__(self, x_lead, n_features, y_shape, m, sample_major=False):
        """A _Step for batches of m samples."""
        dtype = self.params.dtype
        # The compiled kernel reads samples along rows: one layout, so one compilation.
        sample_major = sample_major and not self.jit_compile
        # The input's last row is ones: a Dense layer folds its bias into its product with it.
        if sample_major:
            # Minibatches: x and y are transposes of C-ordered arrays, each sample's numbers side
            # by side, so that a batch is copied in as whole rows. (For the post's full batch the
            # products run about 1 µs faster on feature-major x, the default.)
            x = np.swapaxes(np.ones(tuple(x_lead) + (m, n_features + 1), dtype), -1, -2)
            y = np.swapaxes(np.empty(y_shape[:-2] + y_shape[:-3:-1], dtype), -1, -2)
        else:
            x = np.ones(tuple(x_lead) + (n_features + 1, m), dtype)
            y = np.empty(y_shape, dtype)
        update = self.optimizer.training_step(self.params, self.grads)
        if self.jit_compile:
            from initlab.fast import jit  # imports Numba: only on request

            # The kernel reads x and y as they are: no targets to prepare, no ops to chain.
            fused_step = jit.training_step(self.layers, self.loss, self.params, self.grads, x, y)
            descend = None
            if type(self.optimizer) is SGD:  # plain gradient descent: the kernel runs it too
                optimizer = self.optimizer

                def descend(epochs):
                    return fused_step.descend(epochs, optimizer.learning_rate)

            return _Step(x, y, (), fused_step, (), update, _nothing, descend)
        forward_ops, backward_ops = [], []
        inputs, grad_inputs = x, None  # no layer needs dL/dX
        for layer in self.layers:
            forward, backward, out, grad_out = layer.training_steps(inputs, grad_inputs)
            forward_ops += forward
            backward_ops[:0] = backward  # the backward pass runs the layers in reverse
            inputs, grad_inputs = out, grad_out
        loss_step, load_targets = self.loss.training_step(
            y, inputs[..., :-1, :], grad_inputs, from_logits=self.layers[-1].emits_logits
        )
        return _Step(x, y, forward_ops, loss_step, backward_ops, update, load_targets)


def _nothing():
    pass


class _Step:
    """One step of training over fixed buffers; a batch goes into `x` (above its ones row) and
    `y`, then `load_targets()`, then `run()`."""

    def __init__(
        self, x, y, forward_ops, loss_step, backward_ops, update, load_targets, descend=None
    ):
        self.x, self.y = x, y
        self.forward_ops, self.backward_ops = tuple(forward_ops), tuple(backward_ops)
        self.loss_step, self.update = loss_step, update
        self.load_targets = load_targets
        # descend(epochs) -> costs: that many steps and updates in one call, or None.
        self.descend = descend

    def run(self):
        """Every gradient from one forward pass, then one update. Returns the cost."""
        for op in self.forward_ops:
            op()
        cost = self.loss_step()
        for op in self.backward_ops:
            op()
        self.update()
        return cost


def _with_at_once(run, at_once):
    """run, as a function that also carries at_once (see run_epochs)."""

    def run_epoch():
        return run()

    run_epoch.at_once = at_once
    return run_epoch


def before_each(run_epoch, hook):
    """run_epoch with hook() called before each of its calls, and before each call of its
    at_once if it has one (see run_epochs)."""

    def run():
        hook()
        return run_epoch()

    at_once = getattr(run_epoch, "at_once", None)
    if at_once is not None:

        def run_many(count):
            hook()
            return at_once(count)

        run.at_once = run_many
    return run


class _Gather:
    """Copies the samples `index` of sample-major data into a batch buffer, allocating nothing.

    data : (M, r), shared by every model, or (K, M, r); out : (b, r) or (K, b, r).
    index : (b,), one order for all, or (K, b), one order per stacked model. Then the copy is one
    np.take of rows from data seen as (K·M, r): model k's sample i is row k·M + i (or row i
    when the models share the data).
    """

    def __init__(self, data, out):
        self.data, self.out = data, out
        M, r = data.shape[-2:]
        self.rows = data.reshape(-1, r)
        self.offsets = (np.arange(data.shape[0]) * M)[:, None] if data.ndim == 3 else 0
        self.row_index = np.empty(out.shape[:-1], np.intp)
        # np.take writes straight into a C-contiguous `out` only; into any other (the rows of a
        # batch beside its ones, or the compiled kernel's feature-major batch, where each row
        # would be scattered over the batch) it fills a temporary first. So the rows are
        # gathered side by side into a buffer of their own, then moved by one copy.
        contiguous = out.flags.c_contiguous
        self.gathered = out if contiguous else np.empty(out.shape, out.dtype)

    def __call__(self, index):
        # mode="clip": under the default "raise" np.take fills a temporary first, even for a
        # contiguous `out` (an order's indices are in range, so clipping never applies).
        if index.ndim == 1:
            np.take(self.data, index, axis=-2, out=self.gathered, mode="clip")
        else:
            np.add(self.offsets, index, out=self.row_index)
            np.take(self.rows, self.row_index, axis=0, out=self.gathered, mode="clip")
        if self.gathered is not self.out:
            np.copyto(self.out, self.gathered)
