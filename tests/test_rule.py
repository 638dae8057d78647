"""The numpy reference against the hand-checkable trajectories of docs/design.md, and the rule's
own functions against the reference. Framework-free: runs on every env."""
import numpy as np
import pytest

from keras_lookahead import _rule
from reference import LookaheadReference, worked_trajectory

pytestmark = pytest.mark.core


def test_reference_matches_worked_trajectory():
    # theta0 = 10, +1 per update, k = 3, alpha = 0.5:
    # 11 12 | sync: slow 10 -> 10 + .5 (13 - 10) = 11.5 | 12.5 13.5 | sync: 11.5 -> 13 | ...
    assert worked_trajectory(10, 10, k=3, alpha=0.5) == [
        11, 12, 11.5, 12.5, 13.5, 13, 14, 15, 14.5, 15.5]


def test_nested_reference_matches_worked_trajectory():
    # k = 2, alpha = .5, s = 2, h = .5: t2 phi 10 -> 11; t4 phi 11 -> 12, psi 10 -> 11, reset 11;
    # t6 phi 11 -> 12; t8 phi 12 -> 13, psi 11 -> 12, reset 12
    assert worked_trajectory(10, 8, k=2, alpha=0.5, nested=(2, 0.5)) == [
        11, 11, 12, 11, 12, 12, 13, 12]


@pytest.mark.parametrize("s,h", [(0, 0.3), (3, 1.0)])
def test_nested_degenerates_to_lookahead(s, h):
    assert worked_trajectory(10, 12, k=3, alpha=0.5, nested=(s, h)) == worked_trajectory(
        10, 12, k=3, alpha=0.5)


def _python_cond(pred, true_fn, false_fn):
    return true_fn() if pred else false_fn()


@pytest.mark.parametrize("k,alpha,s,h", [(2, 0.5, 2, 0.5), (3, 0.7, 2, 0.25), (1, 0.5, 3, 0.8)])
def test_synced_values_match_nested_reference(k, alpha, s, h):
    """The library's rule, driven by plain Python, against the independent reference."""
    theta, phi, psi = [np.float64(10)], [np.float64(10)], [np.float64(10)]
    path = []
    for t in range(1, 25):
        theta = [theta[0] + 1]
        if _rule.is_sync_step(t, k):
            theta, (phi, psi) = _rule.synced_values(
                theta, [phi, psi], [alpha, h], [None, _rule.is_sync_step(t, k * s)],
                _python_cond)
        path.append(float(theta[0]))
    np.testing.assert_allclose(path, worked_trajectory(10, 24, k, alpha, nested=(s, h)),
                               rtol=0, atol=1e-6)  # the reference rounds alpha to float32


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
