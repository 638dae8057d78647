"""``Lookahead(k, alpha).inject(model)``: Lookahead inside a compiled model's own ``fit``."""
import contextlib
import inspect
from typing import Any, Iterator, List, Sequence

import numpy as np

from keras_lookahead import compat
from keras_lookahead._patch import Patch
from keras_lookahead.callback import _Callback
from keras_lookahead._validation import check_alpha, check_int, check_k, check_pullback

_ATTR = "_keras_lookahead"


class Lookahead:
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

    def __init__(self, k: int = 5, alpha: float = 0.5, pullback: str = "none") -> None:
        self.k = check_k(k)
        self.alpha = check_alpha(alpha)
        self.pullback = check_pullback(pullback)

    def __repr__(self):
        return f"Lookahead(k={self.k}, alpha={self.alpha}{self._pullback_repr()})"

    def _pullback_repr(self):
        return "" if self.pullback == "none" else f", pullback={self.pullback!r}"

    def _levels(self):
        """``((period, step size), ...)`` of each slow level, innermost first."""
        return ((self.k, self.alpha),)

    def inject(self, model: Any) -> Any:
        """Make ``model.fit`` (and ``train_on_batch``) train with Lookahead.

        Call after ``model.compile(...)``. The slow weights start from the trainable weights as
        they are when the first update after ``inject`` is applied, so weights loaded or set
        between ``inject`` and training (fine-tuning) are the anchor; a restored state (its
        counter > 0) keeps its slow weights. Non-trainable weights (BatchNorm statistics,
        frozen layers) are never copied nor touched. Injecting after an earlier ``fit`` is fine:
        the cached train function is rebuilt, and the optimizer keeps its state. ``compile``
        again later, with the same or a new optimizer, or a new ``model.optimizer`` assigned,
        keeps Lookahead and its state (counter and slow weights); weights that became trainable
        get a slow copy from their value at that ``compile``. The first ``fit`` epoch (or
        ``train_on_batch``) after ``inject`` checks that Lookahead counted the updates training
        applied, and raises if it did not (a ``train_step`` with optimizers of its own).
        Injecting twice is an error: call :func:`remove` first. If ``inject`` fails, the model
        is left as it was.

        Returns:
            ``model``.

        Raises:
            TypeError: ``model`` is not a Keras model, or its optimizer is not one of the
                model's Keras or cannot be hooked.
            ValueError: ``model`` is not compiled, not built, has no trainable weights, or is
                compiled with a ``LookaheadOptimizer`` (Lookahead is on already).
            RuntimeError: Lookahead is already injected into ``model``.
            keras_lookahead.UnsupportedVersionError: the model's Keras or TensorFlow version
                is not supported (the message lists the supported stacks).
        """
        adapter = compat.adapter_for(model)
        existing = vars(model).get(_ATTR)
        if existing is not None:
            raise RuntimeError(
                f"Lookahead is already injected into this model ({existing.lookahead!r}). To "
                "change it, call keras_lookahead.remove(model) first.")
        if not adapter.is_compiled(model):
            name = getattr(model, "name", model)
            raise ValueError(
                "`model` must be compiled before Lookahead is injected: call "
                f"model.compile(optimizer=..., loss=...) first. Received: model={name!r} "
                "(not compiled)")
        if not getattr(model, "built", True):
            name = getattr(model, "name", model)
            raise ValueError(
                "`model` is not built yet, so it has no weights for Lookahead to follow: "
                "build it first, by calling it on a batch of data (`model(x)`), with "
                "`model.build(input_shape)`, or by giving it an `Input`. Received: "
                f"model={name!r} (built=False)")
        if not adapter.trainable_weights(model):
            name = getattr(model, "name", model)
            raise ValueError(
                "`model` has no trainable weights, so Lookahead has nothing to do. "
                f"Received: model={name!r}")
        compat.check_optimizer(model, adapter.name)
        refuse_lookahead_optimizer(model.optimizer, injecting=True)
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

    def __init__(self, k: int = 5, alpha: float = 0.5, s: int = 5, h: float = 0.5,
                 pullback: str = "none") -> None:
        super().__init__(k, alpha, pullback)
        self.s = check_int(s, "s", minimum=0)
        self.h = check_alpha(h, "h")

    def __repr__(self):
        return (f"NestedLookahead(k={self.k}, alpha={self.alpha}, s={self.s}, h={self.h}"
                f"{self._pullback_repr()})")

    def _levels(self):
        if self.s == 0:
            return ((self.k, self.alpha),)
        return ((self.k, self.alpha), (self.k * self.s, self.h))


@contextlib.contextmanager
def slow_weights(model: Any, level: int = 0) -> Iterator[None]:
    """Put the slow weights into ``model`` for the ``with`` block, then the fast ones back.

    Between syncs the slow weights are the point Lookahead believes in; the paper and optax
    recommend evaluating, predicting or exporting them. On leaving the block the fast weights,
    the slow weights and the step counter are exactly as they were (bit for bit), so training can
    go on as if nothing happened. Before the first update the slow weights are the weights
    themselves (they are anchored when that update is applied), so the block changes nothing.

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
    if state is not None:
        adapter.attach_state(model)
    if state is None or not _anchored(adapter, state):
        # no update applied yet: the weights are the slow weights
        yield model
        return
    weights = adapter.trainable_weights(model)
    fast = adapter.get_values(weights)
    adapter.set_values(weights, adapter.get_values(state.slow_weights(weights, level)))
    try:
        yield model
    finally:
        adapter.set_values(weights, fast)


def _count(adapter, state):
    """The number of updates ``state`` counted (read from the device)."""
    return int(adapter.get_values([state.counter])[0])


def _anchored(adapter, state):
    """Whether ``state`` counted an update, so that its slow weights hold values."""
    return _count(adapter, state) != 0


def get_state(model: Any) -> List[np.ndarray]:
    """Lookahead's state in ``model`` (step counter, slow weights, cached momentum) as a list of
    numpy arrays, for saving where Keras does not save it: with ``inject`` on standalone Keras
    or in an HDF5 file. (TensorFlow checkpoints, Keras 3 weight files and ``LookaheadOptimizer``
    save it themselves; see the README's "Resume and scale".) While the counter is 0 the slow
    weights are not anchored yet, and their values mean nothing.

    Example:
        >>> np.savez("lookahead.npz", *keras_lookahead.get_state(model))
    """
    adapter, state, owner = _state_of(model)
    if state is None:
        raise ValueError(f"{owner!r} has applied no update yet: it has no state to get.")
    adapter.attach_state(model)
    return adapter.get_values(state.state_variables(adapter.trainable_weights(model)))


def set_state(model: Any, arrays: Sequence[np.ndarray]) -> None:
    """Restore what :func:`get_state` returned into a model with the same Lookahead (inject
    it, or compile with the same ``LookaheadOptimizer``, first).

    Example:
        >>> saved = np.load("lookahead.npz")
        >>> keras_lookahead.set_state(model, [saved["arr_%d" % i] for i in range(len(saved))])
    """
    adapter, state, owner = _state_of(model)
    if state is None:
        raise ValueError(f"{owner!r} has applied no update yet: set the state after its first "
                         "update, or use a checkpoint (README: Resume and scale).")
    adapter.attach_state(model)
    variables = state.state_variables(adapter.trainable_weights(model))
    arrays = list(arrays)
    current = adapter.get_values(variables)
    shapes, dtypes = [a.shape for a in current], [a.dtype.name for a in current]
    got = [np.asarray(a) for a in arrays]
    got_shapes, got_dtypes = [a.shape for a in got], [a.dtype.name for a in got]
    if got_shapes != shapes or got_dtypes != dtypes:
        raise ValueError("`arrays` must be what get_state returned for a model with the same "
                         f"weights and Lookahead: {len(shapes)} arrays of shapes {shapes} and "
                         f"dtypes {dtypes}. Received: {len(got)} arrays of shapes {got_shapes} "
                         f"and dtypes {got_dtypes}")
    adapter.set_values(variables, arrays)


def _state_of(model):
    """``(adapter, state, what holds it)`` of the Lookahead in ``model``: injected, or a
    ``LookaheadOptimizer`` (possibly inside a loss-scale optimizer) it is compiled with; the
    state is None for a tf.keras ``LookaheadOptimizer`` before its first update."""
    compat.check_model(model)
    injection = _injected(model)
    if injection is not None:
        return injection.adapter, injection.state, injection.lookahead
    wrapper = _lookahead_optimizer_in(getattr(model, "optimizer", None))
    if wrapper is not None:
        # None until a tf.keras LookaheadOptimizer applies its first update
        return compat.adapter_for(model), wrapper._lookahead, wrapper
    name = getattr(model, "name", model)
    raise ValueError("`model` has no Lookahead: neither injected nor a LookaheadOptimizer. "
                     f"Received: model={name!r}")


def _lookahead_optimizer_in(optimizer):
    """The ``LookaheadOptimizer`` that ``optimizer`` is or wraps (a loss-scale optimizer around
    it), or None."""
    while optimizer is not None:
        if hasattr(optimizer, "_lookahead"):
            return optimizer
        optimizer = (getattr(optimizer, "inner_optimizer", None)
                     or getattr(optimizer, "_optimizer", None))
    return None


def refuse_lookahead_optimizer(optimizer, injecting):
    """ValueError if ``optimizer`` is (or wraps) a ``LookaheadOptimizer``: with ``inject`` on
    top, every update would go through two Lookaheads."""
    wrapper = _lookahead_optimizer_in(optimizer)
    if wrapper is None:
        return
    if injecting:
        raise ValueError(
            f"`model` is compiled with a LookaheadOptimizer ({wrapper!r}), so Lookahead is on "
            "already: injecting would stack a second Lookahead on it. Use one of the two; for two "
            "slow levels use NestedLookahead(k, alpha, s, h).inject(model) on a model compiled "
            "with a plain optimizer.")
    raise ValueError(
        "`optimizer` must not be a LookaheadOptimizer on a model Lookahead is injected into: "
        "every update would go through two Lookaheads. Call keras_lookahead.remove(model) "
        "first to use the wrapper instead; for two slow levels use NestedLookahead(k, alpha, "
        f"s, h).inject(model). Received: optimizer={optimizer!r}")


def check_level(level, state, owner):
    """ValueError unless ``level`` names a slow level of ``state`` (None: an unbuilt
    LookaheadOptimizer, which has one)."""
    levels = 1 if state is None else len(state.levels)
    if isinstance(level, bool) or level not in range(levels):
        raise ValueError(f"`level` must be an integer in [0, {levels}) for {owner!r}. Received: "
                         f"level={level!r}")


def _injected(model):
    """The ``_Injection`` of ``model``, or None."""
    return vars(model).get(_ATTR) if hasattr(model, "__dict__") else None


def remove(model: Any) -> None:
    """Undo :meth:`Lookahead.inject`: ``fit`` trains with the bare optimizer again.

    The weights stay as they are (the fast weights). Raises TypeError if ``model`` is not a
    Keras model, ValueError if it has no Lookahead injected.
    """
    compat.check_model(model)
    injection = _injected(model)
    if injection is None:
        name = getattr(model, "name", model)
        raise ValueError(f"`model` has no Lookahead injected. Received: model={name!r}")
    injection.detach()


class _Injection:
    """What ``inject`` did to one model, so that it can be redone at ``compile`` and undone.

    Besides the optimizer's hook, it wraps four methods of the model instance:
    - ``compile``: hook the optimizer compile made (a new one, or a new loss-scale optimizer
      around the same one) and rebuild the train function;
    - ``fit`` / ``train_on_batch`` (and ``fit_generator`` where it exists): before training,
      hook ``model.optimizer`` again if it was replaced; and, until the hook has counted an
      update, check after the first epoch (or batch) that it did whenever the trainable
      weights changed (:class:`_Liveness`).
    """

    def __init__(self, lookahead, model, adapter):
        self.lookahead = lookahead
        self.model = model
        self.adapter = adapter
        self._optimizer = None
        self._optimizer_patch = None
        self._model_patches = []
        self.state = None
        self.liveness = _Liveness(self)
        try:
            self.state = adapter.create_state(model, lookahead._levels(), lookahead.pullback)
            self._hook_optimizer()
            self._model_patches.append(Patch(model, "compile", self._compile(model.compile)))
            for name in ("fit", "fit_generator"):
                if callable(getattr(model, name, None)):
                    self._model_patches.append(Patch(model, name, self._fit(getattr(model, name))))
            self._model_patches.append(
                Patch(model, "train_on_batch", self._train_on_batch(model.train_on_batch)))
            object.__setattr__(model, _ATTR, self)
        except BaseException:
            self._unpatch()
            raise
        adapter.reset_train_function(model)

    def _hook_optimizer(self):
        """Hook ``model.optimizer`` (again, if it is not the one hooked): the old hook is undone
        first, so that one on the same object (a new loss-scale optimizer around the same inner
        optimizer) is not undone by it; if the new hook fails, the old one is put back."""
        optimizer = self.model.optimizer
        compat.check_optimizer(self.model, self.adapter.name)
        refuse_lookahead_optimizer(optimizer, injecting=False)
        self.state.applied = None  # which weights are trained may have changed
        self.adapter.prepare(self.model, optimizer, self.state)
        if optimizer is self._optimizer:
            return
        old, self._optimizer_patch = self._optimizer_patch, None
        if old is not None:
            old.undo()
        try:
            patch = self.adapter.hook(optimizer, self.state)
        except BaseException:
            if old is not None:
                self._optimizer_patch = self.adapter.hook(self._optimizer, self.state)
            raise
        self._optimizer, self._optimizer_patch = optimizer, patch
        self.liveness.reset()

    def _compile(self, original):
        def compile(*args, **kwargs):
            refuse_lookahead_optimizer(_argument(original, args, kwargs, "optimizer"),
                                       injecting=False)
            result = original(*args, **kwargs)
            self._hook_optimizer()
            self.liveness.reset()
            self.adapter.reset_train_function(self.model)
            return result

        return compile

    def _before_training(self):
        if self.model.optimizer is not self._optimizer:
            # `model.optimizer = ...` after inject: Keras' train step calls the new one
            self._hook_optimizer()
            self.adapter.reset_train_function(self.model)

    def _fit(self, original):
        def fit(*args, **kwargs):
            self._before_training()
            if self.liveness.proven:
                return original(*args, **kwargs)
            args, kwargs = _with_callback(original, args, kwargs, _LivenessCallback(self.liveness))
            return original(*args, **kwargs)

        return fit

    def _train_on_batch(self, original):
        def train_on_batch(*args, **kwargs):
            self._before_training()
            self.liveness.start()
            result = original(*args, **kwargs)
            self.liveness.check("train_on_batch")
            return result

        return train_on_batch

    def _unpatch(self):
        for patch in reversed(self._model_patches + [self._optimizer_patch]):
            if patch is not None:
                patch.undo()
        self._model_patches, self._optimizer_patch, self._optimizer = [], None, None
        if self.state is not None:
            self.adapter.release(self.model, self.state)

    def detach(self):
        self._unpatch()
        object.__delattr__(self.model, _ATTR)
        self.adapter.reset_train_function(self.model)


def _bind(function, args, kwargs):
    """``function``'s parameters bound to ``(args, kwargs)``, or None if they do not bind."""
    try:
        return inspect.signature(function).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None


def _argument(function, args, kwargs, name):
    """The value ``function(*args, **kwargs)`` gets for parameter ``name`` (None if none)."""
    bound = _bind(function, args, kwargs)
    return kwargs.get(name) if bound is None else bound.arguments.get(name)


def _with_callback(function, args, kwargs, callback):
    """``(args, kwargs)`` for ``function`` (a ``fit``) with ``callback`` added to its
    ``callbacks``; unchanged if it takes none."""
    bound = _bind(function, args, kwargs)
    if bound is None or "callbacks" not in bound.signature.parameters:
        return args, kwargs
    callbacks = bound.arguments.get("callbacks")
    bound.arguments["callbacks"] = list(callbacks or []) + [callback]
    return bound.args, bound.kwargs


class _Liveness:
    """Tells a hook that never runs from one that does, at the cost of one read of the counter
    (and a per-weight checksum of the trainable weights) per ``fit`` or ``train_on_batch``
    until the hook has counted an update, and nothing after that.

    ``start`` notes the counter and the checksum; ``check`` (after the first epoch, or the
    batch) passes if the counter moved, and raises if it did not while the trainable weights
    changed: training applied updates that did not go through the hooked optimizer. The
    weights do not change without an update being counted when training applied none (a
    loss-scale optimizer skipping non-finite steps, gradient accumulation between updates).
    """

    def __init__(self, injection):
        self.injection = injection
        self.proven = False
        self._start = None

    def reset(self):
        """A new hook (inject, compile, a new optimizer): it must show itself live again."""
        self.proven = False
        self._start = None

    def _read(self):
        injection = self.injection
        injection.adapter.attach_state(injection.model)
        return _count(injection.adapter, injection.state)

    def _checksum(self):
        injection = self.injection
        return injection.adapter.checksum(injection.adapter.trainable_weights(injection.model))

    def start(self):
        if not self.proven:
            self._start = (self._read(), self._checksum())

    def check(self, where):
        if self.proven or self._start is None:
            return
        count, checksum = self._start
        self._start = None
        if self._read() != count:
            self.proven = True
            return
        changed = self._checksum()
        if len(changed) == len(checksum) and np.array_equal(changed, checksum):
            return  # no update applied yet: nothing to tell
        injection = self.injection
        raise RuntimeError(
            f"Lookahead is injected into this model, but {where} changed its trainable weights "
            f"without going through the hooked optimizer ({injection._optimizer!r}): Lookahead "
            "counted no update and took no step. This happens when a custom train_step applies "
            "gradients with optimizers of its own (such as a GAN's d_optimizer and g_optimizer). "
            "Wrap each of those optimizers in keras_lookahead.LookaheadOptimizer instead, after "
            "keras_lookahead.remove(model).")


class _LivenessCallback(_Callback):
    """``fit``'s side of :class:`_Liveness`: start when training begins, check after the first
    epoch (and when training ends, for a fit stopped inside its first epoch)."""

    def __init__(self, liveness):
        _Callback.__init__(self)
        self.liveness = liveness

    # no per-batch work: tf.keras skips its batch hooks (and their host round trips), and Keras 3
    # may dispatch batch callbacks asynchronously with it in the list
    async_safe = True

    def _implements_train_batch_hooks(self):
        return False

    def on_train_begin(self, logs=None):
        self.liveness.start()

    def on_epoch_end(self, epoch, logs=None):
        self.liveness.check("the first fit epoch")

    def on_train_end(self, logs=None):
        self.liveness.check("fit")
