"""``Lookahead(k, alpha).inject(model)``: Lookahead inside a compiled model's own ``fit``."""
import contextlib

from keras_lookahead import compat
from keras_lookahead._patch import Patch
from keras_lookahead._validation import check_alpha, check_int, check_k, check_pullback

_ATTR = "_keras_lookahead"


class Lookahead(object):
    """Lookahead optimizer (Zhang et al., 2019), injected into a compiled Keras model.

    The model's optimizer takes the fast steps as usual. After every ``k``-th update it applies,
    the slow weights move ``slow += alpha * (fast - slow)`` and the fast weights are reset to
    them, in one batched in-graph update that runs only on those steps.

    Args:
        k: int >= 1, the number of inner-optimizer updates between two syncs.
        alpha: float in [0, 1], the slow weights' step size. ``alpha=1`` is the bare optimizer;
            ``alpha=0`` resets the fast weights to the anchor at every sync.
        pullback: what each sync does to the inner optimizer's momentum ``m`` (the official
            repository's ``pullback_momentum``): ``"none"`` leaves it, ``"reset"`` zeroes it,
            ``"pullback"`` sets ``m <- alpha * m + (1 - alpha) * m_cached`` and caches a copy
            of the result. Needs an optimizer with momentum (not on standalone Keras).

    Example:
        >>> model.compile(optimizer="adam", loss="mse")
        >>> Lookahead(k=5, alpha=0.5).inject(model)
        >>> model.fit(x, y)

    References:
        Zhang, Lucas, Hinton, Ba: "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019, https://arxiv.org/abs/1907.08610
    """

    def __init__(self, k=5, alpha=0.5, pullback="none"):
        self.k = check_k(k)
        self.alpha = check_alpha(alpha)
        self.pullback = check_pullback(pullback)

    def __repr__(self):
        return "Lookahead(k={}, alpha={}{})".format(self.k, self.alpha, self._pullback_repr())

    def _pullback_repr(self):
        return "" if self.pullback == "none" else ", pullback={!r}".format(self.pullback)

    def _levels(self):
        """``((period, step size), ...)`` of each slow level, innermost first."""
        return ((self.k, self.alpha),)

    def inject(self, model):
        """Make ``model.fit`` (and ``train_on_batch``) train with Lookahead.

        Call after ``model.compile(...)``. The slow weights are copies of the trainable weights
        at this moment; non-trainable weights (BatchNorm statistics, frozen layers) are never
        copied nor touched. Injecting after an earlier ``fit`` is fine: the cached train function
        is rebuilt. ``compile`` again later, with the same or a new optimizer, keeps Lookahead
        and its state (counter and slow weights); weights that became trainable get a slow copy
        from their value at that ``compile``. Injecting twice is an error: call
        :func:`remove` first. If ``inject`` fails, the model is left as it was.

        Returns:
            ``model``.

        Raises:
            TypeError: ``model`` is not a Keras model, or its optimizer is not one of the
                model's Keras or cannot be hooked.
            ValueError: ``model`` is not compiled, or has no trainable weights.
            RuntimeError: Lookahead is already injected into ``model``.
            keras_lookahead.UnsupportedVersionError: the model's Keras or TensorFlow version
                is not supported (the message lists the supported stacks).
        """
        adapter = compat.adapter_for(model)
        existing = vars(model).get(_ATTR)
        if existing is not None:
            raise RuntimeError(
                "Lookahead is already injected into this model ({!r}). To change it, call "
                "keras_lookahead.remove(model) first.".format(existing.lookahead))
        if not adapter.is_compiled(model):
            raise ValueError(
                "`model` must be compiled before Lookahead is injected: call "
                "model.compile(optimizer=..., loss=...) first. Received: model={!r} "
                "(not compiled)".format(getattr(model, "name", model)))
        if not adapter.trainable_weights(model):
            raise ValueError(
                "`model` has no trainable weights, so Lookahead has nothing to do. "
                "Received: model={!r}".format(getattr(model, "name", model)))
        compat.check_optimizer(model, adapter.name)
        _Injection(self, model, adapter)
        return model


class NestedLookahead(Lookahead):
    """Lookahead applied to Lookahead: two slow levels, injected like :class:`Lookahead`.

    Every ``k`` updates the inner slow weights ``phi`` sync with the fast weights as in
    Lookahead; right after every ``s``-th such sync, the outer slow weights ``psi`` step towards
    ``phi`` by ``h``, and ``phi`` and the fast weights restart from ``psi``. ``s = 0`` or ``h = 1``
    is plain Lookahead.

    Args:
        k, alpha: as in :class:`Lookahead`.
        s: int >= 0, the number of inner syncs between two outer syncs (0: no outer level).
        h: float in [0, 1], the outer slow weights' step size.
        pullback: as in :class:`Lookahead`, applied at every inner sync with ``alpha``.

    Example:
        >>> NestedLookahead(k=5, alpha=0.5, s=5, h=0.5).inject(model)
    """

    def __init__(self, k=5, alpha=0.5, s=5, h=0.5, pullback="none"):
        super(NestedLookahead, self).__init__(k, alpha, pullback)
        self.s = check_int(s, "s", minimum=0)
        self.h = check_alpha(h, "h")

    def __repr__(self):
        return "NestedLookahead(k={}, alpha={}, s={}, h={}{})".format(
            self.k, self.alpha, self.s, self.h, self._pullback_repr())

    def _levels(self):
        if self.s == 0:
            return ((self.k, self.alpha),)
        return ((self.k, self.alpha), (self.k * self.s, self.h))


@contextlib.contextmanager
def slow_weights(model, level=0):
    """Put the slow weights into ``model`` for the ``with`` block, then the fast ones back.

    Between syncs the slow weights are the point Lookahead believes in; the paper and optax
    recommend evaluating, predicting or exporting them. On leaving the block the fast weights,
    the slow weights and the step counter are exactly as they were (bit for bit), so training can
    go on as if nothing happened.

    Args:
        model: a model Lookahead is injected into, or compiled with a ``LookaheadOptimizer``.
        level: 0 for the slow weights; 1 for :class:`NestedLookahead`'s outer ones.

    Example:
        >>> with keras_lookahead.slow_weights(model):
        ...     model.evaluate(x_val, y_val)
        ...     model.save_weights("slow.weights.h5")
    """
    adapter, state, owner = _state_of(model)
    check_level(level, state, owner)
    if state is None:
        # a LookaheadOptimizer that has applied no update: the weights are the slow weights
        yield model
        return
    adapter.attach_state(model)
    weights = adapter.trainable_weights(model)
    fast = adapter.get_values(weights)
    adapter.set_values(weights, adapter.get_values(state.slow_weights(weights, level)))
    try:
        yield model
    finally:
        adapter.set_values(weights, fast)


def get_state(model):
    """Lookahead's state in ``model`` (step counter, slow weights, cached momentum) as a list of
    numpy arrays, for saving where Keras does not save it: with ``inject`` on standalone Keras
    or in an HDF5 file. (TensorFlow checkpoints, Keras 3 weight files and ``LookaheadOptimizer``
    save it themselves; see the README's "Resume and scale".)

    Example:
        >>> np.savez("lookahead.npz", *keras_lookahead.get_state(model))
    """
    adapter, state, owner = _state_of(model)
    if state is None:
        raise ValueError("{!r} has applied no update yet: it has no state to get.".format(owner))
    adapter.attach_state(model)
    return adapter.get_values(state.state_variables(adapter.trainable_weights(model)))


def set_state(model, arrays):
    """Restore what :func:`get_state` returned into a model with the same Lookahead (inject
    it, or compile with the same ``LookaheadOptimizer``, first).

    Example:
        >>> saved = np.load("lookahead.npz")
        >>> keras_lookahead.set_state(model, [saved["arr_%d" % i] for i in range(len(saved))])
    """
    adapter, state, owner = _state_of(model)
    if state is None:
        raise ValueError("{!r} has applied no update yet: set the state after its first update, "
                         "or use a checkpoint (README: Resume and scale).".format(owner))
    adapter.attach_state(model)
    variables = state.state_variables(adapter.trainable_weights(model))
    arrays = list(arrays)
    shapes = [tuple(v.shape) for v in variables]
    got = [tuple(getattr(a, "shape", ())) for a in arrays]
    if got != shapes:
        raise ValueError("`arrays` must be what get_state returned for a model with the same "
                         "weights and Lookahead: {} arrays of shapes {}. Received: {} arrays of "
                         "shapes {}".format(len(shapes), shapes, len(got), got))
    adapter.set_values(variables, arrays)


def _state_of(model):
    """``(adapter, state, what holds it)`` of the Lookahead in ``model``: injected, or a
    ``LookaheadOptimizer`` (possibly inside a loss-scale optimizer) it is compiled with; the
    state is None for a tf.keras ``LookaheadOptimizer`` before its first update."""
    injection = _injected(model)
    if injection is not None:
        return injection.adapter, injection.state, injection.lookahead
    optimizer = getattr(model, "optimizer", None)
    while optimizer is not None:
        if hasattr(optimizer, "_lookahead"):
            # None until a tf.keras LookaheadOptimizer applies its first update
            return compat.adapter_for(model), optimizer._lookahead, optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    raise ValueError("`model` has no Lookahead: neither injected nor a LookaheadOptimizer. "
                     "Received: model={!r}".format(getattr(model, "name", model)))


def check_level(level, state, owner):
    """ValueError unless ``level`` names a slow level of ``state`` (None: an unbuilt
    LookaheadOptimizer, which has one)."""
    levels = 1 if state is None else len(state.levels)
    if isinstance(level, bool) or level not in range(levels):
        raise ValueError("`level` must be an integer in [0, {}) for {!r}. Received: level={!r}"
                         .format(levels, owner, level))


def _injected(model):
    """The ``_Injection`` of ``model``, or None."""
    return vars(model).get(_ATTR) if hasattr(model, "__dict__") else None


def _injection_of(model):
    injection = _injected(model)
    if injection is None:
        raise ValueError("`model` has no Lookahead injected. Received: model={!r}".format(
            getattr(model, "name", model)))
    return injection


def remove(model):
    """Undo :meth:`Lookahead.inject`: ``fit`` trains with the bare optimizer again.

    The weights stay as they are (the fast weights). Raises ValueError if ``model`` has no
    Lookahead.
    """
    _injection_of(model).detach()


class _Injection(object):
    """What ``inject`` did to one model, so that it can be redone at ``compile`` and undone."""

    def __init__(self, lookahead, model, adapter):
        self.lookahead = lookahead
        self.model = model
        self.adapter = adapter
        self._optimizer = None
        self._optimizer_patch = None
        self._compile_patch = None
        self.state = None
        try:
            self.state = adapter.create_state(model, lookahead._levels(), lookahead.pullback)
            self._hook_optimizer()
            self._compile_patch = Patch(model, "compile", self._compile(model.compile))
            object.__setattr__(model, _ATTR, self)
        except BaseException:
            self._unpatch()
            raise
        adapter.reset_train_function(model)

    def _hook_optimizer(self):
        optimizer = self.model.optimizer
        self.adapter.prepare(self.model, optimizer, self.state)
        if optimizer is self._optimizer:
            return
        patch = self.adapter.hook(optimizer, self.state)
        if self._optimizer_patch is not None:
            self._optimizer_patch.undo()
        self._optimizer, self._optimizer_patch = optimizer, patch

    def _compile(self, original):
        def compile(*args, **kwargs):
            result = original(*args, **kwargs)
            self._hook_optimizer()
            self.adapter.reset_train_function(self.model)
            return result

        return compile

    def _unpatch(self):
        for patch in (self._compile_patch, self._optimizer_patch):
            if patch is not None:
                patch.undo()
        self._compile_patch = self._optimizer_patch = self._optimizer = None
        if self.state is not None:
            self.adapter.release(self.state)

    def detach(self):
        self._unpatch()
        object.__delattr__(self.model, _ATTR)
        self.adapter.reset_train_function(self.model)
