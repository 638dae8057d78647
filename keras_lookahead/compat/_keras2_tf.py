"""Adapter for every Keras 2 on TensorFlow: standalone Keras 2.2/2.3, tf.keras in TensorFlow
1.14 - 2.15, and tf_keras 2.16+.

These Keras build their training step in one of three places (``docs/design.md``, section 3):
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
from keras_lookahead.compat._adapter import Adapter


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
        f"tf.compat.v1.train optimizer. Received: optimizer={optimizer!r}")


def _build_ahead(model, optimizer, weights):
    """Make an ``OptimizerV2``'s state (iterations, hyperparameters, slots) for ``weights`` now,
    eagerly, as its first ``apply_gradients`` would: a traced train step that creates variables
    is traced twice, so the first ``fit`` after ``inject`` then traces once (a bare model's
    twice: ``tests/test_inject.py``, ``test_first_fit_traces_once_with_optimizer_v2``).
    Only where that is what the optimizer itself does on its first update (``_create_all_weights``
    adds what is missing and keeps what exists: weights made trainable later get their slots
    then) and with no tf.distribute strategy (whose variables are made in its own contexts).
    The 2.11+ optimizers are left to build themselves: ``build`` fixes their set of variables
    (and ``exclude_from_weight_decay`` must come before it)."""
    target = _hook_point(optimizer)[0]
    create = getattr(target, "_create_all_weights", None)
    if (create is None or not weights or not tf.executing_eagerly()
            or tf.distribute.has_strategy()
            or getattr(model, "_distribution_strategy", None) is not None):
        return
    create(weights)


def _sums_of_squares(weights):
    return tf.stack([tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in weights])


class Keras2TFAdapter(Adapter):
    """Standalone Keras, tf.keras and tf_keras (``_adapter.Adapter``)."""

    def __init__(self, name, model_class):
        super().__init__(name, model_class)
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
            state.replaced_dependency = model._lookup_dependency(_CHECKPOINT_NAME)
            track(store.checkpointable, _CHECKPOINT_NAME, overwrite=True)
            state.tracked_by = model
        return state

    def _backend(self):
        return importlib.import_module(self._backend_module)

    def _run_initializers(self, ops):
        self._backend().get_session().run(ops)

    def get_values(self, variables):
        return [np.array(v) for v in self._backend().batch_get_value(list(variables))]

    def set_values(self, variables, values):
        self._backend().batch_set_value(list(zip(variables, values)))

    def checksum(self, weights):
        """Per weight, the sum of its squares, computed where the weights live: what tells
        whether training changed them, with one small read (the liveness check of inject)."""
        if tf.executing_eagerly():
            return self.get_values([_sums_of_squares(weights)])[0]
        key = tuple(id(w) for w in weights)
        if getattr(self, "_checksum_key", None) != key:  # a graph: build the op once
            with weights[0].graph.as_default():
                self._checksum_key, self._checksum_op = key, _sums_of_squares(weights)
        return self.get_values([self._checksum_op])[0]

    def attach_state(self, model):
        """The weights are always the model's variables here."""

    def steps_per_execution(self, model):
        """tf.keras 2.4+ keeps it in a variable; before that it is always 1."""
        variable = getattr(model, "_steps_per_execution", None)
        return 1 if variable is None else int(self.get_values([variable])[0])

    def prepare(self, model, optimizer, state):
        weights = self.trainable_weights(model)
        state.prepare(weights)
        _build_ahead(model, optimizer, weights)

    def hook(self, optimizer, state):
        target, method, factory = _hook_point(optimizer)
        if state.pullback != "none":
            state.momentum_of = _tf.momentum_lookup(target, state.pullback)
        if factory is _tf.get_updates_hook:
            replacement = factory(getattr(target, method), state, self._keep_state(target))
        else:
            replacement = factory(getattr(target, method), state)
        return Patch(target, method, replacement)

    def _keep_state(self, optimizer):
        """Keras 2 optimizers (standalone Keras, tf.keras' v1 optimizers) make their state
        variables anew in every ``get_updates``, so the train function that ``inject`` rebuilds
        would start from zeroed momentum or moments. Returns what puts the values the optimizer
        has now (after a ``fit``, or loaded by ``load_model``) into the variables the rebuild
        makes; None if it has none yet."""
        before = list(getattr(optimizer, "weights", None) or [])
        if not before:
            return None
        values = self.get_values(before)

        def restore():
            after = list(getattr(optimizer, "weights", None) or [])
            if [id(v) for v in after] == [id(v) for v in before]:
                return
            if [tuple(v.shape.as_list()) for v in after] != [np.shape(a) for a in values]:
                kind = type(optimizer).__name__
                shapes = [np.shape(a) for a in values]
                new_shapes = [tuple(v.shape.as_list()) for v in after]
                raise RuntimeError(
                    f"Lookahead could not carry {kind}'s state over the rebuilt train function: "
                    f"its variables changed shape ({shapes} before, {new_shapes} after).")
            self.set_values(after, values)

        return restore

    def release(self, model, state):
        """Take the state's checkpoint dependency off the model (putting back any it
        replaced); its variables belong to no Keras object."""
        owner = getattr(state, "tracked_by", None)
        if owner is None:
            return
        dependencies = owner._self_unconditional_checkpoint_dependencies
        dependencies[:] = [d for d in dependencies if d.name != _CHECKPOINT_NAME]
        owner._self_unconditional_dependency_names.pop(_CHECKPOINT_NAME, None)
        if state.replaced_dependency is not None:
            owner._track_trackable(state.replaced_dependency, _CHECKPOINT_NAME)
        state.tracked_by = None

    def reset_train_function(self, model):
        if hasattr(model, "train_function"):
            model.train_function = None
        cache = getattr(model, "_distributed_function_cache", None)
        if cache is not None:
            cache.clear()  # in place: assigning a new dict would make it a tracked dependency
