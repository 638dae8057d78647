"""The structure a step's cost depends on, on TensorFlow: Lookahead adds a constant number of
inputs to a traced TF2 step, whatever the number of weights (docs/design.md, section 2, "Cost
that does not grow with the number of variables"). Every variable a traced function touches is
one more argument of each call, even in a branch that does not run: with hundreds of weights
that cost more than the step's own work. Time itself is measured by the benchmarks, never here.
"""
import numpy as np
import pytest

import keras_lookahead
from keras_lookahead import Lookahead, slow_weights


LAYERS = (1, 6)  # 4 and 14 trainable variables


def deep(stack, layers):
    keras = stack.keras
    model = keras.Sequential([keras.Input((3,))] + [keras.layers.Dense(4, activation="tanh")
                                                    for _ in range(layers)]
                             + [keras.layers.Dense(1)])
    return model


def traced_step(stack, model, optimizer):
    """A custom TF2 training step through ``optimizer`` (Keras 3: ``apply``; tf.keras:
    ``apply_gradients``): (the step, the number of inputs its traced function captures)."""
    import tensorflow as tf
    x = tf.constant(np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3))
    y = tf.constant(np.linspace(0, 1, 8, dtype="float32").reshape(8, 1))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        weights = model.trainable_variables
        grads = tape.gradient(loss, weights)
        if stack.family == "keras3":
            optimizer.apply(grads, weights)
        else:
            optimizer.apply_gradients(zip(grads, weights))
        return loss

    step()  # builds the optimizer's variables (a function may trace twice to make them)
    return step, len(step.get_concrete_function().captured_inputs)


def gap(model):
    """Largest difference between the fast and the slow weights."""
    fast = model.get_weights()
    with slow_weights(model):
        slow = model.get_weights()
    return max(float(np.max(np.abs(a - b))) for a, b in zip(fast, slow))


@pytest.mark.any_compile  # its own tf.function: fit's code path is not involved
@pytest.mark.requires("tensorflow", reason="no traced TF2 function to inspect")
@pytest.mark.requires("eager", reason="a TF1-style graph has no captured inputs")
@pytest.mark.parametrize("api", ["inject", "wrapper"])
def test_captured_inputs_do_not_grow_with_the_weights(stack, api):
    if api == "wrapper":
        stack.skip_without_wrapper()
    extra = []
    for layers in LAYERS:
        bare = deep(stack, layers)
        _, bare_inputs = traced_step(stack, bare, stack.sgd(0.1, 0.9))
        model = deep(stack, layers)
        model.set_weights(bare.get_weights())
        if api == "inject":
            stack.compile(model, stack.sgd(0.1, 0.9))
            Lookahead(k=2, alpha=0.5).inject(model)
            optimizer = model.optimizer
        else:
            optimizer = keras_lookahead.LookaheadOptimizer(stack.sgd(0.1, 0.9), k=2, alpha=0.5)
            stack.compile(model, optimizer)
        step, inputs = traced_step(stack, model, optimizer)
        # the hook runs: one update apart from the anchor, then equal right after the sync
        assert gap(model) > 1e-4
        step()
        assert gap(model) == 0
        assert max(float(np.max(np.abs(a - b)))
                   for a, b in zip(model.get_weights(), bare.get_weights())) > 1e-4
        extra.append(inputs - bare_inputs)
    # the counter and one tensor of handles per branch (fewer where XLA cannot take them),
    # the same with 6 or 26 weights
    assert extra[0] == extra[1], extra
    assert extra[0] <= 4, extra
