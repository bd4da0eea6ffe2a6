"""Data sets: layout, balance, seeding, and agreement with scikit-learn's geometry."""

import numpy as np
import pytest

from initlab.blocks import datasets


@pytest.mark.parametrize(
    "make", [datasets.moons, datasets.circles, datasets.spirals, datasets.xor, datasets.gaussians]
)
def test_layout_balance_and_seeding(make):
    X, Y = make(101, seed=4)
    assert X.shape == (2, 101) and Y.shape == (1, 101)
    assert set(np.unique(Y)) == {0.0, 1.0} and abs(Y.sum() - 50.5) <= 0.5
    X2, Y2 = make(101, seed=4)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert not np.array_equal(X, make(101, seed=5)[0])


def test_noiseless_moons_lie_on_scikit_learns_curves():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    X, Y = datasets.moons(200, noise=0.0, seed=0)
    reference, labels = sklearn_datasets.make_moons(200, noise=0.0, shuffle=False)
    for label in (0, 1):
        ours = X[:, Y[0] == label].T
        theirs = reference[labels == label]
        order = lambda points: points[np.lexsort(points.T[::-1])]  # noqa: E731
        np.testing.assert_allclose(order(ours), order(theirs), atol=1e-12)


def test_noiseless_xor_labels_are_the_sign_of_the_product():
    X, Y = datasets.xor(1000, noise=0.0, seed=0)
    assert np.abs(X).max() <= 1
    np.testing.assert_array_equal(Y[0], (X[0] * X[1] > 0).astype(float))
    # Every quadrant is drawn: each holds about a quarter of the points.
    quadrants = np.bincount((X[0] > 0) * 2 + (X[1] > 0), minlength=4)
    assert quadrants.min() > 200


def test_gaussians_have_the_requested_centres_and_spread():
    X, Y = datasets.gaussians(4000, noise=0.5, seed=0)
    for label, centre in ((0, -1.0), (1, 1.0)):
        cloud = X[:, Y[0] == label]
        np.testing.assert_allclose(cloud.mean(axis=1), centre, atol=0.05)
        np.testing.assert_allclose(cloud.std(axis=1), 0.5, rtol=0.06)


def test_noise_has_the_requested_scale():
    # Isotropic noise of std s moves a point off a smooth curve by s in the normal direction only,
    # so the mean squared distance to the noiseless curve is s^2 (for s much smaller than the
    # curves' radius of 1).
    noise = 0.05
    curve, _ = datasets.moons(4000, noise=0.0, seed=0)
    noisy, _ = datasets.moons(2000, noise=noise, seed=1)
    squared = ((noisy[:, :, None] - curve[:, None, :]) ** 2).sum(axis=0).min(axis=1)
    assert squared.mean() == pytest.approx(noise**2, rel=0.15)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_samples": 1}, "n_samples must be an integer >= 2, got 1"),
        ({"n_samples": 10.0}, "n_samples must be an integer >= 2, got 10.0"),
        ({"noise": -0.1}, r"noise must be a finite number >= 0, got -0.1"),
        ({"noise": "0.2"}, r"noise must be a finite number >= 0, got '0.2'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        datasets.moons(**{"n_samples": 10, **kwargs})


def test_digits_are_scaled_one_hot_and_split():
    pytest.importorskip("sklearn")
    X_train, Y_train, X_test, Y_test = datasets.digits(seed=0)
    assert X_train.shape[0] == 64 and Y_train.shape[0] == 10
    assert X_train.shape[1] + X_test.shape[1] == 1797
    assert (X_train.shape[1], X_test.shape[1]) == (datasets.DIGITS_TRAIN, datasets.DIGITS_TEST)
    assert 0 <= X_train.min() and X_train.max() <= 1
    np.testing.assert_array_equal(Y_test.sum(axis=0), 1)


def test_noiseless_circles_lie_on_two_circles_whose_radii_are_factor_apart():
    X, Y = datasets.circles(200, noise=0.0, factor=0.3, seed=0)
    radius = np.hypot(X[0], X[1])
    np.testing.assert_allclose(radius[Y[0] == 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(radius[Y[0] == 1], 0.3, rtol=1e-12)


def test_noiseless_spirals_are_two_opposite_arms_of_the_requested_turns():
    X, Y = datasets.spirals(400, noise=0.0, turns=2.0, seed=0)
    for label in (0, 1):
        arm = X[:, Y[0] == label]
        radius = np.hypot(arm[0], arm[1])
        assert radius.min() == pytest.approx(0.5) and radius.max() == pytest.approx(2.0)
        # r grows with the angle: r = t / (turns 2 pi) * 2, so the arm unwinds 1.5 turns
        # between r = 0.5 and r = 2 (t from 0.25 to 1 of its length).
        order = np.argsort(radius)
        angle = np.unwrap(np.arctan2(arm[1], arm[0])[order])
        assert abs(angle[-1] - angle[0]) == pytest.approx(0.75 * 2.0 * 2 * np.pi, rel=1e-9)
    # The second arm is the first turned by half a turn.
    first, second = X[:, Y[0] == 0], X[:, Y[0] == 1]
    np.testing.assert_allclose(np.sort(np.hypot(*first)), np.sort(np.hypot(*second)))
