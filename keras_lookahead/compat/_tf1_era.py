"""Adapters for standalone Keras 2.2/2.3 and tf.keras in TensorFlow 1.14, 1.15 and 2.0.

These Keras build their training step in one of two places (``INTERNALS.md``):
- the graph path, ``Model._make_train_function`` -> ``optimizer.get_updates``, cached in
  ``model.train_function``;
- on tf.keras with eager execution, the v2 loop (``training_v2``) or ``run_eagerly``, which call
  ``optimizer.apply_gradients`` directly, cached in ``model._distributed_function_cache``.
``OptimizerV2.get_updates`` itself calls ``self.apply_gradients``, so for OptimizerV2 one hook on
the instance's ``apply_gradients`` covers every path. A ``tf.compat.v1.train`` optimizer passed to
``compile`` is wrapped in ``TFOptimizer``, whose ``get_updates`` and ``apply_gradients`` both call
the wrapped optimizer's ``apply_gradients``: that one is hooked. Keras 2 optimizers (standalone
Keras, and tf.keras' own v1 optimizers) only have ``get_updates``.
"""
from keras_lookahead._patch import Patch
from keras_lookahead.compat import _tf


class TF1EraAdapter(object):
    def __init__(self, name, backend, hook_points):
        self.name = name
        self._backend = backend
        self._hook_points = hook_points  # optimizer -> (object, method name, hook factory)

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

    def create_state(self, model, k, alpha):
        return _tf.TFState(k, alpha, self.trainable_weights(model), self._run_initializers)

    def _run_initializers(self, ops):
        self._backend.get_session().run(ops)

    def hook(self, optimizer, state):
        target, method, factory = self._hook_points(optimizer)
        return Patch(target, method, factory(getattr(target, method), state))

    def reset_train_function(self, model):
        if hasattr(model, "train_function"):
            model.train_function = None
        if hasattr(model, "_distributed_function_cache"):
            model._distributed_function_cache = {}


def standalone_keras_adapter(keras_version, tf_version):
    import keras

    def hook_points(optimizer):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                "Lookahead on standalone Keras needs a keras.optimizers.Optimizer. "
                "Received: optimizer={!r}".format(optimizer))
        return optimizer, "get_updates", _tf.get_updates_hook

    return TF1EraAdapter("Keras {} on TensorFlow {}".format(keras_version, tf_version),
                         keras.backend, hook_points)


def tf_keras_adapter(tf_version):
    from tensorflow.python.keras import backend, optimizers
    from tensorflow.python.keras.optimizer_v2 import optimizer_v2

    def hook_points(optimizer):
        if isinstance(optimizer, optimizer_v2.OptimizerV2):
            return optimizer, "apply_gradients", _tf.apply_gradients_hook
        if isinstance(optimizer, optimizers.TFOptimizer):
            return optimizer.optimizer, "apply_gradients", _tf.apply_gradients_hook
        if isinstance(optimizer, optimizers.Optimizer):
            return optimizer, "get_updates", _tf.get_updates_hook
        raise TypeError(
            "Lookahead on tf.keras needs a tf.keras optimizer or a tf.compat.v1.train optimizer. "
            "Received: optimizer={!r}".format(optimizer))

    return TF1EraAdapter("tf.keras in TensorFlow {}".format(tf_version), backend, hook_points)
