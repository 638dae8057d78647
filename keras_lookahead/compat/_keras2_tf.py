"""Adapter for every Keras 2 on TensorFlow: standalone Keras 2.2/2.3, tf.keras in TensorFlow
1.14 - 2.15, and tf_keras 2.16+.

These Keras build their training step in one of three places (``INTERNALS.md``):
- the v1 graph path, ``Model._make_train_function`` -> ``optimizer.get_updates``, cached in
  ``model.train_function``;
- the v2 loop of TF 1.15/2.0/2.1 (``training_v2``) and ``run_eagerly``, which call
  ``optimizer.apply_gradients``, cached in ``model._distributed_function_cache``;
- from TF 2.2, ``Model.train_step`` -> ``optimizer.minimize`` -> ``apply_gradients``, cached in
  ``model.train_function``.
``OptimizerV2.get_updates`` and ``minimize`` call ``self.apply_gradients``, so one hook on the
optimizer instance's ``apply_gradients`` covers every path; the counter lives in the graph, so
``steps_per_execution`` and ``jit_compile`` count right. Which object to hook:
- a loss-scale optimizer applies its inner optimizer only when the gradients are finite: the inner
  one is hooked, so a skipped step is not counted;
- a ``tf.compat.v1.train`` optimizer passed to ``compile`` is wrapped in ``TFOptimizer``, whose
  ``get_updates`` and ``apply_gradients`` call the wrapped optimizer's ``apply_gradients``: that
  one is hooked;
- Keras 2 optimizers with no ``apply_gradients`` (standalone Keras, tf.keras' v1 optimizers) only
  build updates through ``get_updates``: that is hooked.
"""
import importlib

import numpy as np
import tensorflow as tf

from keras_lookahead._patch import Patch
from keras_lookahead.compat import _tf


# The model's checkpoint dependency that holds Lookahead's state.
_CHECKPOINT_NAME = "keras_lookahead"


def _loss_scale_inner(optimizer):
    if "LossScaleOptimizer" not in type(optimizer).__name__:
        return None
    return getattr(optimizer, "inner_optimizer", None) or getattr(optimizer, "_optimizer")


def _hook_point(optimizer):
    inner = _loss_scale_inner(optimizer)
    if inner is not None:
        return _hook_point(inner)
    wrapped = getattr(optimizer, "optimizer", None)
    if isinstance(wrapped, tf.compat.v1.train.Optimizer):
        return wrapped, "apply_gradients", _tf.apply_gradients_hook
    if callable(getattr(optimizer, "apply_gradients", None)):
        return optimizer, "apply_gradients", _tf.apply_gradients_hook
    if callable(getattr(optimizer, "get_updates", None)):
        return optimizer, "get_updates", _tf.get_updates_hook
    raise TypeError(
        "Lookahead needs the model's optimizer to be a Keras optimizer or a "
        "tf.compat.v1.train optimizer. Received: optimizer={!r}".format(optimizer))


class Keras2TFAdapter(object):
    def __init__(self, name, model_class):
        self.name = name
        # Keras' own backend module (it owns the graph-mode session): <package>.backend
        self._backend_module = model_class.__module__.split(".engine.")[0] + ".backend"

    def is_compiled(self, model):
        return getattr(model, "optimizer", None) is not None

    def trainable_weights(self, model):
        """What the optimizer will be handed: ``model.trainable_weights`` and, where Keras
        collected them at compile, ``model._collected_trainable_weights``."""
        weights = list(model.trainable_weights)
        ids = set(id(w) for w in weights)
        for w in getattr(model, "_collected_trainable_weights", None) or ():
            if id(w) not in ids:
                weights.append(w)
                ids.add(id(w))
        return weights

    def create_state(self, model, levels, pullback="none"):
        if pullback != "none":
            # a clear error before anything is made: the optimizer keeps no reachable momentum
            _tf.momentum_lookup(_hook_point(model.optimizer)[0], pullback)
        store = _tf.OwnVariables(self._run_initializers,
                                 getattr(model, "_distribution_strategy", None))
        state = _tf.TFState(levels, self.trainable_weights(model), store, pullback)
        track = getattr(model, "_track_trackable", None)
        if track is not None:  # every tf.keras / tf_keras model; not standalone Keras
            # saved and restored with the model by TensorFlow's object-based checkpoints
            track(store.checkpointable, _CHECKPOINT_NAME, overwrite=True)
        return state

    def _backend(self):
        return importlib.import_module(self._backend_module)

    def _run_initializers(self, ops):
        self._backend().get_session().run(ops)

    def get_values(self, variables):
        return [np.array(v) for v in self._backend().batch_get_value(list(variables))]

    def set_values(self, variables, values):
        self._backend().batch_set_value(list(zip(variables, values)))

    def attach_state(self, model):
        """The weights are always the model's variables here."""

    def steps_per_execution(self, model):
        """tf.keras 2.4+ keeps it in a variable; before that it is always 1."""
        variable = getattr(model, "_steps_per_execution", None)
        return 1 if variable is None else int(self.get_values([variable])[0])

    def prepare(self, model, optimizer, state):
        state.ensure(self.trainable_weights(model))

    def hook(self, optimizer, state):
        target, method, factory = _hook_point(optimizer)
        if state.pullback != "none":
            state.momentum_of = _tf.momentum_lookup(target, state.pullback)
        return Patch(target, method, factory(getattr(target, method), state))

    def release(self, state):
        """Nothing to undo: the state's variables belong to no Keras object."""

    def reset_train_function(self, model):
        if hasattr(model, "train_function"):
            model.train_function = None
        if hasattr(model, "_distributed_function_cache"):
            model._distributed_function_cache = {}
