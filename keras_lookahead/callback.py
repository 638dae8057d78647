"""``LookaheadCallback``: Lookahead from a ``fit`` callback, for when ``inject`` is not wanted."""
import numpy as np

from keras_lookahead import _rule, compat
from keras_lookahead._validation import check_alpha, check_k


class LookaheadCallback(object):
    """Lookahead as a callback: no optimizer is touched and nothing is rebuilt.

    The slow weights are copies of the trainable weights when the first ``fit`` begins (not
    after its first step, as the params-flow callback had it). After every ``k``-th training
    batch the callback reads the weights, moves the slow ones ``slow += alpha * (fast - slow)``
    and writes them back as the fast weights. Later ``fit`` calls carry on with the same state.

    It counts batches, on the host: use it where ``fit`` runs one optimizer step per batch.
    ``steps_per_execution > 1`` and Keras 3 ``gradient_accumulation_steps`` break that and are
    refused; a step a loss-scale optimizer skips is counted like any other. ``inject`` and
    ``LookaheadOptimizer`` count inside the graph and have none of these limits, and cost less:
    the callback copies every weight to the host and back on each sync.

    Works with every Keras ``inject`` supports (it is a plain object implementing the
    callback protocol of each of them).

    Example:
        >>> model.fit(x, y, callbacks=[LookaheadCallback(k=5, alpha=0.5)])
    """

    # what tf.keras' and Keras 3's callback lists ask of a callback
    _supports_tf_logs = False
    async_safe = False

    def __init__(self, k=5, alpha=0.5):
        self.k = check_k(k)
        self.alpha = check_alpha(alpha)
        self.model = None
        self.params = {}
        self.validation_data = None
        self.count = 0
        self.slow = None  # numpy copies, in the order of the model's trainable weights
        self._weights = None
        self._adapter = None
        self._train_hook_seen = False

    def __repr__(self):
        return "LookaheadCallback(k={}, alpha={})".format(self.k, self.alpha)

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        adapter = compat.adapter_for(self.model)
        spe = adapter.steps_per_execution(self.model)
        if spe != 1:
            raise ValueError(
                "LookaheadCallback counts batches, and with steps_per_execution={0} a batch "
                "callback runs once per {0} optimizer steps, so the syncs would land at the "
                "wrong steps. Compile with steps_per_execution=1, or use "
                "Lookahead(k, alpha).inject(model), which counts in the graph. Received: "
                "steps_per_execution={0}".format(spe))
        accumulation = getattr(self.model.optimizer, "gradient_accumulation_steps", None)
        if accumulation:
            raise ValueError(
                "LookaheadCallback counts batches, and with gradient_accumulation_steps={0} "
                "only every {0}-th batch applies an update. Use Lookahead(k, alpha)"
                ".inject(model) or LookaheadOptimizer. Received: gradient_accumulation_steps={0}"
                .format(accumulation))
        weights = adapter.trainable_weights(self.model)
        adapter.attach_state(self.model)
        if self.slow is None:  # the first fit: anchor here
            self.slow = adapter.get_values(weights)
        elif len(weights) != len(self.slow):
            raise ValueError(
                "The model's trainable weights changed since this LookaheadCallback anchored "
                "({} then, {} now): use a new LookaheadCallback.".format(
                    len(self.slow), len(weights)))
        self._adapter, self._weights = adapter, weights

    def on_train_batch_end(self, batch, logs=None):
        self._train_hook_seen = True
        self._count_step()

    def on_batch_end(self, batch, logs=None):
        # standalone Keras 2.2 calls only this one; everything later calls on_train_batch_end
        if not self._train_hook_seen:
            self._count_step()

    def _count_step(self):
        self.count += 1
        if not _rule.is_sync_step(self.count, self.k):
            return
        self._adapter.attach_state(self.model)
        fast = self._adapter.get_values(self._weights)
        self.slow = [np.asarray(_rule.interpolate(s, f, np.float32(self.alpha)), dtype=f.dtype)
                     for s, f in zip(self.slow, fast)]
        self._adapter.set_values(self._weights, self.slow)

    # The rest of the protocol: nothing to do.
    def _implements_train_batch_hooks(self):
        return True

    def _implements_test_batch_hooks(self):
        return False

    def _implements_predict_batch_hooks(self):
        return False

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass
