"""Argument checks shared by the public API. Errors name the argument, the rule and the value."""
import math
import numbers


def check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r} (of type "
            f"{type(value).__name__})")
    return int(value)


def check_k(k, name="k"):
    return check_int(k, name, minimum=1)


def check_alpha(alpha, name="alpha"):
    ok = (not isinstance(alpha, bool) and isinstance(alpha, numbers.Real)
          and not math.isnan(alpha) and 0.0 <= alpha <= 1.0)
    if not ok:
        raise ValueError(
            f"`{name}` must be a real number in the range [0, 1]. Received: {name}={alpha!r} "
            f"(of type {type(alpha).__name__})")
    return float(alpha)


PULLBACK_MODES = ("none", "reset", "pullback")


def check_pullback(pullback):
    if pullback not in PULLBACK_MODES:
        modes = ", ".join(f'"{m}"' for m in PULLBACK_MODES)
        raise ValueError(f"`pullback` must be one of {modes}. Received: pullback={pullback!r}")
    return pullback


class _Default:
    """A default argument that knows it was not passed (shown as its value in signatures), so
    that a value given under both of an argument's names is an error even when it equals the
    default."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


K_DEFAULT, ALPHA_DEFAULT = _Default(5), _Default(0.5)

#: ``LookaheadOptimizer``'s arguments under TF Addons' names (``tfa.optimizers.Lookahead``)
TFA_NAMES = (("k", "sync_period"), ("alpha", "slow_step_size"))


def lookahead_arguments(k, alpha, kwargs):
    """``(k, alpha)``, checked: ours, or TF Addons' ``sync_period`` / ``slow_step_size`` taken
    out of ``kwargs``; a value given under both names is an error. A check that fails names the
    argument as it was passed."""
    found = []
    for (ours, theirs), value in zip(TFA_NAMES, (k, alpha)):
        name = ours
        if theirs in kwargs:
            other = kwargs.pop(theirs)
            if not isinstance(value, _Default):
                raise ValueError(
                    f"Pass `{ours}` or `{theirs}`, not both: they are the same argument ({theirs} "
                    f"is TF Addons' name for it). Received: {ours}={value!r}, {theirs}={other!r}")
            name, value = theirs, other
        found.append((name, value.value if isinstance(value, _Default) else value))
    (k_name, k), (alpha_name, alpha) = found
    return check_k(k, k_name), check_alpha(alpha, alpha_name)
