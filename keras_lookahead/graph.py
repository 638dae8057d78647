"""Lookahead for TF1-style graph code: ``BaseLookAhead(model_vars, k, alpha).get_ops()``.

A drop-in for the ``BaseLookAhead`` class of lookahead_tensorflow (same constructor, same
``get_ops()``, variables under a ``"lookahead"`` variable scope), with the paper's period: that
class syncs every k + 1 steps after its first sync; this one every k steps (``docs/design.md``,
section 1).
Works with TensorFlow 1.x sessions and with ``tf.compat.v1`` graph mode on TensorFlow 2.x.

    train_op = optimizer.minimize(loss)
    lookahead = BaseLookAhead(tf.compat.v1.trainable_variables(), k=5, alpha=0.5)
    train_ops = [train_op] + lookahead.get_ops()      # one sess.run per step
    sess.run(tf.compat.v1.global_variables_initializer())
    for batch in batches:
        sess.run(train_ops, feed_dict=...)
"""
from keras_lookahead import _rule
from keras_lookahead._validation import check_alpha, check_k

# Kernels through which TensorFlow optimizers update a variable in place.
_UPDATE_KERNELS = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")


class BaseLookAhead:
    """Lookahead over ``model_vars``, as graph ops to run after each optimizer step.

    Args:
        model_vars: the variables the optimizer trains (the fast weights).
        k: int >= 1, optimizer steps between syncs.
        alpha: float in [0, 1], the slow weights' step size.
        name: the variable scope of the slow weights and the counter.

    The slow weights start from the values ``model_vars`` have when they are initialised (their
    initializers run first); the counter starts at 0.
    """

    def __init__(self, model_vars, k=5, alpha=0.5, name="lookahead"):
        import tensorflow as tf
        self.k = check_k(k)
        self.alpha = check_alpha(alpha)
        self.model_vars = list(model_vars)
        if not self.model_vars or not all(isinstance(v, tf.Variable) for v in self.model_vars):
            raise ValueError("`model_vars` must be a non-empty list of tf.Variable. Received: "
                             f"model_vars={model_vars!r}")
        if tf.executing_eagerly():
            raise RuntimeError("BaseLookAhead builds graph ops for tf.compat.v1 sessions; with "
                               "eager execution use Lookahead(...).inject(model) instead.")
        v1 = tf.compat.v1
        with v1.variable_scope(name):
            self.counter = v1.get_variable("counter", shape=[], dtype=tf.int64, trainable=False,
                                           initializer=v1.zeros_initializer())
            self.slow_vars = [
                v1.get_variable(v.op.name, initializer=_initialized_value(tf, v), trainable=False)
                for v in self.model_vars]
        self._tf = tf

    def _update_ops(self):
        """The ops already in the graph that apply an optimizer update to ``model_vars``."""
        found = []
        for v in self.model_vars:
            tensor = v.handle if _is_resource(v) else v.op.outputs[0]
            found += [op for op in tensor.consumers() if op.type.startswith(_UPDATE_KERNELS)]
        return found

    def get_ops(self, after=None):
        """The ops that count one step and, every k steps, sync: a list of one op.

        Args:
            after: what they must run after. By default, every optimizer update op already in
                the graph that writes ``model_vars`` (so build the train op first): run them in
                the same ``sess.run`` as the train op, as the lookahead_tensorflow examples do
                (``train_op += lookahead.get_ops()``); they depend on the update, so a
                ``sess.run`` of them alone also takes the optimizer step. ``after=()`` orders
                them after nothing: run them in a ``sess.run`` of their own after each train
                step. Or pass the train op(s) explicitly.

        Built anew on each call: call it once.
        """
        tf = self._tf
        deps = self._update_ops() if after is None else (
            list(after) if isinstance(after, (list, tuple)) else [after])
        with tf.control_dependencies(deps):
            count = self.counter.assign_add(1)

        def sync():
            new_fast, (new_slow,) = _rule.synced_values(
                [v.read_value() for v in self.model_vars],
                [[s.read_value() for s in self.slow_vars]], [self.alpha], [None], tf.cond)
            assigns = [v.assign(n) for v, n in zip(self.model_vars, new_fast)]
            assigns += [s.assign(n) for s, n in zip(self.slow_vars, new_slow)]
            with tf.control_dependencies(assigns):
                return tf.constant(True)

        synced = tf.cond(_rule.is_sync_step(count, self.k, equal=tf.equal), sync,
                         lambda: tf.constant(False))
        return [synced.op]


def _is_resource(variable):
    try:
        return variable.handle is not None
    except AttributeError:  # a TF1 reference variable
        return False


def _initialized_value(tf, variable):
    """``variable``'s value once initialised, as TF1's deprecated ``initialized_value()``: its
    initial value while it is uninitialised (all initializers run in one ``sess.run``)."""
    return tf.cond(tf.compat.v1.is_variable_initialized(variable), variable.read_value,
                   lambda: tf.convert_to_tensor(variable.initial_value))
