"""Argument checks shared by the public API. Errors name the argument, the rule and the value."""
import math
import numbers


def check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            "`{}` must be an integer >= {}. Received: {}={!r} (of type {})".format(
                name, minimum, name, value, type(value).__name__))
    return int(value)


def check_k(k, name="k"):
    return check_int(k, name, minimum=1)


def check_alpha(alpha, name="alpha"):
    ok = (not isinstance(alpha, bool) and isinstance(alpha, numbers.Real)
          and not math.isnan(alpha) and 0.0 <= alpha <= 1.0)
    if not ok:
        raise ValueError(
            "`{}` must be a real number in the range [0, 1]. Received: {}={!r} (of type {})".format(
                name, name, alpha, type(alpha).__name__))
    return float(alpha)


PULLBACK_MODES = ("none", "reset", "pullback")


def check_pullback(pullback):
    if pullback not in PULLBACK_MODES:
        raise ValueError(
            "`pullback` must be one of {}. Received: pullback={!r}".format(
                ", ".join('"{}"'.format(m) for m in PULLBACK_MODES), pullback))
    return pullback
