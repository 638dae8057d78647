"""The workflows users run around ``compile`` and ``fit``, each ending in exact Lookahead (against
the numpy reference) or a clear error, never in quiet bare training: weights loaded or set after
attaching Lookahead, recompiling under mixed precision, replacing the optimizer, custom
``train_step``s, Lookahead twice, a callback reused on another model, one optimizer applied to
groups of weights in turn. Stateful optimizers (SGD with momentum) wherever state matters."""
import os

import numpy as np
import pytest

import keras_lookahead
from keras_lookahead import Lookahead, LookaheadCallback
from reference import MLPReference, worked_trajectory
from helpers import assert_weights, batch, train, train_reference


def _weights_file(stack, weights, tmp_path):
    """A weights file holding ``weights`` for stack.mlp(), written by another model."""
    path = os.path.join(str(tmp_path), "pretrained.weights.h5")
    stack.mlp(weights).save_weights(path)
    return path


def _build(optimizer, weights):
    """Build a LookaheadOptimizer (and so its state) now, or say why this stack cannot."""
    if hasattr(optimizer, "build"):  # Keras 3, tf.keras 2.11+ optimizers
        optimizer.build(weights)
    elif hasattr(getattr(optimizer, "inner_optimizer", None), "_create_all_weights"):
        optimizer._create_all_weights(weights)  # OptimizerV2, TF 2.2+
    else:
        pytest.skip("this stack's OptimizerV2 builds its state only in its first update")


@pytest.mark.parametrize("api", ["inject", "wrapper"])
@pytest.mark.parametrize("how", ["set_weights", "load_weights"])
def test_weights_changed_after_attaching_are_the_anchor(stack, data, tmp_path, api, how):
    """Fine-tuning: compile, attach Lookahead (the wrapper already built), then load the
    pretrained weights, then fit: the slow weights start from the loaded weights, not from the
    random ones Lookahead first saw."""
    x, y, w0 = data
    model = stack.mlp()  # random weights, not w0
    if api == "wrapper":
        stack.skip_without_wrapper()
        stack.compile(model, keras_lookahead.LookaheadOptimizer(
            stack.sgd(0.1, momentum=0.9), k=3, alpha=0.5))
        _build(model.optimizer, model.trainable_weights)
    else:
        stack.compile(model, stack.sgd(0.1, momentum=0.9))
        Lookahead(k=3, alpha=0.5).inject(model)
    if how == "set_weights":
        model.set_weights(w0)
    else:
        model.load_weights(_weights_file(stack, w0, tmp_path))
    if api == "inject":
        with keras_lookahead.slow_weights(model):  # no update yet: the weights themselves
            assert_weights(model, w0, atol=0)
    train(model, x, y)

    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    assert_weights(model, train_reference(ref, x, y))


def _one_weight(stack):
    """docs/design.md's worked example as a model: one weight, theta0 = 10; with SGD(1) and this
    loss each update adds exactly 1."""
    keras, K = stack.keras, stack.K
    inp = keras.layers.Input((1,))
    out = keras.layers.Dense(1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(10.0))(inp)

    def loss(y_true, y_pred):
        return -K.mean(K.cast(y_pred, "float32"))

    return keras.models.Model(inp, out), loss


def _recompile_refused(stack):
    """Keras' own error when a model is compiled again with the same optimizer under the
    current mixed precision policy, without Lookahead (tf.keras refuses to wrap an optimizer in
    a second loss-scale optimizer), or None."""
    model, loss = _one_weight(stack)
    opt = stack.sgd(1.0)
    stack.compile(model, opt, loss=loss)
    try:
        stack.compile(model, opt, loss=loss)
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.requires("mixed_precision")
def test_recompile_under_mixed_precision(stack):
    """mixed_float16: compile, inject, compile again with the same optimizer. Keras wraps a new
    loss-scale optimizer around it; Lookahead stays hooked on the one inner optimizer."""
    set_policy = stack.mixed_precision()
    set_policy("mixed_float16")
    try:
        refused = _recompile_refused(stack)
        if refused:
            pytest.skip("this Keras refuses to compile a model again with the same optimizer "
                        "under mixed precision, Lookahead or not: {}".format(refused))
        model, loss = _one_weight(stack)
        opt = stack.sgd(1.0)
        stack.compile(model, opt, loss=loss)
        Lookahead(k=3, alpha=0.5).inject(model)
        first = model.optimizer
        stack.compile(model, opt, loss=loss)
        assert model.optimizer is not first and "LossScale" in type(model.optimizer).__name__
        ones = np.ones((1, 1), "float32")
        path = []
        for _ in range(10):
            model.train_on_batch(ones, ones)
            path.append(float(model.get_weights()[0][0, 0]))
    finally:
        set_policy("float32")
    assert path == worked_trajectory(10, 10, 3, 0.5)


def test_replaced_optimizer_is_hooked(stack, data):
    """``model.optimizer = new`` after inject (and a first fit): the next fit trains the new
    optimizer with Lookahead, counter and slow weights carrying on."""
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    Lookahead(k=4, alpha=0.5).inject(model)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)  # 6 steps: mid-period
    model.optimizer = stack.sgd(0.1, momentum=0.9)
    train(model, x, y)

    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(4, 0.5)
    ref.fit(x, y, epochs=3, batch_size=4)
    ref.v = [np.zeros_like(v) for v in ref.v]  # the new optimizer starts without momentum
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)


def _custom_step_model(stack, own):
    """A functional model whose ``train_step`` applies its gradients with ``own`` (None: with
    ``self.optimizer``, as Keras' own step does)."""
    keras = stack.keras
    if stack.backend == "jax":
        pytest.skip("a JAX train_step is stateless: an optimizer of its own must be threaded "
                    "through the trainer's state by hand, which no Keras guide does")
    if stack.backend == "torch":
        import torch

        def train_step(self, data):
            x, y = data[0], data[1]
            self.zero_grad()
            ops = keras.ops
            loss = ops.mean(ops.square(self(x, training=True) - ops.convert_to_tensor(y)))
            loss.backward()
            weights = self.trainable_weights
            with torch.no_grad():
                (self.own or self.optimizer).apply([w.value.grad for w in weights], weights)
            return {"loss": loss.detach()}  # Keras 3.8's train_on_batch reads it as numpy
    else:
        tf = stack.tf or __import__("tensorflow")

        def train_step(self, data):
            x, y = data[0], data[1]
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x, training=True) - y))
            weights = self.trainable_weights
            grads = tape.gradient(loss, weights)
            (self.own or self.optimizer).apply_gradients(zip(grads, weights))
            return {"loss": loss}

    cls = type("CustomStep", (keras.Model,), {"train_step": train_step})
    inp = keras.layers.Input((3,))
    hidden = keras.layers.Dense(3, activation="tanh")(inp)
    model = cls(inp, keras.layers.Dense(1)(hidden))
    model.own = own
    return model


@pytest.mark.requires("train_step")
@pytest.mark.parametrize("own", [False, True], ids=["self.optimizer", "own optimizer"])
def test_custom_train_step(stack, data, own):
    """A train_step that applies ``self.optimizer`` is exact; one that applies an optimizer of
    its own (the GAN pattern) never reaches Lookahead's hook: a clear error after the first
    epoch, and at the first train_on_batch."""
    x, y, w0 = data
    model = _custom_step_model(stack, stack.sgd(0.1) if own else None)
    model.set_weights(w0)
    stack.compile(model, stack.sgd(0.1, momentum=0.9))
    Lookahead(k=3, alpha=0.5).inject(model)
    if not own:
        train(model, x, y)
        ref = MLPReference(w0, lr=0.1, momentum=0.9)
        ref.attach(3, 0.5)
        assert_weights(model, train_reference(ref, x, y))
        return
    message = (r"Lookahead is injected into this model, but {} changed its trainable weights "
               r"without going through the hooked optimizer .*optimizers of its own .*"
               r"LookaheadOptimizer")
    with pytest.raises(RuntimeError, match=message.format("the first fit epoch")):
        model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    with pytest.raises(RuntimeError, match=message.format("train_on_batch")):
        model.train_on_batch(x[:4], y[:4])


@pytest.mark.any_compile
@pytest.mark.parametrize("order", ["wrapper, then inject", "inject, then wrapper"])
def test_lookahead_twice_is_refused(stack, data, order):
    """Inject on a model compiled with a LookaheadOptimizer, or compile a model Lookahead is
    injected into with one: a clear error, and the model trains on with the one Lookahead it
    had."""
    stack.skip_without_wrapper()
    x, y, w0 = data
    model = stack.mlp(w0)
    if order == "wrapper, then inject":
        stack.compile(model, keras_lookahead.LookaheadOptimizer(stack.sgd(0.1), k=3, alpha=0.5))
        with pytest.raises(ValueError, match=r"`model` is compiled with a LookaheadOptimizer .*"
                                             r"second Lookahead.*NestedLookahead"):
            Lookahead(k=2, alpha=0.8).inject(model)
        assert "_keras_lookahead" not in vars(model)
    else:
        stack.compile(model, stack.sgd(0.1))
        Lookahead(k=3, alpha=0.5).inject(model)
        with pytest.raises(ValueError, match=r"`optimizer` must not be a LookaheadOptimizer on a "
                                             r"model Lookahead is injected into.*remove\(model\)"):
            stack.compile(model, keras_lookahead.LookaheadOptimizer(stack.sgd(0.1), k=2,
                                                                    alpha=0.8))
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1)
    ref.attach(3, 0.5)
    assert_weights(model, train_reference(ref, x, y))


@pytest.mark.any_compile
def test_callback_is_bound_to_its_model(stack, data):
    """One LookaheadCallback in the callbacks list of two models (cross-validation folds): an
    error on the second, which is left untouched; after reset() it anchors on the second."""
    x, y, w0 = data
    w1 = [w * 0.5 for w in w0]
    callback = LookaheadCallback(k=3, alpha=0.5)
    first = stack.compile(stack.mlp(w0), stack.sgd(0.1))
    first.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    second = stack.compile(stack.mlp(w1), stack.sgd(0.1))
    with pytest.raises(ValueError, match=r"holds the slow weights of the model it first trained"
                                         r".*callback\.reset\(\)"):
        second.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[callback])
    assert_weights(second, w1, atol=0)
    callback.reset()
    second.fit(x, y, batch_size=4, epochs=11, shuffle=False, verbose=0, callbacks=[callback])
    ref = MLPReference(w1, lr=0.1)
    ref.attach(3, 0.5)
    ref.fit(x, y, epochs=11, batch_size=4)
    assert_weights(second, ref.w)


@pytest.mark.any_compile
def test_groups_of_weights_in_turn_are_refused(stack):
    """One LookaheadOptimizer applied to two groups of weights in turn would count both and
    sync only the group whose update ends a period: a clear error at the second group. A group
    that grows (weights made trainable) is fine."""
    stack.skip_without_wrapper()
    if not stack.eager:
        pytest.skip("applies the optimizer eagerly (this stack: {})".format(stack.label))
    model = stack.mlp()
    first, second = model.layers[1].trainable_weights, model.layers[2].trainable_weights
    opt = keras_lookahead.LookaheadOptimizer(stack.sgd(0.1), k=2, alpha=0.5)
    if hasattr(opt, "build"):  # Keras 3, tf.keras 2.11+: built once, on every weight
        opt.build(first + second)
    if stack.family == "keras3":
        def apply(weights):
            opt.apply([stack.keras.ops.ones(w.shape) for w in weights], weights)
    else:
        def apply(weights):
            opt.apply_gradients([(stack.tf.ones_like(w), w) for w in weights])
    apply(first)
    apply(first + second)  # grows: fine
    before = stack.values(first + second)
    with pytest.raises(ValueError, match=r"cannot follow one optimizer applied to different "
                                         r"groups of weights in turn: this update has 2 weights, "
                                         r"2 of the 4 of the previous one are not among them"):
        apply(second)
    for b, a in zip(before, stack.values(first + second)):
        np.testing.assert_array_equal(a, b)  # refused before anything was applied


@pytest.mark.any_compile
@pytest.mark.requires("h5_model")
def test_hdf5_resume_keeps_the_optimizer_state(stack, data, tmp_path):
    """The README's HDF5 recipe: model.save("m.h5") and get_state; later load_model, inject,
    set_state: training resumes exactly, momentum included."""
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    Lookahead(k=3, alpha=0.5).inject(model)
    for i in range(7):
        model.train_on_batch(*batch(x, y, i))
    path = os.path.join(str(tmp_path), "m.h5")
    model.save(path)
    state = keras_lookahead.get_state(model)
    stack.fresh()
    again = stack.keras.models.load_model(path)
    Lookahead(k=3, alpha=0.5).inject(again)
    keras_lookahead.set_state(again, state)
    for i in range(7, 15):
        again.train_on_batch(*batch(x, y, i))
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    for i in range(15):
        ref.step(*batch(x, y, i))
    assert_weights(again, ref.w)
