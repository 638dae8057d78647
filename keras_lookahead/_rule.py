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


def synced_values(fast, slow_levels, step_sizes, level_syncs, cond):
    """The values after a sync of level 0, for Lookahead nested in Lookahead.

    Level 0 is the paper's slow weights ``phi``, stepping by ``step_sizes[0]`` towards the fast
    weights every ``k`` updates. Level ``i + 1`` (if any) steps by ``step_sizes[i + 1]`` towards
    level ``i`` right after level ``i`` synced, on the steps ``level_syncs[i + 1]`` says; every
    level that syncs, and all below it and the fast weights, are then reset to it. With one level
    this is ``interpolate`` followed by ``theta <- phi``. Worked example (``docs/design.md``,
    section 1): theta0 = 10, +1 per update, k = 2, alpha = 0.5, s = 2, h = 0.5 gives
    11 11 12 11 12 12 13 12.

    Args:
        fast: list of the fast weights' values.
        slow_levels: per level, the list of that level's slow values.
        step_sizes: per level, its step size (alpha, h, ...).
        level_syncs: per level, a bool (tensor) telling whether it syncs now; entry 0 is unused
            (level 0 syncs whenever this is called).
        cond: the framework's ``cond(pred, true_fn, false_fn)``.

    Returns:
        ``(new_fast, new_slow_levels)``.
    """

    def climb(level, values):
        new = [interpolate(s, v, step_sizes[level]) for s, v in zip(slow_levels[level], values)]
        if level + 1 == len(slow_levels):
            return new, [new]
        final, uppers = cond(level_syncs[level + 1], lambda: climb(level + 1, new),
                             lambda: (new, list(slow_levels[level + 1:])))
        return final, [final] + list(uppers)

    return climb(0, fast)


def momentum_after_sync(momentum, cached, alpha, mode, zeros_like):
    """The inner optimizer's momentum-like state after a sync, for ``pullback`` (the official
    repository's ``pullback_momentum``). Per weight, with ``m`` its momentum and ``m_cached`` the
    value it had after the previous sync (zeros at first)::

        "reset":    m <- 0
        "pullback": m <- alpha * m + (1 - alpha) * m_cached;  m_cached <- m

    ``m_cached`` takes the new value as a copy: aliasing it to the live buffer (as the official
    PyTorch code does) makes the inner optimizer update both, and the rule degenerates.

    Returns ``(new_momentum, new_cached)``; ``new_cached`` is ``cached`` unless mode is
    ``"pullback"``.
    """
    if mode == "reset":
        return [zeros_like(m) for m in momentum], list(cached)
    if mode == "pullback":
        new = [alpha * m + (1.0 - alpha) * c for m, c in zip(momentum, cached)]
        return new, new
    raise ValueError(f"no momentum update for pullback={mode!r}")
