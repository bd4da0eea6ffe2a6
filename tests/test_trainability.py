"""trainability: near the edge of chaos a deep tanh network learns digits; far from it, not."""

import pytest

pytest.importorskip("sklearn")

from initlab.studies.trainability import DEPTH_MULTIPLE, trainability  # noqa: E402
from initlab.tools import theory  # noqa: E402


def test_deep_tanh_trains_on_the_edge_and_not_far_from_it():
    # 16 layers of 32 units, 4 epochs: ordered (0.5), critical (1.76 at σ_b² = 0.05), chaotic (8).
    rows = trainability(
        depths=(16,),
        weight_variances=(0.5, 1.76, 8.0),
        seeds=(0,),
        width=32,
        epochs=4,
        learning_rate=0.05,
    )
    accuracy = {row["weight_variance"]: row["test_accuracy"] for row in rows}
    assert accuracy[1.76] > 30  # measured 42% (chance is 10%)
    assert accuracy[0.5] < 15 and accuracy[8.0] < 15
    for row in rows:
        xi_c = theory.depth_scales("tanh", row["weight_variance"], 0.05)[1]
        assert row["predicted_max_depth"] == pytest.approx(DEPTH_MULTIPLE * xi_c)
        assert row["predicted_trainable"] == (16 <= DEPTH_MULTIPLE * xi_c)
    assert [row["predicted_trainable"] for row in rows] == [False, True, True]


def test_bad_grid_is_refused():
    with pytest.raises(ValueError, match="depths must be an integer >= 1, got 0"):
        trainability(depths=(0,))
    with pytest.raises(ValueError, match="must each list at least one value"):
        trainability(seeds=())
