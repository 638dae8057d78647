"""Adapter for Keras 3, on the tensorflow, jax and torch backends.

Every Keras 3 trainer updates weights through ``optimizer.apply`` (TF and torch ``train_step``
call it; JAX's stateless ``train_step`` calls ``optimizer.stateless_apply``, which runs ``apply``
inside a ``StatelessScope``), so the hook wraps the instance's ``apply``. Lookahead's counter and
slow weights are variables of that optimizer (``add_variable``), so that JAX threads them through
its jitted state like the optimizer's own; plain ``keras.Variable``s would silently stay at their
initial values there (``docs/design.md``, section 5). A loss-scale optimizer calls its inner
optimizer only when the gradients are finite, so the inner one is hooked and a skipped step is
not counted; with ``gradient_accumulation_steps`` only the calls that apply the accumulated
update count.

The sync runs only on sync steps where the backend has a real branch: ``tf.cond`` on TensorFlow
and a Python ``if`` on torch (eager). JAX under ``jit`` cannot assign inside a branch, so there
the anchor and the sync are the body of a loop that runs at most once (:func:`_run_if`) and
returns the new values, assigned after it.
"""
import contextlib

import numpy as np

import keras
from keras import ops

from keras_lookahead import _rule
from keras_lookahead.compat import _momentum, _slots
from keras_lookahead.compat._slots import SlotTable, pieces
from keras_lookahead.compat._adapter import Adapter
from keras_lookahead._patch import Patch


def _copy(variable):
    """A numpy copy: assigning a weight's own buffer to another variable aliases it under JAX."""
    return np.array(ops.convert_to_numpy(variable))


def _constant(value):
    def initializer(shape, dtype=None):
        return value

    return initializer


def _eager_scope():
    """Where variables can be read to numpy even while a train step is being traced (an
    optimizer may be built inside it): TensorFlow's init_scope; other backends are eager."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        return tf.init_scope()
    return contextlib.nullcontext()


def _strategy_scope(optimizer):
    """On TensorFlow, the scope of the tf.distribute strategy the optimizer was made under: its
    variables (and so Lookahead's) must be made there, mirrored like the weights."""
    strategy = getattr(optimizer, "_distribution_strategy", None)
    if strategy is None:
        return contextlib.nullcontext()
    import tensorflow as tf
    return contextlib.nullcontext() if tf.distribute.has_strategy() else strategy.scope()


def _concrete(value):
    """Whether ``value`` is known now, not traced: JAX outside ``jit`` (``run_eagerly``)."""
    if keras.backend.backend() != "jax":
        return False
    import jax
    return not isinstance(value, jax.core.Tracer)


def _cond(pred, true_fn, false_fn):
    """``ops.cond``, or a plain Python branch where ``pred`` is concrete (JAX outside ``jit``,
    where ``lax.cond`` would trace both branches on every call)."""
    if _concrete(pred):
        return true_fn() if bool(pred) else false_fn()
    return ops.cond(pred, true_fn, false_fn)


def _nbytes(variable):
    try:
        itemsize = np.dtype(variable.dtype).itemsize
    except TypeError:  # bfloat16 and the like: no numpy dtype
        itemsize = 2 if "16" in str(variable.dtype) else 4
    return int(np.prod(variable.shape)) * itemsize


def _values(variables):
    """The backend variables under Keras variables (None entries left out)."""
    return [v.value for v in variables if v is not None]


def _innermost(optimizer):
    inner = getattr(optimizer, "inner_optimizer", None)
    return optimizer if inner is None else _innermost(inner)


class _Copies:
    """Per weight, the variables a sync reads and writes: the weight, its slow copy per level,
    and with pullback its momentum and cached momentum (None where there is none)."""

    def __init__(self, weights, slow_levels, momentum, cached, steps, pullback):
        self.weights, self.slow_levels = weights, slow_levels
        self.momentum, self.cached = momentum, cached
        self.steps, self.pullback = steps, pullback
        self.width = len(self.group(0)) if weights else 0

    def group(self, i):
        """Weight i's variables, in the order :meth:`synced` gives their values."""
        return ([self.weights[i]] + [slows[i] for slows in self.slow_levels]
                + [v for v in (self.momentum[i], self.cached[i]) if v is not None])

    def synced(self, indices, syncs):
        """New values of the groups of ``indices``, in order (``_rule``'s arithmetic)."""
        new_fast, new_levels = _rule.synced_values(
            [self.weights[i].value for i in indices],
            [[slows[i].value for i in indices] for slows in self.slow_levels], self.steps,
            syncs, _cond)
        new_momentum, new_cached = [], []
        if self.pullback != "none":
            new_momentum, new_cached = _rule.momentum_after_sync(
                [self.momentum[i].value for i in indices],
                [self.cached[i].value for i in indices if self.cached[i] is not None],
                self.steps[0], self.pullback, ops.zeros_like)
        new = []
        for j in range(len(indices)):
            new += [new_fast[j]] + [values[j] for values in new_levels]
            new += [m[j] for m in (new_momentum, new_cached) if m]
        return new


class Keras3State(SlotTable):
    """Counter and slow weights, held as variables of the optimizer that applies updates.

    The slow weights are anchored in the graph: before an update, while the counter is 0, they
    take the weights' values (``anchor_before``), so they start from the weights as the first
    update finds them. Until then they hold zeros (or, after a move to another optimizer, the
    values they had), never a constant taken from the weights."""

    def __init__(self, levels, pullback="none"):
        self.levels = tuple(levels)
        self.pullback = pullback
        self._select_values = keras.backend.backend() == "jax"
        self.optimizer = None
        self.counter = None
        self._momentum = None  # the inner optimizer's momentum of a weight (pullback)
        self._compiled = {}  # TensorFlow: the XLA-compiled anchor and sync, per list of weights
        self._jitted = {}  # JAX outside jit: the sync as one jitted function
        self._tf_sync = None
        if keras.backend.backend() == "tensorflow":
            from keras_lookahead.compat import _tf_sync
            self._tf_sync, self._reach = _tf_sync, _tf_sync.Reach()
        SlotTable.__init__(self)
        # While no optimizer holds the state (it moved): per weight, the values of its copies.
        self._pending = {}
        self._count = 0

    def _initial(self, weight, count):
        """A new weight's copies, as initializers: zeros while the counter is 0 (the anchor
        will fill them); later (a weight that became trainable mid-training) its value now.
        With pullback="pullback" one more copy, the cached momentum, starts at zero."""
        extra = ["zeros"] if self.pullback == "pullback" else []
        if count == 0:
            return ["zeros"] * len(self.levels) + extra
        return [_constant(_copy(weight))] * len(self.levels) + extra

    def prepare(self, optimizer, weights):
        """Hold the state in ``optimizer`` (built on ``weights`` if it is not yet), or in the
        innermost optimizer it wraps."""
        if _innermost(optimizer) is self.optimizer:
            return
        with _strategy_scope(optimizer):
            if not optimizer.built:
                optimizer.build(weights)
            self.release()
            self.hold_in(_innermost(optimizer), weights, _innermost(optimizer))

    def hold_in(self, target, weights, inner):
        """Create the counter and the slow weights as variables of the optimizer ``target``,
        from the pending values (or, for a weight without any, :meth:`_initial`). ``inner`` is
        the (built) optimizer whose momentum pullback acts on."""
        if self.pullback != "none":
            self._momentum = momentum_variables(inner, self.pullback)
        values, count = self._pending, self._count
        # Pending values are constants, taken now: TensorFlow lifts constant initializers out
        # of a traced (even XLA-compiled) train step, where the optimizer may be built.
        with _eager_scope():
            initial = [[_constant(v) for v in values[id(w)][1]] if id(w) in values
                       else self._initial(w, count) for w in weights]
        self.counter = target.add_variable(
            shape=(), dtype=target.iterations.dtype, name="lookahead_counter",
            initializer=keras.initializers.Constant(count))
        names = [f"lookahead_slow{level or ''}" for level in range(len(self.levels))]
        names += ["lookahead_cached_momentum"]
        for w, copies in zip(weights, initial):
            self._slots[id(w)] = (w, [
                target.add_variable_from_reference(w, name=name, initializer=initializer)
                for name, initializer in zip(names, copies)])
        self.optimizer, self._pending = target, {}

    def release(self):
        """Take the state's variables out of the optimizer holding them."""
        if self.optimizer is None:
            return
        self._count = int(ops.convert_to_numpy(self.counter))
        self._pending = {key: (w, [_copy(s) for s in slows])
                         for key, (w, slows) in self._slots.items()}
        for v in [self.counter] + [s for _, slows in self._slots.values() for s in slows]:
            _untrack(self.optimizer, v)
        self.optimizer, self.counter, self._slots = None, None, {}
        # what was built on those variables (packed handles, compiled branches) goes with them
        self._compiled, self._jitted = {}, {}
        if self._tf_sync is not None:
            self._reach = self._tf_sync.Reach()

    def apply(self, weights, run, applied):
        """One hooked update of ``weights``: the anchor, ``run()`` (the inner update), then
        counting it (if ``applied()``, called after ``run``, says so) and the sync. Returns
        what ``run`` returns."""
        before = self.anchor_before(weights)
        if self._tf_sync is not None:
            result, updates = self._tf_sync.run_ordered(run, before)
        else:
            result, updates = run(), []
        self.sync_after(applied(), weights, before, updates)
        return result

    def anchor_before(self, weights):
        """Before an update: while the counter is 0, anchor the slow weights of every level at
        ``weights``. On TensorFlow returns the anchor's bool tensor, which the update must
        follow; elsewhere None."""
        self.check_applied(weights)
        first = ops.equal(self.counter, 0)
        pairs = self.anchor_pairs(weights)
        if self._select_values:
            self._select_anchor(first, pairs)
            return None
        if self._tf_sync is not None:
            import tensorflow as tf
            return tf.cond(first, self._tf_sync.copy_branch(
                self._reach, self._compiled, [s.value for s, _ in pairs],
                [w.value for _, w in pairs]), lambda: tf.constant(False))

        def anchor():
            for s, w in pairs:
                s.assign(w.value)

        ops.cond(first, anchor, lambda: None)
        return None

    def sync_after(self, applied, weights, before=None, updates=()):
        """Count one update (if ``applied``, a bool tensor, says so: None means it was); on the
        last step of a period, sync. ``before`` is what :meth:`anchor_before` returned;
        ``updates`` (TensorFlow) the ops of the inner update, which the count follows. The
        sync takes one of the backend's strategies: values selected after it (JAX), one
        compiled branch (TensorFlow, ``_tf_sync``), a fused one (``_FUSED_SYNC``), or the
        generic one in pieces."""
        syncs = self._count_update(applied, updates)
        copies = self._copies(weights)
        if self._select_values:
            self._select_sync(syncs, copies)
            return
        if self._tf_sync is not None:
            import tensorflow as tf
            tf.cond(syncs[0], self._tf_sync.sync_levels_branch(
                self._reach, self._compiled, _values(weights),
                [_values(slows) for slows in copies.slow_levels], copies.steps, syncs,
                _values(copies.momentum), _values(copies.cached), self.pullback),
                lambda: tf.constant(False))
            return
        fused = _FUSED_SYNC.get(keras.backend.backend()) if self.pullback == "none" else None
        if fused is not None:
            ops.cond(syncs[0], fused(weights, copies.slow_levels, copies.steps, syncs),
                     lambda: None)
            return
        self._sync_in_pieces(syncs, copies)

    def _count_update(self, applied, updates):
        """Add the update to the counter (after ``updates``, on TensorFlow); per level, the bool
        tensor of whether it syncs now."""
        if applied is None:
            count = self.counter + 1
        else:
            count = self.counter + ops.cast(applied, self.counter.dtype)
        if updates:
            import tensorflow as tf
            with tf.control_dependencies(updates):
                count = tf.identity(count)
        self.counter.assign(count)
        syncs = [_rule.is_sync_step(count, period, equal=ops.equal) for period, _ in self.levels]
        if applied is not None:
            syncs = [ops.logical_and(applied, sync) for sync in syncs]
        return syncs

    def _copies(self, weights):
        """The variables a sync of ``weights`` reads and writes (:class:`_Copies`)."""
        levels = len(self.levels)
        momentum = cached = [None] * len(weights)
        if self.pullback != "none":
            momentum = [self._momentum(w) for w in weights]
            if self.pullback == "pullback":
                cached = [self.slow(w, levels) for w in weights]
        return _Copies(weights, [self.slow_weights(weights, level) for level in range(levels)],
                       momentum, cached, [step for _, step in self.levels], self.pullback)

    def _sync_in_pieces(self, syncs, copies):
        """The generic sync: a ``cond`` whose branch assigns the new values piece by piece (the
        new values are new buffers: one piece's are alive at a time)."""
        chunks = list(pieces([copies.width * _nbytes(w) for w in copies.weights],
                             _slots.PIECE_BYTES))

        def sync():
            for indices in chunks:
                variables = [v for i in indices for v in copies.group(i)]
                for v, value in zip(variables, copies.synced(indices, syncs)):
                    v.assign(value)

        ops.cond(syncs[0], sync, lambda: None)

    def _select_sync(self, syncs, copies):
        """JAX: no assignment inside a branch, so the sync computes values, assigned after it.
        Under jit the sync is the body of loops that run at most once (:func:`_run_if`), one
        per piece of the model; outside jit (``run_eagerly``) it is one jitted call."""
        sync = syncs[0]
        groups = [copies.group(i) for i in range(len(copies.weights))]

        def synced(indices):
            return copies.synced(indices, syncs)

        if _concrete(sync):
            if bool(sync):
                flat = [v for g in groups for v in g]
                for v, value in zip(flat, self._eager_sync(syncs, flat, synced, len(groups))):
                    v.assign(value)
            return
        # one loop per piece of at most _LOOP_BYTES: XLA allots a loop's body temporaries for
        # a few of its weights at once (one loop over 50M weights: +62 MB over the bare step,
        # 0.3x the weights; one loop per weight: none; measured: docs/design.md)
        for indices in pieces([len(groups[0]) * _nbytes(g[0]) for g in groups], _LOOP_BYTES):
            part = [v for i in indices for v in groups[i]]
            new = _run_if(sync, part, lambda indices=indices: synced(indices))
            for v, value in zip(part, new):
                v.assign(value)

    def _eager_sync(self, syncs, flat, synced, n):
        """``synced(range(n))`` as one jitted call of the variables' values (made once per
        variables and sync pattern): no per-variable dispatch from Python."""
        import jax
        key = tuple(id(v) for v in flat) + tuple(bool(s) for s in syncs)
        compiled = self._jitted.get(key)
        if compiled is None:
            def pure(values):
                with keras.StatelessScope(state_mapping=list(zip(flat, values))):
                    return synced(range(n))

            compiled = self._jitted[key] = jax.jit(pure)
        return compiled([v.value for v in flat])

    def _select_anchor(self, first, pairs):
        """JAX: the anchor as values, before the update (so that the update still writes the
        weights in place): while ``counter == 0`` the slow weights take the weights' values."""
        if _concrete(first) and not bool(first):
            return
        slows = [s for s, _ in pairs]
        values = [w.value for _, w in pairs]  # read here: the loop's scope maps the slows only
        new = values if _concrete(first) else _run_if(first, slows, lambda: values)
        for s, value in zip(slows, new):
            s.assign(value)


def _untrack(optimizer, variable):
    """Take ``variable`` out of ``optimizer.variables``. Keras 3.0 - 3.2 have no
    ``_untrack_variable``; their optimizers never lock the tracker, so untracking there is the
    tracker's own ``untrack``."""
    untrack = getattr(optimizer, "_untrack_variable", None)
    if untrack is not None:
        untrack(variable)
    else:
        optimizer._tracker.untrack(variable)


def _raw_iterations(optimizer):
    """The optimizer's count of ``apply`` calls: ``_iterations`` from Keras 3.5 (where
    ``iterations`` counts applied updates under gradient accumulation), ``iterations`` before
    (which counted every call)."""
    raw = getattr(optimizer, "_iterations", None)
    return optimizer.iterations if raw is None else raw


_LOOP_BYTES = 1 << 22  # 4 MiB: the weights of one sync loop on JAX (:meth:`_select_sync`)


def _run_if(pred, variables, compute):
    """Under JAX's jit: the values of ``variables`` after ``compute()`` (new values for them,
    reading them) if ``pred``, else as they are. A ``lax.while_loop`` whose body runs at most
    once, not a ``lax.cond``: XLA updates a loop's carried buffers in place, where a cond copies
    every value it passes through on the steps it does not change them (302 weights of 48x48,
    jitted with donation: +0.23 ms a step with a cond per weight, +0.04 with the loop, against
    0.80 ms bare, measured; ``docs/design.md``, section 2). ``compute`` reads the variables
    inside the body through a ``StatelessScope`` over the carried values (a variable it reads
    must be among ``variables``: the scope does not see the train step's own)."""
    import jax

    def body(state):
        _, values = state
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            new = compute()
        return ops.zeros_like(state[0]), [ops.cast(n, v.dtype) for n, v in zip(new, values)]

    _, out = jax.lax.while_loop(lambda state: state[0], body,
                                (pred, [v.value for v in variables]))
    return out


def _torch_sync(weights, slow_levels, steps, syncs):
    """In place, in multi-tensor passes, ``_rule.synced_values`` for any number of levels:
    ``slow.lerp_(below, step)`` is ``_rule.interpolate`` (up to rounding; exact at 0 and 1) for
    level 0 and each level above that syncs now, then the fast weights and the levels below the
    highest that synced copy it. Each weight and slow copy is read and written at most twice,
    and nothing is allocated; the generic form makes a temporary per variable of a piece
    (NestedLookahead: +2.2x the weights at the peak of a sync, measured with the profiler's
    memory timeline)."""
    import torch

    def sync():
        with torch.no_grad():
            fast = [w.value for w in weights]
            levels = [[s.value for s in slows] for slows in slow_levels]
            below, top = fast, 0
            for level, (slow, step) in enumerate(zip(levels, steps)):
                if level and not bool(syncs[level]):
                    break
                torch._foreach_lerp_(slow, below, step)
                below, top = slow, level
            for lower in [fast] + levels[:top]:
                torch._foreach_copy_(lower, levels[top])

    return sync


_FUSED_SYNC = {"torch": _torch_sync}


def momentum_variables(optimizer, pullback):
    """``weight -> its momentum variable`` in the built ``optimizer``; ValueError if it keeps
    no momentum-like state (``_momentum.MOMENTUM``; an optimizer of another class: any list
    under one of the names Keras 3's own optimizers use)."""
    row = _momentum.entry(optimizer, read_config=False)
    if row is not None and row.keras3_attribute is not None:
        names = [row.keras3_attribute]
    else:
        names = sorted(set(r.keras3_attribute for r in _momentum.MOMENTUM.values()
                           if r.keras3_attribute is not None))
    for attribute in names:
        slots = getattr(optimizer, attribute, None)
        if slots:
            return lambda weight: slots[optimizer._get_variable_index(weight)]
    raise _momentum.no_momentum(optimizer, pullback, "keras3_attribute")


def update_applied(optimizer):
    """Called right after ``optimizer.apply``: whether it applied an update. None when every
    call does; with ``gradient_accumulation_steps = n``, a bool tensor, true on every n-th call
    (the raw call counter, already incremented, is a multiple of n). Read after
    the call only: a value read before it can alias the live counter under ``torch.compile``."""
    n = optimizer.gradient_accumulation_steps
    if not n:
        return None
    return ops.equal(ops.mod(_raw_iterations(optimizer), n), 0)


def _apply_hook(original, optimizer, state):
    def apply(grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return original(grads, trainable_variables)
        weights = (optimizer._trainable_variables if trainable_variables is None
                   else list(trainable_variables))
        return state.apply(weights, lambda: original(grads, trainable_variables),
                           lambda: update_applied(optimizer))

    return apply


class Keras3Adapter(Adapter):
    """Keras 3 on any backend (``_adapter.Adapter``)."""

    def is_compiled(self, model):
        return getattr(model, "optimizer", None) is not None and getattr(model, "compiled", True)

    def trainable_weights(self, model):
        return list(model.trainable_variables)

    def attach_state(self, model):
        """Mid-``fit``, JAX keeps the state outside the model's variables: put it back, so that
        they can be read and written (the next step then starts from them)."""
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def steps_per_execution(self, model):
        return int(getattr(model, "steps_per_execution", 1) or 1)

    def create_state(self, model, levels, pullback="none"):
        return Keras3State(levels, pullback)

    def prepare(self, model, optimizer, state):
        state.prepare(optimizer, self.trainable_weights(model))

    def hook(self, optimizer, state):
        target = _innermost(optimizer)
        return Patch(target, "apply", _apply_hook(target.apply, target, state))

    def release(self, model, state):
        state.release()

    def checksum(self, weights):
        """Per weight, the sum of its squares, computed where the weights live: what tells
        whether training changed them, with one small read (the liveness check of inject)."""
        sums = [ops.sum(ops.square(ops.cast(w, "float32"))) for w in weights]
        return _copy(ops.stop_gradient(ops.stack(sums)))

    def get_values(self, variables):
        return [_copy(v) for v in variables]

    def set_values(self, variables, values):
        for v, value in zip(variables, values):
            v.assign(value)

    def reset_train_function(self, model):
        model.train_function = None
