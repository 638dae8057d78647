"""The Lookahead rule, in one place.

Paper: Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward, 1 step back",
arXiv 1907.08610, Algorithm 1. With ``theta`` the fast (trainable) weights, ``phi`` their slow
copies taken when Lookahead is attached, and ``t`` the number of inner-optimizer updates applied
since then::

    after inner update t, if t % k == 0:
        phi   <- phi + alpha * (theta - phi)
        theta <- phi

Every adapter in :mod:`keras_lookahead.compat` builds its in-graph sync from these two functions,
so the rule is written once. They use only ``*``, ``+`` and ``%``, and so work unchanged on numpy
arrays, TensorFlow tensors and Keras tensors.
"""
import operator


def is_sync_step(count, k, equal=operator.eq):
    """True on the steps that end a period: ``count`` inner updates applied, ``count % k == 0``.

    ``equal`` is the framework's element-wise equality where ``==`` is not (TF1 graph tensors).
    """
    return equal(count % k, 0)


def interpolate(slow, fast, alpha):
    """The new slow weights ``phi + alpha * (theta - phi)``.

    Written as ``(1 - alpha) * phi + alpha * theta``: the same value up to rounding, and exact at
    both ends, so ``alpha = 1`` returns ``theta`` bit for bit (Lookahead switched off) and
    ``alpha = 0`` returns ``phi`` bit for bit.
    """
    return (1.0 - alpha) * slow + alpha * fast
