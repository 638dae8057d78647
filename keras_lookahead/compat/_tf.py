"""Lookahead's state and in-graph sync, for every Keras that runs on TensorFlow.

The state is an int64 step counter and one slow copy per trainable weight, all plain
``tf.Variable``s that no Keras object tracks (they are not model weights and never trainable).
After each applied inner update the counter is incremented in the graph, and a ``tf.cond`` runs
the sync only when the counter ends a period, so other steps do no extra work and nothing goes
back to the host. The version-specific part, which optimizer method to wrap, is in the adapters.
"""
import tensorflow as tf

from keras_lookahead import _rule


class TFState(object):
    """Counter and slow weights of one injected model.

    Args:
        k, alpha: the Lookahead hyper-parameters (already validated).
        weights: the trainable weights at attach time; their current values become the slow
            weights.
        run_initializers: callable that runs a list of initializer ops in the model's session
            (graph mode only).
    """

    def __init__(self, k, alpha, weights, run_initializers):
        self.k = k
        self.alpha = alpha
        self._run_initializers = run_initializers
        self._slots = {}
        self.counter = self._create([lambda: tf.Variable(
            0, dtype=tf.int64, trainable=False, name="lookahead/counter")], weights[0])[0]
        self.ensure(weights)

    def _create(self, makers, like):
        """Create variables in the graph of ``like`` and initialise them now."""
        if tf.executing_eagerly():
            return [make() for make in makers]
        with like.graph.as_default():
            created = [make() for make in makers]
        self._run_initializers([v.initializer for v in created])
        for v in created:
            v._keras_initialized = True  # standalone Keras would otherwise re-check them
        return created

    def ensure(self, weights):
        """Give every weight in ``weights`` a slow copy, taken from its current value."""
        missing = []
        for w in weights:
            if id(w) not in self._slots and all(m is not w for m in missing):
                missing.append(w)
        if not missing:
            return

        def maker(w):
            return lambda: tf.Variable(w.read_value(), trainable=False,
                                       name="lookahead/slow/" + w.name.split(":")[0])

        slows = self._create([maker(w) for w in missing], missing[0])
        for w, s in zip(missing, slows):
            self._slots[id(w)] = (w, s)

    def slow(self, weight):
        entry = self._slots.get(id(weight))
        if entry is None:
            raise RuntimeError(
                "Lookahead has no slow copy of the weight {!r}: it was not trainable when "
                "Lookahead was injected or the model last compiled. Call model.compile(...) "
                "after changing which weights are trainable.".format(weight.name))
        return entry[1]

    def slow_weights(self, weights):
        return [self.slow(w) for w in weights]

    def sync_after(self, deps, weights):
        """Count one applied update once ``deps`` have run; on the last step of a period move
        the slow weights and reset ``weights`` to them. Returns a bool tensor: synced or not."""
        pairs = [(w, self.slow(w)) for w in weights]
        with tf.control_dependencies([d for d in deps if d is not None]):
            count = self.counter.assign_add(1)

        def sync():
            assigns = []
            for fast, slow in pairs:
                new = _rule.interpolate(slow.read_value(), fast.read_value(), self.alpha)
                assigns.append(slow.assign(new, read_value=False))
                assigns.append(fast.assign(new, read_value=False))
            with tf.control_dependencies(assigns):
                return tf.constant(True)

        return tf.cond(_rule.is_sync_step(count, self.k, equal=tf.equal), sync,
                       lambda: tf.constant(False))


def apply_gradients_hook(original, state):
    """Wrap an ``apply_gradients(grads_and_vars, ...)`` (Keras OptimizerV2 or ``tf.train``)."""

    def apply_gradients(grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        applied = original(grads_and_vars, *args, **kwargs)
        synced = state.sync_after([applied], [v for _, v in grads_and_vars])
        if tf.executing_eagerly():
            return applied
        return tf.group(*[t for t in (applied, synced) if t is not None])

    return apply_gradients


def get_updates_hook(original, state):
    """Wrap a Keras 2 ``get_updates(loss, params)`` that returns a list of update ops."""

    def get_updates(loss, params):
        updates = [tf.compat.v1.assign(*u) if isinstance(u, tuple) else u
                   for u in original(loss=loss, params=params)]
        return updates + [state.sync_after(updates, params)]

    return get_updates
