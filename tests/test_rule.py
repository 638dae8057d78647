"""The numpy reference against the hand-checkable trajectories of SEMANTICS.md, and the rule's
own functions against the reference. Framework-free: runs on every env."""
import numpy as np
import pytest

from keras_lookahead import _rule
from reference import LookaheadReference, worked_trajectory


def test_reference_matches_worked_trajectory():
    # theta0 = 10, +1 per update, k = 3, alpha = 0.5:
    # 11 12 | sync: slow 10 -> 10 + .5 (13 - 10) = 11.5 | 12.5 13.5 | sync: 11.5 -> 13 | ...
    assert worked_trajectory(10, 10, k=3, alpha=0.5) == [
        11, 12, 11.5, 12.5, 13.5, 13, 14, 15, 14.5, 15.5]


@pytest.mark.parametrize("k", [1, 2, 7])
def test_alpha_one_is_the_bare_optimizer(k):
    assert worked_trajectory(10, 9, k=k, alpha=1.0) == [11, 12, 13, 14, 15, 16, 17, 18, 19]


def test_alpha_zero_resets_to_anchor():
    assert worked_trajectory(10, 6, k=2, alpha=0.0) == [11, 10, 11, 10, 11, 10]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_interpolate_matches_reference(alpha):
    rng = np.random.RandomState(0)
    slow, fast = rng.randn(50).astype("float32"), rng.randn(50).astype("float32")
    ref = LookaheadReference([slow], k=1, alpha=alpha).after_update([fast])[0]
    np.testing.assert_allclose(_rule.interpolate(slow, fast, alpha), ref, rtol=1e-6, atol=1e-6)


def test_interpolate_is_exact_at_both_ends():
    rng = np.random.RandomState(1)
    slow, fast = rng.randn(1000).astype("float32"), rng.randn(1000).astype("float32")
    assert np.array_equal(_rule.interpolate(slow, fast, 1.0), fast)
    assert np.array_equal(_rule.interpolate(slow, fast, 0.0), slow)


def test_is_sync_step():
    assert [bool(_rule.is_sync_step(t, 3)) for t in range(1, 8)] == [
        False, False, True, False, False, True, False]
    assert _rule.is_sync_step(np.int64(4), 2, equal=np.equal)
