import numpy as np
import pytest

from ddw_lab.compare.jobs import derangement
from ddw_lab.compare.stats import paired_difference


def test_confidence_interval_by_hand():
    # Differences 1..5: mean 3, std sqrt(2.5) = 1.5811; t_0.975(4) = 2.7764, t_0.8(4) = 0.9410.
    paired = paired_difference([11, 12, 13, 14, 15], [10, 10, 10, 10, 10])
    assert paired["mean"] == pytest.approx(3.0)
    assert paired["std"] == pytest.approx(1.58114, abs=1e-5)
    half = 2.77645 * 1.58114 / 5**0.5
    assert paired["ci95"] == pytest.approx([3.0 - half, 3.0 + half], abs=1e-4)
    assert paired["verdict"] == "ahead"
    assert paired["resolvable"] == pytest.approx((2.77645 + 0.94096) * 1.58114 / 5**0.5, abs=1e-4)


def test_verdict_only_when_the_interval_excludes_zero():
    assert paired_difference([0, 0, 0], [1, 2, 1.5])["verdict"] == "behind"
    inside = paired_difference([3.0, -0.1, 3.0], [0, 0, 0])  # one seed disagrees
    assert inside["ci95"][0] < 0 < inside["ci95"][1]
    assert inside["verdict"] == "no difference resolved at this power"
    assert paired_difference([0.5, 0.6, 0.55], [1.0, 1.1, 1.05], False)["verdict"] == "ahead"
    with pytest.raises(ValueError, match="two equal runs of >= 2 values"):
        paired_difference([1.0], [2.0])


@pytest.mark.parametrize("count", [2, 3, 50])
def test_derangement_moves_every_index(count):
    other = derangement(count, seed=3)
    assert sorted(other.tolist()) == list(range(count))
    assert (other != np.arange(count)).all()
    assert (derangement(count, seed=3) == other).all()  # seeded
