"""``LookaheadCallback`` on the stack selected in conftest, against the numpy reference."""
import numpy as np
import pytest

from keras_lookahead import Lookahead, LookaheadCallback
from reference import MLPReference, worked_trajectory
from helpers import STEPS_APART, assert_weights, max_gap


def fit_three_times(model, x, y, callback):
    """22 steps over three fits (4 + 5 + 2 epochs of 2 batches): the state carries over."""
    for epochs in (4, 5, 2):
        model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0,
                  callbacks=[callback])


def test_worked_trajectory(stack):
    keras, K = stack.keras, stack.K
    inp = keras.layers.Input((1,))
    out = keras.layers.Dense(1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(10.0))(inp)
    model = stack.compile(keras.models.Model(inp, out), stack.sgd(1.0),
                          loss=lambda y_true, y_pred: -K.mean(y_pred))
    ones = np.ones((1, 1), "float32")
    callback, path = LookaheadCallback(k=3, alpha=0.5), []
    for _ in range(10):  # one fit per step: the anchor is the weights when the first fit began
        model.fit(ones, ones, batch_size=1, epochs=1, verbose=0, callbacks=[callback])
        path.append(float(model.get_weights()[0][0, 0]))
    assert path == worked_trajectory(10, 10, 3, 0.5)


@pytest.mark.parametrize("k,alpha,momentum", [(3, 0.5, 0.9), (5, 0.8, 0.0)])
def test_matches_reference(stack, data, k, alpha, momentum):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum))
    callback = LookaheadCallback(k=k, alpha=alpha)
    fit_three_times(model, x, y, callback)
    ref = MLPReference(w0, lr=0.1, momentum=momentum)
    ref.attach(k, alpha)
    for epochs in (4, 5, 2):
        ref.fit(x, y, epochs=epochs, batch_size=4)
    assert_weights(model, ref.w)
    assert callback.count == 22
    plain = MLPReference(w0, lr=0.1, momentum=momentum)
    for epochs in (4, 5, 2):
        plain.fit(x, y, epochs=epochs, batch_size=4)
    assert max_gap(ref.w, plain.w) > STEPS_APART


def test_same_weights_as_inject(stack, data):
    """The callback and inject agree where both apply (here: fit only)."""
    x, y, w0 = data
    a = stack.compile(stack.mlp(w0), stack.sgd(0.1, 0.9))
    fit_three_times(a, x, y, LookaheadCallback(k=4, alpha=0.6))
    b = stack.compile(stack.mlp(w0), stack.sgd(0.1, 0.9))
    Lookahead(k=4, alpha=0.6).inject(b)
    fit_three_times(b, x, y, LookaheadCallback(k=1, alpha=1.0))  # alpha = 1: a no-op sync
    assert_weights(a, b.get_weights())


def test_steps_per_execution_is_refused(stack, data):
    if not stack.compile_accepts("steps_per_execution"):
        pytest.skip("compile() has no `steps_per_execution` argument on this stack")
    if stack.compile_kwargs.get("run_eagerly") or stack.backend == "torch":
        pytest.skip("steps_per_execution > 1 does not run with run_eagerly, nor on torch")
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1), steps_per_execution=2)
    with pytest.raises(ValueError, match=r"counts batches.*Received: steps_per_execution=2"):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[LookaheadCallback()])
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # the model still trains


@pytest.mark.any_compile
@pytest.mark.requires("keras3", reason="gradient_accumulation_steps is a Keras 3 optimizer "
                                       "argument")
def test_gradient_accumulation_is_refused(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, gradient_accumulation_steps=2))
    with pytest.raises(ValueError, match=r"Received: gradient_accumulation_steps=2"):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[LookaheadCallback()])


@pytest.mark.parametrize("kwargs,match", [({"k": 0}, r"`k` must be an integer >= 1"),
                                          ({"alpha": -0.1}, r"`alpha` must be a real number")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LookaheadCallback(**kwargs)
