"""Argument checks shared by the public API. Errors name the argument, the rule and the value."""
import math
import numbers


def check_k(k, name="k"):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(
            "`{}` must be an integer >= 1. Received: {}={!r} (of type {})".format(
                name, name, k, type(k).__name__))
    return int(k)


def check_alpha(alpha, name="alpha"):
    ok = (not isinstance(alpha, bool) and isinstance(alpha, numbers.Real)
          and not math.isnan(alpha) and 0.0 <= alpha <= 1.0)
    if not ok:
        raise ValueError(
            "`{}` must be a real number in the range [0, 1]. Received: {}={!r} (of type {})".format(
                name, name, alpha, type(alpha).__name__))
    return float(alpha)
