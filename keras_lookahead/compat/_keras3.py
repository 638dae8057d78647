"""Adapter for Keras 3, on the tensorflow, jax and torch backends.

Every Keras 3 trainer updates weights through ``optimizer.apply`` (TF and torch ``train_step``
call it; JAX's stateless ``train_step`` calls ``optimizer.stateless_apply``, which runs ``apply``
inside a ``StatelessScope``), so the hook wraps the instance's ``apply``. Lookahead's counter and
slow weights are variables of that optimizer (``add_variable``), so that JAX threads them through
its jitted state like the optimizer's own; plain ``keras.Variable``s would silently stay at their
initial values there (``INTERNALS.md``). A loss-scale optimizer calls its inner optimizer only when
the gradients are finite, so the inner one is hooked and a skipped step is not counted; with
``gradient_accumulation_steps`` a step counts only when ``iterations`` moved, i.e. an update was
applied.

The sync runs only on sync steps where the backend has a real branch: ``tf.cond`` on TensorFlow
and a Python ``if`` on torch (eager). JAX under ``jit`` cannot assign inside ``lax.cond``, so there
the branch returns the new values and the assignment follows it.
"""
import numpy as np

import keras
from keras import ops

from keras_lookahead import _rule
from keras_lookahead._patch import Patch


def _innermost(optimizer):
    inner = getattr(optimizer, "inner_optimizer", None)
    return optimizer if inner is None else _innermost(inner)


class Keras3State(object):
    """Counter and slow weights, held as variables of the optimizer that applies updates."""

    def __init__(self, k, alpha, weights, select_values):
        self.k, self.alpha = k, alpha
        self._select_values = select_values
        self.optimizer = None
        self.counter = None
        self._slots = {}  # id(weight) -> (weight, slow variable)
        # Until an optimizer holds the state: the anchor, a copy of the weights now.
        self._pending = {id(w): (w, np.array(ops.convert_to_numpy(w))) for w in weights}
        self._count = 0

    def bind(self, optimizer, weights):
        """Hold the state in ``optimizer`` (built on ``weights`` if it is not yet)."""
        if optimizer is self.optimizer:
            return
        if not optimizer.built:
            optimizer.build(weights)
        values = dict(self._pending)
        for key, (w, slow) in self._slots.items():
            values[key] = (w, np.array(ops.convert_to_numpy(slow)))
        count = self._count if self.counter is None else int(ops.convert_to_numpy(self.counter))
        self.release()
        target = _innermost(optimizer)
        self.counter = target.add_variable(shape=(), dtype=target.iterations.dtype,
                                           name="lookahead_counter")
        self.counter.assign(count)
        for w in weights:
            slow = target.add_variable_from_reference(w, name="lookahead_slow")
            # a numpy copy: assigning w's own buffer would alias it under JAX
            anchor = values.get(id(w), (w, None))[1]
            slow.assign(np.array(ops.convert_to_numpy(w)) if anchor is None else anchor)
            self._slots[id(w)] = (w, slow)
        self.optimizer, self._pending = target, {}

    def release(self):
        """Take the state's variables out of the optimizer holding them."""
        if self.optimizer is None:
            return
        self._count = int(ops.convert_to_numpy(self.counter))
        self._pending = {key: (w, np.array(ops.convert_to_numpy(s)))
                         for key, (w, s) in self._slots.items()}
        for v in [self.counter] + [s for _, s in self._slots.values()]:
            self.optimizer._untrack_variable(v)
        self.optimizer, self.counter, self._slots = None, None, {}

    def slow(self, weight):
        entry = self._slots.get(id(weight))
        if entry is None:
            raise RuntimeError(
                "Lookahead has no slow copy of the weight {!r}: it was not trainable when "
                "Lookahead was injected or the model last compiled. Call model.compile(...) "
                "after changing which weights are trainable.".format(weight.path))
        return entry[1]

    def slow_weights(self, weights):
        return [self.slow(w) for w in weights]

    def after_apply(self, applied, weights):
        """Count one update (if ``applied``, a bool tensor, says so: None means it was); on the
        last step of a period, sync."""
        pairs = [(w, self.slow(w)) for w in weights]
        if applied is None:
            count = self.counter + 1
            sync = _rule.is_sync_step(count, self.k, equal=ops.equal)
        else:
            count = self.counter + ops.cast(applied, self.counter.dtype)
            sync = ops.logical_and(applied, _rule.is_sync_step(count, self.k, equal=ops.equal))
        self.counter.assign(count)
        if self._select_values:
            fast = [w.value for w, _ in pairs]
            slow = [s.value for _, s in pairs]

            def synced():
                new = [_rule.interpolate(s, f, self.alpha) for s, f in zip(slow, fast)]
                return new, new

            new_slow, new_fast = ops.cond(sync, synced, lambda: (slow, fast))
            for (w, s), ns, nf in zip(pairs, new_slow, new_fast):
                s.assign(ns)
                w.assign(nf)
            return

        def do_sync():
            for w, s in pairs:
                new = _rule.interpolate(s.value, w.value, self.alpha)
                s.assign(new)
                w.assign(new)

        ops.cond(sync, do_sync, lambda: None)


def _apply_hook(original, optimizer, state):
    def apply(grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return original(grads, trainable_variables)
        accumulating = bool(optimizer.gradient_accumulation_steps)
        # `iterations` counts applied updates; `+ 0` reads it now, not as a live reference
        before = optimizer.iterations + 0 if accumulating else None
        result = original(grads, trainable_variables)
        weights = (optimizer._trainable_variables if trainable_variables is None
                   else list(trainable_variables))
        state.after_apply(ops.not_equal(optimizer.iterations, before) if accumulating else None,
                          weights)
        return result

    return apply


class Keras3Adapter(object):
    def __init__(self, name):
        self.name = name
        self._backend = keras.backend.backend()

    def is_compiled(self, model):
        return getattr(model, "optimizer", None) is not None and getattr(model, "compiled", True)

    def trainable_weights(self, model):
        return list(model.trainable_variables)

    def create_state(self, model, k, alpha):
        return Keras3State(k, alpha, self.trainable_weights(model),
                           select_values=self._backend == "jax")

    def prepare(self, model, optimizer, state):
        state.bind(optimizer, self.trainable_weights(model))

    def hook(self, optimizer, state):
        target = _innermost(optimizer)
        return Patch(target, "apply", _apply_hook(target.apply, target, state))

    def release(self, state):
        state.release()

    def reset_train_function(self, model):
        model.train_function = None
