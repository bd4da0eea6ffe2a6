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
# The memory the three figures of `initlab reproduce` take while drawn and saved at DPI, one at a
# time, beyond matplotlib's import (its fonts, text layout and log-scale tick labels most): about
# 20 MB measured on Linux x86-64 with matplotlib 3.10, and a margin for other versions and fonts.
FIGURES_BYTES = 50 * 10**6


def new_figure(width, height):
    """A new Figure of width x height inches at DPI, on the Agg canvas: drawn without a display,
    never shown, not tracked by pyplot (so nothing to close). Every study figure starts here."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _cmap():
    from matplotlib import colormaps

    return colormaps["Spectral"]


# The two classes' colours, the ends of the post's Spectral map: class 0 red, class 1 blue.
def _class_colors():
    cmap = _cmap()
    return cmap(0.0), cmap(1.0)


# One colour per scheme, far apart (Okabe & Ito's colour-blind-safe palette), so that the bands
# of two schemes do not blend into a third colour that reads as another scheme.
SCHEME_COLORS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)


def _scatter_classes(axes, X, Y, size, **style):
    """The points of each class in its colour, labelled for the legend."""
    for label, color in zip((0, 1), _class_colors(), strict=True):
        chosen = Y[0] == label
        axes.scatter(
            X[0, chosen], X[1, chosen], color=color, s=size, label=f"class {label}", **style
        )


def dataset_figure(result, run=0):
    """The post's scatter of one run's training set, one colour per class, with a legend."""
    X_train, Y_train = result.data[run][:2]
    figure = new_figure(6, 4.5)
    axes = figure.add_subplot()
    _scatter_classes(axes, X_train, Y_train, 15)
    axes.set_xlabel("x1")
    axes.set_ylabel("x2")
    axes.set_title(
        f"make_moons: the {X_train.shape[1]} training samples of run {run}, noise {NOISE}"
    )
    axes.legend(title="training samples", fontsize=8, title_fontsize=8)
    figure.tight_layout()
    return figure


def cost_figure(result):
    """Training cost against epoch per scheme: the median over seeds and the interquartile band.

    The median and quartiles, not the mean and min–max: one chaotic randn x 10 run spikes the
    mean and stretches a min–max band over everything (the table gives the min–max).
    """
    figure = new_figure(8, 5)
    axes = figure.add_subplot()
    epochs = np.arange(result.costs.shape[-1])
    for s, scheme in enumerate(result.schemes):
        color = SCHEME_COLORS[s % len(SCHEME_COLORS)]
        low, median, high = np.percentile(result.costs[s], [25, 50, 75], axis=0)
        axes.fill_between(epochs, low, high, color=color, alpha=0.25, linewidth=0)
        axes.plot(epochs, median, color=color, linewidth=1.2, label=scheme.label)
    # The costs span two or three decades (randn x 10 starts far above ln 2, He ends near 0.05).
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training cost (cross-entropy)")
    seeds = result.costs.shape[1]
    axes.set_title(
        f"Cost over {seeds} seed{'s' if seeds > 1 else ''}: median, band = "
        f"interquartile range; learning rate {result.settings['learning_rate']}"
    )
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return figure


def boundary_figure(result, runs, step=0.02):
    """One panel per scheme: the decision boundary of run runs[s] over its training set.

    The shaded regions are the class the model predicts; the dots, the run's training samples in
    their true class's colour; one legend, under the panels, says so.
    """
    from matplotlib.patches import Patch

    n = len(result.schemes)
    columns = min(n, 3)
    rows = -(-n // columns)
    figure = new_figure(5 * columns, 4.2 * rows + 0.5)
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
        axes.contourf(
            xx, yy, predicted, levels=[-0.5, 0.5, 1.5], cmap=_cmap(), vmin=0, vmax=1, alpha=0.4
        )
        _scatter_classes(axes, X_train, Y_train, 10, edgecolors="k", linewidths=0.2)
        axes.set_xlabel("x1")
        axes.set_ylabel("x2")
        axes.set_title(
            f"{scheme.label}\nrun {run}: train {result.train_accuracy[s, run]:.1f}%, "
            f"test {result.test_accuracy[s, run]:.1f}%",
            fontsize=10,
        )
    class_0, class_1 = _class_colors()
    handles = [
        *figure.axes[0].collections[-2:],
        Patch(color=class_0, alpha=0.4, label="predicted class 0"),
        Patch(color=class_1, alpha=0.4, label="predicted class 1"),
    ]
    labels = [
        "training samples, class 0",
        "training samples, class 1",
        "predicted class 0",
        "predicted class 1",
    ]
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    figure.suptitle("Decision boundaries, each scheme's median run by test accuracy")
    figure.tight_layout(rect=(0, 0.5 / (4.2 * rows + 0.5), 1, 1))
    return figure
