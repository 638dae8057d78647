"""``LookaheadCallback``: Lookahead from a ``fit`` callback, for when ``inject`` is not wanted."""
import weakref

import numpy as np

from keras_lookahead import _rule, compat
from keras_lookahead.compat._slots import pieces
from keras_lookahead._validation import check_alpha, check_int, check_k


class _Callback:
    """The callback protocol of every supported Keras, as no-ops: a plain object, so that one
    class serves standalone Keras, tf.keras, tf_keras and Keras 3 alike."""

    # what tf.keras' and Keras 3's callback lists ask of a callback
    _supports_tf_logs = False
    async_safe = False

    def __init__(self):
        self.model = None
        self.params = {}
        self.validation_data = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

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

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
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


class LookaheadCallback(_Callback):
    """Lookahead as a callback: no optimizer is touched and nothing is rebuilt.

    The slow weights are copies of the trainable weights when the first ``fit`` begins (not
    after its first step, as the params-flow callback had it). After every ``k``-th training
    batch the callback reads the weights, moves the slow ones ``slow += alpha * (fast - slow)``
    and writes them back as the fast weights. Later ``fit`` calls carry on with the same state.
    The callback is bound to the model it first trains: passing it to another model's ``fit``
    (one callbacks list reused across the folds of a cross-validation) is an error, since its
    slow weights are the first model's; call :meth:`reset` to start over on a new model.

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

    def __init__(self, k: int = 5, alpha: float = 0.5) -> None:
        _Callback.__init__(self)
        self.k = check_k(k)
        self.alpha = check_alpha(alpha)
        self.count = 0
        self.slow = None  # numpy copies, in the order of the model's trainable weights
        self._weights = None
        self._adapter = None
        self._train_hook_seen = False
        self._bound = None  # a weak reference to the model the slow weights belong to

    def __repr__(self):
        return f"LookaheadCallback(k={self.k}, alpha={self.alpha})"

    def reset(self):
        """Forget the slow weights and the count: the next ``fit`` anchors anew, on whichever
        model it trains (a new fold, a new model)."""
        self.count = 0
        self.slow = self._weights = self._adapter = self._bound = None

    def on_train_begin(self, logs=None):
        adapter = compat.adapter_for(self.model)
        spe = adapter.steps_per_execution(self.model)
        if spe != 1:
            raise ValueError(
                f"LookaheadCallback counts batches, and with steps_per_execution={spe} a batch "
                f"callback runs once per {spe} optimizer steps, so the syncs would land at the "
                "wrong steps. Compile with steps_per_execution=1, or use "
                "Lookahead(k, alpha).inject(model), which counts in the graph. Received: "
                f"steps_per_execution={spe}")
        accumulation = getattr(self.model.optimizer, "gradient_accumulation_steps", None)
        if accumulation:
            raise ValueError(
                "LookaheadCallback counts batches, and with gradient_accumulation_steps="
                f"{accumulation} only every {accumulation}-th batch applies an update. Use "
                "Lookahead(k, alpha).inject(model) or LookaheadOptimizer. Received: "
                f"gradient_accumulation_steps={accumulation}")
        weights = adapter.trainable_weights(self.model)
        adapter.attach_state(self.model)
        bound = self._bound() if self._bound is not None else None
        if self.slow is not None and bound is not self.model:
            first, this = getattr(bound, "name", bound), getattr(self.model, "name", self.model)
            raise ValueError(
                "This LookaheadCallback holds the slow weights of the model it first trained "
                f"({first!r}), not of this one ({this!r}): it would pull this model towards that "
                "one. Use a new LookaheadCallback per model (e.g. per cross-validation fold), or "
                "call callback.reset() to start over on this model.")
        if self.slow is None:  # the first fit: anchor here
            self.slow = adapter.get_values(weights)
            self._bound = weakref.ref(self.model)
        elif len(weights) != len(self.slow):
            raise ValueError(
                "The model's trainable weights changed since this LookaheadCallback anchored "
                f"({len(self.slow)} then, {len(weights)} now): use a new LookaheadCallback.")
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
        for indices in _chunks(self.slow):
            fast = self._adapter.get_values([self._weights[i] for i in indices])
            for i, f in zip(indices, fast):
                self.slow[i] = np.asarray(_rule.interpolate(self.slow[i], f,
                                                            np.float32(self.alpha)),
                                          dtype=f.dtype)
            del fast
            self._adapter.set_values([self._weights[i] for i in indices],
                                     [self.slow[i] for i in indices])


def _chunks(arrays):
    """Indices of ``arrays`` in groups of at most 16 MiB (or one array): a sync reads,
    computes and writes one group at a time, so its temporaries on the host are one group's,
    not a copy of the whole model."""
    return pieces([a.nbytes for a in arrays], 1 << 24)


class ValidateOnSlowWeights(_Callback):
    """Report ``fit``'s validation metrics on the slow weights (opt-in).

    During ``fit``, each validation pass runs inside :func:`keras_lookahead.slow_weights`: the
    slow weights are swapped in when it begins and the fast ones restored, bit for bit, when it
    ends, so training goes on exactly as without this callback. Works with ``inject`` and with
    ``LookaheadOptimizer``, on every Keras whose ``fit`` calls ``on_test_begin`` /
    ``on_test_end`` around validation (all supported stacks but standalone Keras 2.2, where it
    raises at the start of ``fit``).

    Example:
        >>> model.fit(x, y, validation_data=(xv, yv), callbacks=[ValidateOnSlowWeights()])
    """

    def __init__(self, level: int = 0) -> None:
        _Callback.__init__(self)
        self.level = check_int(level, "level", minimum=0)
        self._in_fit = False
        self._swap = None

    def on_train_begin(self, logs=None):
        from keras_lookahead.lookahead import _state_of, check_level
        # a clear error now if the model has no Lookahead, or not this many levels
        check_level(self.level, *_state_of(self.model)[1:])
        if not compat.calls_test_hooks_in_fit(self.model):
            stack = compat.adapter_for(self.model).name
            raise ValueError(
                "ValidateOnSlowWeights needs fit to call on_test_begin / on_test_end around "
                f"validation, which {stack} does not. Evaluate inside "
                "keras_lookahead.slow_weights(model) instead.")
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False
        self._restore()

    def on_test_begin(self, logs=None):
        if self._in_fit and self._swap is None:
            from keras_lookahead.lookahead import slow_weights
            self._swap = slow_weights(self.model, self.level)
            self._swap.__enter__()

    def on_test_end(self, logs=None):
        self._restore()

    def _restore(self):
        swap, self._swap = self._swap, None
        if swap is not None:
            swap.__exit__(None, None, None)
