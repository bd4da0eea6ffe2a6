"""The study's figures: the data set, the cost curves over seeds, and the decision boundaries.

Each function takes a StudyResult, draws on a new matplotlib Figure (the Agg canvas, so no display
is needed and nothing is shown) and returns it; `output.save_figure` writes it. The plotting
helpers hold the only transposes between the post's (features, samples) layout and matplotlib's
(x, y) lists.

    >>> from initlab.studies.post_study import run_study
    >>> figure = cost_figure(run_study(n_seeds=2, epochs=10))
    >>> len(figure.axes)
    1
"""

import numpy as np

from initlab.studies.post_study import NOISE

DPI = 100


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _cmap():
    from matplotlib import colormaps

    return colormaps["Spectral"]


def dataset_figure(result, run=0):
    """The post's scatter of one run's training set, dots coloured by class."""
    X_train, Y_train = result.data[run][:2]
    figure = _figure(6, 4.5)
    axes = figure.add_subplot()
    axes.scatter(X_train[0], X_train[1], c=Y_train[0], s=15, cmap=_cmap())
    axes.set_xlabel("x1")
    axes.set_ylabel("x2")
    axes.set_title(f"make_moons: {X_train.shape[1]} training samples, noise "
                   f"{NOISE} (run {run})")
    figure.tight_layout()
    return figure


def cost_figure(result):
    """Training cost against epoch per scheme: the mean over seeds and a min–max band."""
    figure = _figure(8, 5)
    axes = figure.add_subplot()
    epochs = np.arange(result.costs.shape[-1])
    for s, scheme in enumerate(result.schemes):
        costs = result.costs[s]
        line, = axes.plot(epochs, costs.mean(axis=0), linewidth=1, label=f"{scheme.label} (mean)")
        axes.fill_between(epochs, costs.min(axis=0), costs.max(axis=0), color=line.get_color(),
                          alpha=0.2, linewidth=0)
    # The costs span two or three decades (randn x 10 starts far above ln 2, He ends near 0.05).
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training cost (cross-entropy)")
    seeds = result.costs.shape[1]
    axes.set_title(f"Cost over {seeds} seed{'s' if seeds > 1 else ''}: mean, band = min–max; "
                   f"learning rate {result.settings['learning_rate']}")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return figure


def boundary_figure(result, runs, step=0.02):
    """One panel per scheme: the decision boundary of run runs[s] over its training set."""
    n = len(result.schemes)
    columns = min(n, 3)
    rows = -(-n // columns)
    figure = _figure(5 * columns, 4.2 * rows)
    for s, scheme in enumerate(result.schemes):
        run = runs[s]
        X_train, Y_train = result.data[run][:2]
        model = result.models[s][run]
        axes = figure.add_subplot(rows, columns, s + 1)
        # The post's plot_decision_boundary: the class predicted on a grid, padded by 1.
        xx, yy = np.meshgrid(
            np.arange(X_train[0].min() - 1, X_train[0].max() + 1, step),
            np.arange(X_train[1].min() - 1, X_train[1].max() + 1, step),
        )
        grid = np.vstack([xx.ravel(), yy.ravel()])
        predicted = (model.predict(grid) > 0.5).reshape(xx.shape)
        # Levels around 0 and 1 put the two classes at the colour map's ends, like the dots.
        axes.contourf(xx, yy, predicted, levels=[-0.5, 0.5, 1.5], cmap=_cmap(),
                      vmin=0, vmax=1, alpha=0.4)
        axes.scatter(X_train[0], X_train[1], c=Y_train[0], s=10, cmap=_cmap(),
                     edgecolors="k", linewidths=0.2)
        axes.set_xlabel("x1")
        axes.set_ylabel("x2")
        axes.set_title(f"{scheme.label}\nrun {run}: train {result.train_accuracy[s, run]:.1f}%, "
                       f"test {result.test_accuracy[s, run]:.1f}%", fontsize=10)
    figure.suptitle("Decision boundaries, each scheme's median run by test accuracy")
    figure.tight_layout()
    return figure
