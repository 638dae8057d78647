"""Lookahead's state, and the hooks of the Kerases that run on TensorFlow.

The state is an int64 step counter and one slow copy per trainable weight, all plain
``tf.Variable``s that no Keras object tracks (they are not model weights and never trainable).
Before each inner update, a ``tf.cond`` on ``counter == 0`` copies the weights into the slow
ones (the anchor: the weights as they are when the first update is applied); after it, the
counter is incremented in the graph, and a ``tf.cond`` runs the sync only when the counter ends
a period. Other steps evaluate two predicates and do no other work, and nothing goes back to the
host. The branches themselves, shared with Keras 3 on TensorFlow, are in ``_tf_sync.py``; the
version-specific part, which optimizer method to wrap, is in the adapters.
"""
import tensorflow as tf

from keras_lookahead import _rule
from keras_lookahead.compat import _momentum
from keras_lookahead.compat._slots import SlotTable
from keras_lookahead.compat._tf_sync import Reach, copy_branch, run_ordered, sync_levels_branch


class TFState(SlotTable):
    """Counter and slow weights of one injected model or one ``LookaheadOptimizer``.

    Args:
        levels: ``((period, step_size), ...)``: ``((k, alpha),)`` for Lookahead, one more level
            for nested Lookahead (already validated).
        weights: the trainable weights at attach time. Their slow copies start at zero and
            are anchored in the graph at the first update (:meth:`anchor_before`): nothing
            reads the weights when the variables are made (a TF1-style graph initialises
            them all at once, loaded weights possibly after).
        store: what makes the variables: an object with ``counter(like)`` and
            ``slows(weights, levels, copy)`` (one list of copies per weight; ``copy``: from
            the weights' values, else zeros). Default: plain variables no Keras object tracks
            (:class:`OwnVariables`).
    """

    def __init__(self, levels, weights, store, pullback="none"):
        self.levels = tuple(levels)
        self.pullback = pullback
        # pullback: weight -> the inner optimizer's momentum of it (momentum_lookup), set by
        # whoever knows the optimizer; read when the sync is built, after the inner update
        self.momentum_of = None
        self._store = store
        self._compiled = {}
        self._reach = Reach()
        self._cached = {}  # pullback="pullback": id(weight) -> its cached momentum
        SlotTable.__init__(self)
        self.counter = store.counter(weights[0])
        self._add(weights, copy=False)

    def prepare(self, weights):
        """Give every weight in ``weights`` that has none a slow copy, taken from its current
        value (a weight that became trainable after training started)."""
        self._add(weights, copy=True)

    def _add(self, weights, copy):
        missing = []
        for w in weights:
            if id(w) not in self._slots and all(m is not w for m in missing):
                missing.append(w)
        if missing:
            for w, slows in zip(missing, self._store.slows(missing, len(self.levels), copy)):
                self._slots[id(w)] = (w, list(slows))
            if self.pullback == "pullback":
                for w, cached in zip(missing, self._store.cached(missing)):
                    self._cached[id(w)] = cached

    def copies(self, weight):
        return SlotTable.copies(self, weight) + (
            [self._cached[id(weight)]] if self.pullback == "pullback" else [])

    def anchor_before(self, weights):
        """While no update has been counted (counter 0), copy ``weights`` into every slow
        level: called before the inner update, so that the slow weights start from the weights
        as that first update finds them (weights loaded or set after attaching are the anchor).
        A restored state (counter > 0) is left alone. Returns a bool tensor: anchored or not;
        the inner update must run after it (a control dependency in a TF1-style graph)."""
        return _once_per_step(lambda: self._anchor(weights))

    def _anchor(self, weights):
        pairs = self.anchor_pairs(weights)
        return tf.cond(tf.equal(self.counter, 0),
                       copy_branch(self._reach, self._compiled, [s for s, _ in pairs],
                                   [w for _, w in pairs]),
                       lambda: tf.constant(False))

    def sync_after(self, deps, weights):
        """Count one applied update once ``deps`` have run; on the last step of a period move
        the slow weights and reset ``weights`` to them. Returns a bool tensor: synced or not.

        Under a tf.distribute strategy this runs once per step, not once per replica: in the
        cross-replica context (``merge_call``), where assigning a mirrored variable writes
        every replica's copy (the way optimizers apply their updates)."""
        return _once_per_step(lambda: self._sync_after(deps, weights))

    def _sync_after(self, deps, weights):
        slow_levels = [self.slow_weights(weights, level) for level in range(len(self.levels))]
        with tf.control_dependencies([d for d in deps if d is not None]):
            count = self.counter.assign_add(1)
        syncs = [_rule.is_sync_step(count, period, equal=tf.equal) for period, _ in self.levels]

        momentum = cached = []
        if self.pullback != "none":
            momentum = [self.momentum_of(w) for w in weights]
            if self.pullback == "pullback":
                cached = [self._cached[id(w)] for w in weights]

        branch = sync_levels_branch(self._reach, self._compiled, weights, slow_levels,
                                    [step for _, step in self.levels], syncs, momentum, cached,
                                    self.pullback)
        return tf.cond(syncs[0], branch, lambda: tf.constant(False))


class OwnVariables:
    """Lookahead's variables as plain ``tf.Variable``s that belong to no Keras object
    (``inject``): not model weights, not optimizer weights. In a TF1-style graph they are
    initialised at once with ``run_initializers(ops)`` (the model's session).

    ``checkpointable`` holds them all (``counter``; ``slow`` and ``cached``, in creation order),
    for the adapter to make a checkpoint dependency of the model: TensorFlow's object-based
    checkpoints (``save_weights`` in the TF format, ``tf.train.Checkpoint``,
    ``BackupAndRestore``) then save and restore them with the model."""

    def __init__(self, run_initializers, strategy=None):
        self._run_initializers = run_initializers
        # the model's tf.distribute strategy: variables made in its scope are mirrored on each
        # replica's device, like the weights they copy
        self._strategy = strategy
        self.checkpointable = tf.Module(name="keras_lookahead")
        self.checkpointable.slow = []
        self.checkpointable.cached = []

    def _create(self, makers, like):
        """Create variables in the graph of ``like`` and initialise them now."""
        if tf.executing_eagerly():
            if self._strategy is None or tf.distribute.has_strategy():
                return [make() for make in makers]
            with self._strategy.scope():
                return [make() for make in makers]
        with like.graph.as_default():
            created = [make() for make in makers]
        self._run_initializers([v.initializer for v in created])
        for v in created:
            v._keras_initialized = True  # standalone Keras would otherwise re-check them
        return created

    def counter(self, like):
        counter = self._create([lambda: tf.Variable(
            0, dtype=tf.int64, trainable=False, name="lookahead/counter")], like)[0]
        self.checkpointable.counter = counter
        return counter

    def slows(self, weights, levels, copy):
        def maker(w, level):
            suffix, base = level or "", w.name.split(":")[0]
            return lambda: tf.Variable(_initial_slow(w, copy), trainable=False,
                                       name=f"lookahead/slow{suffix}/{base}")

        made = self._create([maker(w, level) for w in weights for level in range(levels)],
                            weights[0])
        self.checkpointable.slow.extend(made)
        return [made[i * levels:(i + 1) * levels] for i in range(len(weights))]

    def cached(self, weights):
        made = self._create([lambda w=w: tf.Variable(
            tf.zeros_like(w.read_value()), trainable=False,
            name="lookahead/cached_momentum/" + w.name.split(":")[0]) for w in weights],
            weights[0])
        self.checkpointable.cached.extend(made)
        return made


def _once_per_step(build):
    """``build()``, once per step: under a tf.distribute strategy, in the cross-replica context
    (``merge_call``), where assigning a mirrored variable writes every replica's copy, as
    optimizers apply their updates; elsewhere directly."""
    if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
        return tf.distribute.get_replica_context().merge_call(lambda _: build())
    return build()


def _initial_slow(weight, copy):
    """A slow copy's initial value: the weight's (``copy``) or zeros of its shape and dtype."""
    if copy:
        return weight.read_value()
    return tf.zeros(weight.shape, dtype=weight.dtype.base_dtype)


def momentum_lookup(optimizer, pullback):
    """``weight -> its momentum variable`` in ``optimizer`` (looked up when called, so after the
    optimizer made its slots); ValueError now if it keeps no momentum-like state this code can
    reach (``_momentum.MOMENTUM``)."""
    new = hasattr(optimizer, "add_variable_from_reference")  # the 2.11+ optimizers
    row = _momentum.entry(optimizer)
    if row is None:
        raise _momentum.no_momentum(optimizer, pullback, "tf_attribute" if new else "slot")
    if row.tf_attribute is not None and new:
        attribute = row.tf_attribute
        return lambda w: getattr(optimizer, attribute)[
            optimizer._index_dict[optimizer._var_key(w)]]
    if row.slot is not None and callable(getattr(optimizer, "get_slot", None)):
        slot = row.slot
        return lambda w: optimizer.get_slot(w, slot)
    kind = type(optimizer)
    raise ValueError(
        f"`pullback={pullback!r}` needs the inner optimizer's momentum, which {kind.__name__} "
        f"({kind.__module__}) builds out of reach inside get_updates. Use pullback=\"none\" "
        f"here, or a tf.keras optimizer. Received: pullback={pullback!r}")


def apply_gradients_hook(original, state):
    """Wrap an ``apply_gradients(grads_and_vars, ...)`` (Keras OptimizerV2 or ``tf.train``)."""

    def apply_gradients(grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        weights = [v for _, v in grads_and_vars]
        state.check_applied(weights)
        applied, updates = run_ordered(lambda: original(grads_and_vars, *args, **kwargs),
                                       state.anchor_before(weights))
        synced = state.sync_after([applied] + updates, weights)
        if tf.executing_eagerly():
            return applied
        return tf.group(*[t for t in (applied, synced) if t is not None])

    return apply_gradients


def get_updates_hook(original, state, restore=None):
    """Wrap a Keras 2 ``get_updates(loss, params)`` that returns a list of update ops.

    ``restore()``, if given, is called once, after the first rebuild: Keras 2 optimizers make
    their state (momentum, Adam's moments) anew in every ``get_updates``, and the adapter puts
    back the values the optimizer had when it was hooked."""
    pending = [restore]

    def get_updates(loss, params):
        state.check_applied(params)
        updates, _ = run_ordered(
            lambda: [tf.compat.v1.assign(*u) if isinstance(u, tuple) else u
                     for u in original(loss=loss, params=params)],
            state.anchor_before(params))
        if pending[0] is not None:
            pending.pop()()
            pending.append(None)
        return updates + [state.sync_after(updates, params)]

    return get_updates
