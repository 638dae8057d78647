"""Bad arguments fail at construction with the argument, the rule and the value."""
import math

import pytest

from keras_lookahead import Lookahead, NestedLookahead

pytestmark = pytest.mark.core


@pytest.mark.parametrize("k", [0, -3, 2.0, 1.5, True, "5", None, float("nan")])
def test_bad_k(k):
    with pytest.raises(ValueError) as err:
        Lookahead(k=k)
    assert "`k` must be an integer >= 1. Received: k={!r}".format(k) in str(err.value)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError) as err:
        Lookahead(alpha=alpha)
    message = str(err.value)
    assert "`alpha` must be a real number in the range [0, 1]" in message
    assert "Received: alpha={!r}".format(alpha) in message


@pytest.mark.parametrize("k,alpha", [(1, 0.0), (1, 1), (5, 0.5), (10 ** 9, 1.0)])
def test_good_arguments(k, alpha):
    la = Lookahead(k=k, alpha=alpha)
    assert (la.k, la.alpha) == (k, alpha)
    assert isinstance(la.alpha, float) and not math.isnan(la.alpha)
    assert repr(la) == "Lookahead(k={}, alpha={})".format(k, float(alpha))


def test_numpy_integer_k_is_accepted():
    np = pytest.importorskip("numpy")
    assert Lookahead(k=np.int64(3), alpha=np.float32(0.25)).k == 3


@pytest.mark.parametrize("s", [-1, 1.0, True, "2", None])
def test_bad_s(s):
    with pytest.raises(ValueError) as err:
        NestedLookahead(s=s)
    assert "`s` must be an integer >= 0. Received: s={!r}".format(s) in str(err.value)


@pytest.mark.parametrize("h", [-0.5, 2, float("nan"), False])
def test_bad_h(h):
    with pytest.raises(ValueError) as err:
        NestedLookahead(h=h)
    assert "`h` must be a real number in the range [0, 1]. Received: h={!r}".format(h) in str(
        err.value)


def test_nested_levels():
    assert NestedLookahead(k=3, alpha=0.5, s=4, h=0.25)._levels() == ((3, 0.5), (12, 0.25))
    assert NestedLookahead(k=3, alpha=0.5, s=0, h=0.25)._levels() == ((3, 0.5),)
    assert repr(NestedLookahead(2, 0.5, 3, 1)) == "NestedLookahead(k=2, alpha=0.5, s=3, h=1.0)"
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        NestedLookahead(k=0)
