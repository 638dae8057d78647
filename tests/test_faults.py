"""Faults during training. A NaN loss makes NaN gradients and NaN fast weights; the rule copies
the fast weights into the slow ones only at a sync. So with TerminateOnNaN (which stops at the end
of the NaN step) the slow weights stay the last good point unless the NaN step ended a period,
and keras_lookahead.slow_weights(model) recovers them. (README: "What happens when".)"""
import numpy as np
import pytest

import keras_lookahead
from helpers import batch
from reference import MLPReference

K, ALPHA = 3, 0.5


@pytest.mark.requires("stops_mid_epoch")
@pytest.mark.parametrize("nan_step", [5, 6])
def test_nan_loss_and_terminate_on_nan(stack, data, nan_step):
    x, y, w0 = data
    xs = np.concatenate([x, x, x, x])  # 8 batches of 4, in the order of the reference
    ys = np.concatenate([y, y, y, y])
    xs[4 * (nan_step - 1)] = np.nan  # one NaN input in batch nan_step
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(model)
    model.fit(xs, ys, batch_size=4, epochs=1, shuffle=False, verbose=0,
              callbacks=[stack.keras.callbacks.TerminateOnNaN()])
    assert keras_lookahead.get_state(model)[0] == nan_step  # it stopped right there
    assert all(np.isnan(w).all() for w in model.get_weights())  # fast weights: lost

    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(K, ALPHA)
    for i in range(nan_step - 1):
        ref.step(*batch(x, y, i))
    with keras_lookahead.slow_weights(model):
        slow = model.get_weights()
    if nan_step % K == 0:
        # the NaN step ended a period: its sync moved the slow weights to NaN as well
        assert all(np.isnan(s).all() for s in slow)
        return
    for s, e in zip(slow, ref.lookahead.slow):
        np.testing.assert_allclose(s, e, atol=2e-5, rtol=0)
