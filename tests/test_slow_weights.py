"""keras_lookahead.slow_weights(model): evaluate with the slow weights, exactly and reversibly."""
import numpy as np
import pytest

from keras_lookahead import Lookahead, NestedLookahead, slow_weights
from reference import MLPReference
from helpers import assert_weights


def _state_values(stack, model):
    state = vars(model)["_keras_lookahead"].state
    weights = model.trainable_weights
    return ([np.array(w) for w in model.get_weights()]
            + stack.values(state.slow_weights(weights, 0))
            + stack.values(state.slow_weights(weights, 1))
            + stack.values([state.counter]))


@pytest.mark.any_compile
def test_slow_weights_are_exact_and_reversible(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    NestedLookahead(k=3, alpha=0.5, s=2, h=0.5).inject(model)
    model.fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0)  # 10 steps: 10 % 3 = 1
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5, 2, 0.5)
    ref.fit(x, y, epochs=5, batch_size=4)
    assert_weights(model, ref.w)
    assert max(float(np.max(np.abs(f - s))) for f, s in zip(ref.w, ref.lookahead.phi)) > 1e-3

    before = _state_values(stack, model)
    with slow_weights(model) as same:
        assert same is model
        assert_weights(model, ref.lookahead.phi)
        predicted = model.predict(x, verbose=0)
    h = np.tanh(x @ ref.lookahead.phi[0] + ref.lookahead.phi[1])
    np.testing.assert_allclose(predicted, h @ ref.lookahead.phi[2] + ref.lookahead.phi[3],
                               atol=2e-5)
    with slow_weights(model, level=1):
        assert_weights(model, ref.lookahead.psi)
    after = _state_values(stack, model)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)  # bit for bit: fast, both slow levels, counter

    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)  # training goes on
    ref.fit(x, y, epochs=3, batch_size=4)
    assert_weights(model, ref.w)


@pytest.mark.any_compile
def test_slow_weights_restores_after_an_error(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1))
    Lookahead(k=4, alpha=0.5).inject(model)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(KeyError):
        with slow_weights(model):
            raise KeyError("boom")
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.any_compile
def test_slow_weights_bad_input(stack, data):
    model = stack.compile(stack.mlp(data[2]), stack.sgd(0.1))
    with pytest.raises(ValueError, match="has no Lookahead: neither injected nor a "):
        with slow_weights(model):
            pass
    Lookahead(k=2).inject(model)
    with pytest.raises(ValueError, match=r"`level` must be an integer in \[0, 1\).*Received: "
                                         r"level=1"):
        with slow_weights(model, level=1):
            pass


@pytest.mark.parametrize("api", ["inject", "wrapper"])
def test_validation_during_fit_on_slow_weights(stack, data, api):
    """ValidateOnSlowWeights: fit's val_loss each epoch is the loss of the slow weights (from the
    reference), not of the fast ones, and training is exactly as without it."""
    from keras_lookahead import ValidateOnSlowWeights
    x, y, w0 = data
    if api == "wrapper":
        stack.skip_without_wrapper()
        from keras_lookahead import LookaheadOptimizer
        model = stack.compile(stack.mlp(w0), LookaheadOptimizer(stack.sgd(0.1, 0.9), k=3,
                                                                alpha=0.5))
    else:
        model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
        Lookahead(k=3, alpha=0.5).inject(model)
    fit = dict(batch_size=4, shuffle=False, verbose=0, validation_data=(x, y))
    if stack.family == "standalone":
        with pytest.raises(ValueError, match="needs fit to call on_test_begin"):
            model.fit(x, y, epochs=1, callbacks=[ValidateOnSlowWeights()], **fit)
        return
    history = model.fit(x, y, epochs=4, callbacks=[ValidateOnSlowWeights()], **fit)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)

    def mse(w):
        return float(np.mean((np.tanh(x @ w[0] + w[1]) @ w[2] + w[3] - y) ** 2))

    slow_losses, fast_losses = [], []
    for _ in range(4):  # 2 steps an epoch: epochs end mid-period (2, 4, 8) and on a sync (6)
        ref.fit(x, y, epochs=1, batch_size=4)
        slow_losses.append(mse(ref.lookahead.slow))
        fast_losses.append(mse(ref.w))
    np.testing.assert_allclose(history.history["val_loss"], slow_losses, rtol=1e-4)
    assert max(abs(a - b) for a, b in zip(slow_losses, fast_losses)) > 1e-3
    assert_weights(model, ref.w)  # the fast weights are back, training unchanged
