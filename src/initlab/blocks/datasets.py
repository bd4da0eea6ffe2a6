"""Toy data sets in the post's layout: X of shape (n_features, m), Y of shape (n_outputs, m).

moons, circles, spirals, xor and gaussians are drawn here with a seeded Generator (moons and
circles follow scikit-learn's make_moons and make_circles geometry; xor and gaussians
TensorFlow Playground's); digits loads scikit-learn's bundled 8x8 digits.

    >>> X, Y = moons(400, noise=0.2, seed=0)
    >>> X.shape, Y.shape
    ((2, 400), (1, 400))
"""

import numpy as np

from initlab import checks


def _check(n_samples, noise):
    checks.integer("n_samples", n_samples, minimum=2)
    checks.number("noise", noise, minimum=0)


def _finish(points, labels, noise, rng):
    """Add Gaussian noise, shuffle, and lay out as (features, samples)."""
    points = points + rng.normal(scale=noise, size=points.shape) if noise else points
    order = rng.permutation(len(labels))
    return points[order].T.copy(), labels[order].reshape(1, -1).astype(float)


def moons(n_samples=400, noise=0.2, seed=None):
    """Two interleaving half circles (make_moons's geometry), 2 features, 0/1 labels."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n_in)
    points = np.vstack(
        [
            np.column_stack([np.cos(outer), np.sin(outer)]),
            np.column_stack([1 - np.cos(inner), 1 - np.sin(inner) - 0.5]),
        ]
    )
    labels = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(points, labels, noise, rng)


def circles(n_samples=400, noise=0.1, factor=0.5, seed=None):
    """A small circle inside a large one (scikit-learn's make_circles geometry)."""
    _check(n_samples, noise)
    checks.fraction("factor", factor, allow_zero=False)
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    points = np.vstack(
        [
            np.column_stack([np.cos(outer), np.sin(outer)]),
            factor * np.column_stack([np.cos(inner), np.sin(inner)]),
        ]
    )
    labels = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(points, labels, noise, rng)


def spirals(n_samples=400, noise=0.2, turns=1.5, seed=None):
    """Two interleaved Archimedean spirals: a harder two-class problem than moons."""
    _check(n_samples, noise)
    turns = checks.positive("turns", turns)  # 0 turns would divide by zero: nan points
    rng = np.random.default_rng(seed)
    n_a = n_samples // 2
    n_b = n_samples - n_a
    arms = []
    for n, phase in ((n_a, 0.0), (n_b, np.pi)):
        t = np.linspace(0.25, 1.0, n) * turns * 2 * np.pi
        radius = t / (turns * 2 * np.pi) * 2.0
        arms.append(np.column_stack([radius * np.cos(t + phase), radius * np.sin(t + phase)]))
    labels = np.concatenate([np.zeros(n_a), np.ones(n_b)])
    return _finish(np.vstack(arms), labels, noise / 4, rng)


def xor(n_samples=400, noise=0.2, seed=None):
    """Points uniform in the square [-1, 1]^2, label 1 where x1 * x2 > 0 (the same-sign quadrants).

    Labels are taken before the noise, as TensorFlow Playground's xor does, so with noise some
    points near the axes sit in the other class's quadrant.
    """
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    # Half the points in the same-sign quadrants, half in the others: balanced classes.
    n_same = n_samples // 2
    corner = rng.uniform(0, 1, size=(n_samples, 2))
    signs = rng.choice([-1.0, 1.0], size=n_samples)
    flip = np.where(np.arange(n_samples) < n_same, 1.0, -1.0)
    points = corner * np.column_stack([signs, signs * flip])
    labels = (np.arange(n_samples) < n_same).astype(float)
    return _finish(points, labels, noise, rng)


def gaussians(n_samples=400, noise=0.5, seed=None):
    """Two Gaussian clouds of standard deviation `noise`: label 0 at (-1, -1), label 1 at (1, 1)."""
    _check(n_samples, noise)
    rng = np.random.default_rng(seed)
    n_a = n_samples // 2
    labels = np.concatenate([np.zeros(n_a), np.ones(n_samples - n_a)])
    points = np.where(labels[:, None] == 1, 1.0, -1.0) * np.ones((n_samples, 2))
    return _finish(points, labels, noise, rng)


# The samples of digits' split at the default test_fraction (1797 images, a quarter for testing).
DIGITS_TRAIN, DIGITS_TEST = 1348, 449
# Its features (8x8 pixels) and classes; every other data set here has 2 features and 1 output.
DIGITS_FEATURES, DIGITS_CLASSES = 64, 10


def digits(seed=None, test_fraction=0.25):
    """scikit-learn's 8x8 digits, scaled to [0, 1]: X (64, m); Y one-hot (10, m).

    Returns (X_train, Y_train, X_test, Y_test), split with a seeded shuffle. Needs scikit-learn.
    """
    checks.fraction("test_fraction", test_fraction, allow_zero=False)
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("digits needs scikit-learn: pip install 'initlab[study]'") from None
    data = load_digits()
    X = data.data / 16.0
    Y = np.eye(10)[data.target]
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(test_fraction * len(X)))
    test, train = order[:n_test], order[n_test:]
    return X[train].T.copy(), Y[train].T.copy(), X[test].T.copy(), Y[test].T.copy()
