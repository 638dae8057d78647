"""``LookaheadOptimizer``: Lookahead as an optimizer, in ``compile`` and in custom training loops,
against the numpy reference; its pass-throughs, config and saving. On Keras 3 (every backend),
tf.keras 2.x (``OptimizerV2``, and the 2.11+ optimizer) and tf_keras; on TensorFlow 1.x and
standalone Keras the one test here checks the clear error."""
import os

import numpy as np
import pytest

import keras_lookahead
from reference import MLPReference, worked_trajectory
from helpers import (STEPS_APART, assert_weights, batch, max_gap, skip_unless_float16_overflows,
                     train, train_reference, worked_path)


# These fixtures are the stack; their names are requirements (conftest.FIXTURE_REQUIREMENTS):
# a test taking one is skipped, with the reason, where the stack lacks it.
@pytest.fixture
def wrapped(stack):
    """A stack with LookaheadOptimizer."""
    return stack


@pytest.fixture
def keras3(stack):
    """A Keras 3 stack."""
    return stack


@pytest.fixture
def eager(wrapped):
    """A stack with LookaheadOptimizer, executing eagerly."""
    return wrapped


def wrapper(*args, **kwargs):
    return keras_lookahead.LookaheadOptimizer(*args, **kwargs)


def variable(stack, value):
    if stack.family == "keras3":
        return stack.keras.Variable(value)
    return stack.tf.Variable(value)


@pytest.mark.any_compile
def test_clear_error_where_unsupported(stack):
    if stack.no_wrapper() is None:
        assert wrapper(stack.sgd(0.1)).k == 5
        return
    with pytest.raises(keras_lookahead.UnsupportedVersionError,
                       match=r"LookaheadOptimizer needs Keras 3\.\d+ - 3\.\d+, tf_keras 2\.16 - "
                             r"2\.\d+ or tf\.keras in TensorFlow 2\.0 - 2\.15 in "
                             r".*found TensorFlow 1\.\d+.*inject"):
        wrapper("sgd")


@pytest.mark.any_compile
@pytest.mark.requires("keras3")  # other stacks: test_clear_error_where_unsupported
def test_unsupported_keras3_imports_and_raises_when_used(stack, monkeypatch):
    """On a Keras 3 outside the table, ``from keras_lookahead import LookaheadOptimizer`` works
    (a script importing it must not fail before it runs); making one, or loading one from a
    config, raises UnsupportedVersionError naming the version found and the table."""
    from keras_lookahead import compat
    monkeypatch.setattr(compat, "_bounds", lambda row: ((9, 0), (9, 0)))  # every row: 9.0 only
    from keras_lookahead import LookaheadOptimizer
    for use in (lambda: LookaheadOptimizer("sgd", k=3), lambda: LookaheadOptimizer.from_config(
            {"optimizer": "sgd", "k": 3, "alpha": 0.5})):
        with pytest.raises(keras_lookahead.UnsupportedVersionError) as err:
            use()
        assert "Keras " + stack.keras.__version__ in str(err.value)
        assert keras_lookahead.supported_table() in str(err.value)


@pytest.mark.any_compile
@pytest.mark.optimizer_family
def test_wrapped_optimizer_family(wrapped):
    """On tf.keras 2.11+ a legacy inner optimizer gets the OptimizerV2 wrapper (which Keras'
    loss-scale optimizer accepts); the new family gets the new one."""
    opt = wrapper(wrapped.sgd(0.1))
    if wrapped.family == "keras3":
        assert isinstance(opt, wrapped.keras.optimizers.Optimizer)
        return
    base = (wrapped.keras.optimizers.legacy.Optimizer if wrapped.legacy_optimizer
            else wrapped.keras.optimizers.Optimizer)
    assert isinstance(opt, base)
    assert type(opt).__name__ == ("LegacyLookaheadOptimizer" if wrapped.legacy_optimizer
                                  else "LookaheadOptimizer")


@pytest.mark.core
def test_worked_trajectory_in_fit(wrapped):
    _, path = worked_path(wrapped, None, 10, wrap=lambda sgd: wrapper(sgd, k=3, alpha=0.5))
    assert path == worked_trajectory(10, 10, 3, 0.5)
    assert path == [11, 12, 11.5, 12.5, 13.5, 13, 14, 15, 14.5, 15.5]


@pytest.mark.core
@pytest.mark.parametrize("k,alpha,momentum", [(1, 0.5, 0.0), (3, 0.5, 0.9), (5, 0.8, 0.0),
                                              (4, 0.0, 0.9)])
def test_fit_matches_reference(wrapped, data, k, alpha, momentum):
    x, y, w0 = data
    model = wrapped.compile(wrapped.mlp(w0), wrapper(wrapped.sgd(0.1, momentum), k=k,
                                                     alpha=alpha))
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1, momentum=momentum)
    ref.attach(k, alpha)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    assert max_gap(expected, train_reference(MLPReference(w0, 0.1, momentum), x, y)) > \
        STEPS_APART


def test_fit_with_steps_per_execution_and_jit(wrapped, data):
    extra = {name: value for name, value in (("steps_per_execution", 2), ("jit_compile", True))
             if wrapped.compile_accepts(name)}
    if wrapped.compile_kwargs.get("run_eagerly") or wrapped.backend == "torch" or not extra:
        pytest.skip("steps_per_execution/jit_compile: not with run_eagerly, nor on torch "
                    "(Keras refuses steps_per_execution > 1; jit is torch.compile, minutes), "
                    "nor where compile() has neither (TF < 2.4)")
    x, y, w0 = data
    model = wrapped.compile(wrapped.mlp(w0), wrapper(wrapped.sgd(0.1, 0.9), k=3, alpha=0.5),
                            **extra)
    train(model, x, y, on_batch=False)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    assert_weights(model, train_reference(ref, x, y))


def test_gradient_accumulation_counts_applied_updates(keras3, data):
    x, y, w0 = data
    inner = keras3.sgd(0.1, momentum=0.9, gradient_accumulation_steps=2)
    model = keras3.compile(keras3.mlp(w0), wrapper(inner, k=3, alpha=0.5))
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1, momentum=0.9, accumulate=2)
    ref.attach(3, 0.5)
    assert_weights(model, train_reference(ref, x, y))


@pytest.mark.requires("mixed_precision")
def test_mixed_precision_wraps_the_wrapper(wrapped):
    """Under mixed_float16, Keras wraps the compiled LookaheadOptimizer in its loss-scale
    optimizer, which calls it only on finite gradients: skipped steps are not counted."""
    set_policy = wrapped.mixed_precision()
    set_policy("mixed_float16")
    try:
        skip_unless_float16_overflows(wrapped)
        model, path = worked_path(wrapped, None, 22, lr=0.001, loss_factor=1000.0,
                                  wrap=lambda sgd: wrapper(sgd, k=3, alpha=0.5))
        assert "LossScaleOptimizer" in type(model.optimizer).__name__
    finally:
        set_policy("float32")
    skipped = next(i for i, w in enumerate(path) if w != 10.0)
    assert skipped >= 3, path
    np.testing.assert_allclose(path[skipped:], worked_trajectory(10, 22 - skipped, 3, 0.5),
                               atol=1e-5)
    slow = wrapped.values(model.optimizer.inner_optimizer.slow_weights())
    assert all(s.dtype == np.float32 and np.all(np.isfinite(s)) for s in slow)


def _loss_and_grads(stack, weights, x, y):
    """MSE of the reference MLP and its gradients, by the backend's own autodiff."""
    ops = stack.keras.ops if stack.family == "keras3" else stack.tf

    def loss_of(w1, b1, w2, b2):
        out = ops.matmul(ops.tanh(ops.matmul(x, w1) + b1), w2) + b2
        return ops.reduce_mean(ops.square(out - y)) if stack.family != "keras3" else \
            ops.mean(ops.square(out - y))

    if stack.backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_of(*weights)
        return loss, tape.gradient(loss, weights)
    if stack.backend == "jax":
        import jax
        return jax.value_and_grad(lambda ws: loss_of(*ws))(list(weights))
    import torch
    values = [w.value for w in weights]
    for v in values:
        v.grad = None
    loss = loss_of(*values)
    loss.backward()
    return loss, [v.grad.clone() for v in values]


@pytest.mark.any_compile
def test_custom_training_loop(eager, data):
    """The backend's own loop: GradientTape + apply_gradients on TensorFlow; stateless_apply on
    JAX (values threaded by hand); backward() + apply on torch."""
    keras3 = eager
    x, y, w0 = data
    weights = [variable(keras3, w) for w in w0]
    opt = wrapper(keras3.sgd(0.1, momentum=0.9), k=3, alpha=0.5)
    if keras3.family == "keras3":
        opt.build(weights)
    if keras3.backend == "jax":
        import jax
        train_vars, opt_vars = [w.value for w in weights], [v.value for v in opt.variables]

        @jax.jit
        def step(train_vars, opt_vars, xb, yb):
            _, grads = _loss_and_grads(keras3, train_vars, xb, yb)
            return opt.stateless_apply(opt_vars, grads, train_vars)

    for i in range(22):
        xb, yb = batch(x, y, i)
        if keras3.backend == "jax":
            train_vars, opt_vars = step(train_vars, opt_vars, xb, yb)
            continue
        if keras3.family == "keras3":
            xb, yb = keras3.keras.ops.convert_to_tensor(xb), keras3.keras.ops.convert_to_tensor(yb)
        _, grads = _loss_and_grads(keras3, weights, xb, yb)
        opt.apply_gradients(zip(grads, weights))
    if keras3.backend == "jax":
        for w, v in zip(weights, train_vars):
            w.assign(v)
        for w, v in zip(opt.variables, opt_vars):
            w.assign(v)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    for i in range(22):
        ref.step(*batch(x, y, i))
    got = keras3.values(weights)
    for g, e in zip(got, ref.w):
        np.testing.assert_allclose(g, e, atol=2e-5, rtol=0)
    assert int(keras3.values([opt.iterations])[0]) == 22
    for g, e in zip(keras3.values(opt.slow_weights(weights)), ref.lookahead.slow):
        np.testing.assert_allclose(g, e, atol=2e-5, rtol=0)


@pytest.mark.any_compile
def test_pass_throughs(eager):
    stack = eager
    adam = stack.keras.optimizers.legacy.Adam if stack.legacy_optimizer else \
        stack.keras.optimizers.Adam
    inner = adam(learning_rate=0.01)
    opt = wrapper(inner, k=2)
    assert opt.inner_optimizer is inner
    assert float(stack.values([opt.learning_rate])[0]) == pytest.approx(0.01)
    opt.learning_rate = 0.05
    assert float(stack.values([inner.learning_rate])[0]) == pytest.approx(0.05)
    weights = [variable(stack, np.ones((2, 2), "float32"))]
    if stack.family == "keras3":
        opt.build(weights)
        names = [v.path for v in opt.variables]
        inner_names = [v.path for v in inner.variables]
    else:  # tf.keras: built by the first update
        opt.apply_gradients([(np.zeros((2, 2), "float32"), weights[0])])
        listed = opt.variables() if callable(opt.variables) else opt.variables
        names = [v.name for v in listed]
        inner_listed = inner.variables() if callable(inner.variables) else inner.variables
        inner_names = [v.name for v in inner_listed]
        if hasattr(opt, "get_weights"):  # OptimizerV2
            assert len(opt.get_weights()) == len(names)
    assert opt.iterations is inner.iterations
    assert inner_names and all(n in names for n in inner_names)  # the inner's, listed
    assert any("lookahead_counter" in n for n in names)
    assert any("slow" in n for n in names)
    assert isinstance(wrapper("adam").inner_optimizer, stack.keras.optimizers.Adam)


def test_reduce_lr_on_plateau_reaches_the_inner_optimizer(wrapped, data):
    keras3 = wrapped
    x, y, w0 = data
    keras = keras3.keras
    inner = keras3.sgd(0.1)
    model = keras3.compile(keras3.mlp(w0), wrapper(inner, k=2))
    # min_delta=1e9: no epoch counts as an improvement, so the rate is cut after epoch 2
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                                min_delta=1e9, verbose=0)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0, callbacks=[plateau])
    assert float(keras3.values([inner.learning_rate])[0]) < 0.1


@pytest.mark.any_compile
def test_config_round_trip(wrapped):
    keras = wrapped.keras
    adam = keras.optimizers.legacy.Adam if wrapped.legacy_optimizer else keras.optimizers.Adam
    opt = wrapper(adam(learning_rate=0.003), k=7, alpha=0.25, name="la")
    config = keras.optimizers.serialize(opt)
    again = keras.optimizers.deserialize(config)  # registered: no custom_objects needed
    assert type(again) is type(opt)
    assert (again.k, again.alpha, again.pullback) == (7, 0.25, "none")
    assert isinstance(again.inner_optimizer, adam)
    assert float(wrapped.values([again.learning_rate])[0]) == pytest.approx(0.003)


@pytest.mark.any_compile
@pytest.mark.core
def test_tf_addons_argument_names(wrapped):
    """TF Addons' names for k and alpha (``sync_period``, ``slow_step_size``) are taken too; the
    config writes ours and reads back to the same optimizer; one argument under both names is
    an error even when a value equals the default, and a bad value is named as passed."""
    opt = wrapper(wrapped.sgd(0.1), sync_period=3, slow_step_size=0.25)
    assert (opt.k, opt.alpha) == (3, 0.25)
    config = opt.get_config()
    assert (config["k"], config["alpha"]) == (3, 0.25) and "sync_period" not in config
    again = type(opt).from_config(config)
    assert (type(again), again.k, again.alpha) == (type(opt), 3, 0.25)
    for kwargs, match in [
            ({"k": 5, "sync_period": 6},
             r"Pass `k` or `sync_period`, not both.*\. Received: k=5, sync_period=6$"),
            ({"alpha": 0.5, "slow_step_size": 0.5},
             r"Pass `alpha` or `slow_step_size`, not both.*Received: alpha=0.5, "
             r"slow_step_size=0.5$"),
            ({"sync_period": 0}, r"`sync_period` must be an integer >= 1\. Received: "
                                 r"sync_period=0"),
            ({"slow_step_size": 2}, r"`slow_step_size` must be a real number in the range "
                                    r"\[0, 1\]\. Received: slow_step_size=2")]:
        with pytest.raises(ValueError, match=match):
            wrapper("sgd", **kwargs)


@pytest.mark.any_compile
@pytest.mark.core
@pytest.mark.requires("tf_keras_family", reason="TF Addons' Lookahead is a tf.keras optimizer")
def test_reads_tf_addons_config(wrapped):
    """A config as TF Addons' ``Lookahead.get_config()`` writes it (the inner optimizer through
    ``tf.keras.optimizers.serialize``; clipping set on the wrapper, where TF Addons applies it and
    never the inner optimizer's) makes the OptimizerV2 wrapper, whatever the class asked, with
    TF Addons' clipping on the inner optimizer; its own config then round-trips."""
    keras = wrapped.keras
    legacy = getattr(keras.optimizers, "legacy", keras.optimizers)
    config = {"name": "Lookahead", "clipnorm": 1.0, "is_legacy_optimizer": True,
              "optimizer": keras.optimizers.serialize(legacy.Adam(0.003, clipnorm=5.0)),
              "sync_period": 3, "slow_step_size": 0.25}
    opt = keras_lookahead.LookaheadOptimizer.from_config(config)
    expected = type(wrapper(legacy.SGD()))  # the wrapper of a legacy optimizer
    assert type(opt) is expected
    assert (opt.k, opt.alpha, opt.pullback) == (3, 0.25, "none")
    # an OptimizerV2 Adam (on 2.9 / 2.10 not the `legacy` subclass: the config names "Adam")
    assert type(opt.inner_optimizer).__name__ == "Adam"
    assert hasattr(opt.inner_optimizer, "get_slot_names")
    assert opt.inner_optimizer.get_config()["clipnorm"] == 1.0
    assert float(wrapped.values([opt.learning_rate])[0]) == pytest.approx(0.003)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is expected
    assert (again.k, again.alpha) == (3, 0.25)
    assert again.inner_optimizer.get_config()["clipnorm"] == 1.0


@pytest.mark.any_compile
@pytest.mark.core
@pytest.mark.requires("tf_keras_family", reason="TF Addons' Lookahead is a tf.keras optimizer")
def test_reads_tf_addons_weight_order(eager):
    """An optimizer made from TF Addons' config reads TF Addons' list of weights (what its HDF5
    files hold: its step count, the slow copies, the inner optimizer's weights without an
    iterations of their own): the step count goes to the inner iterations and our counter.
    Our own list, one longer, is still read as ours."""
    keras, tf = eager.keras, eager.tf
    legacy = getattr(keras.optimizers, "legacy", keras.optimizers)
    opt = keras_lookahead.LookaheadOptimizer.from_config(
        {"name": "Lookahead", "optimizer": keras.optimizers.serialize(legacy.Adam(0.01)),
         "sync_period": 3, "slow_step_size": 0.5})
    weights = [tf.Variable(np.ones((2, 3), "float32")), tf.Variable(np.ones(3, "float32"))]
    opt.apply_gradients([(tf.zeros_like(w), w) for w in weights])  # makes every variable
    shapes = [(2, 3), (3,)]
    slow, m, v = ([np.full(shape, i + base, "float32") for i, shape in enumerate(shapes)]
                  for base in (10, 20, 30))
    opt.set_weights([np.array(7, "int64")] + slow + m + v)
    inner = opt.inner_optimizer
    assert int(opt.iterations.numpy()) == int(inner.iterations.numpy()) == 7
    ours = opt.get_weights()
    assert len(ours) == 1 + 2 + 2 + 1 + 2  # inner: iterations, m, v; counter; slow copies
    assert int(ours[len(inner.weights)]) == 7  # the counter
    for expected, got in [(slow, opt.slow_weights(weights)),
                          (m, [inner.get_slot(w, "m") for w in weights]),
                          (v, [inner.get_slot(w, "v") for w in weights])]:
        for e, g in zip(expected, got):
            np.testing.assert_array_equal(g.numpy(), e)
    again = [a + 1 for a in ours]
    opt.set_weights(again)
    for e, g in zip(again, opt.get_weights()):
        np.testing.assert_array_equal(g, e)


@pytest.mark.any_compile
def test_save_and_load_model_resume_exactly(wrapped, data, tmp_path):
    """model.save / load_model without custom_objects (Keras 3: .keras; tf.keras: HDF5);
    training on continues as if uninterrupted (7 steps: mid-period for k = 3)."""
    keras3 = wrapped
    keras = keras3.keras
    x, y, w0 = data
    model = keras3.compile(keras3.mlp(w0), wrapper(keras3.sgd(0.1, 0.9), k=3, alpha=0.5))
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model.train_on_batch(x[:4], y[:4])
    path = os.path.join(str(tmp_path), "model.keras" if keras3.family == "keras3" else "model.h5")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer).__name__ == type(model.optimizer).__name__
    assert "LookaheadOptimizer" in type(loaded.optimizer).__name__
    for m in (model, loaded):
        m.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    ref.fit(x, y, epochs=3, batch_size=4)
    ref.step(x[:4], y[:4])
    ref.fit(x, y, epochs=4, batch_size=4)
    assert_weights(model, ref.w)
    assert_weights(loaded, ref.w)


@pytest.mark.any_compile
@pytest.mark.requires("tf_keras_family", reason="Keras 3 saves a whole model as .keras; its "
                                                "SavedModel export is for inference")
@pytest.mark.requires("eager", reason="in a TF1-style graph, a SavedModel-loaded model whose "
                                      "weights were read cannot be trained (TensorFlow's cond "
                                      "gradient: 'Connecting to invalid output'), with a bare "
                                      "optimizer too")
def test_saved_model_round_trip(wrapped, data, tmp_path):
    """tf.keras / tf_keras SavedModel (model.save(dir, save_format="tf")) then load_model, for
    both optimizer families. Keras restores the weights and compiles a new optimizer from the
    saved config (its state starts over, as for a bare optimizer): the loaded model trains on
    with that LookaheadOptimizer, anchored at the loaded weights."""
    x, y, w0 = data
    model = wrapped.compile(wrapped.mlp(w0), wrapper(wrapped.sgd(0.1, 0.9), k=3, alpha=0.5))
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model.train_on_batch(x[:4], y[:4])
    path = os.path.join(str(tmp_path), "saved_model")
    model.save(path, save_format="tf")
    loaded = wrapped.keras.models.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert (loaded.optimizer.k, loaded.optimizer.alpha) == (3, 0.5)
    start = loaded.get_weights()
    assert_weights(loaded, model.get_weights(), atol=0)
    ref, bare = MLPReference(start, lr=0.1, momentum=0.9), MLPReference(start, 0.1, 0.9)
    ref.attach(3, 0.5)
    loaded.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    ref.fit(x, y, epochs=4, batch_size=4)
    bare.fit(x, y, epochs=4, batch_size=4)
    assert_weights(loaded, ref.w)
    assert max_gap(ref.w, bare.w) > STEPS_APART  # Lookahead is on after loading


@pytest.mark.parametrize("kwargs,match", [
    ({"k": 0}, r"`k` must be an integer >= 1\. Received: k=0"),
    ({"alpha": 1.5}, r"`alpha` must be a real number in the range \[0, 1\]\. Received: alpha=1.5"),
    ({"pullback": "sometimes"}, r"`pullback` must be one of .*Received: pullback='sometimes'"),
    ({"clipnorm": 1.0}, r"does not take `clipnorm`: set it on the inner optimizer"),
])
@pytest.mark.any_compile
@pytest.mark.core
def test_bad_arguments(wrapped, kwargs, match):
    with pytest.raises(ValueError, match=match):
        wrapper("sgd", **kwargs)


@pytest.mark.any_compile
@pytest.mark.core
def test_bad_inner_optimizer(wrapped):
    keras = wrapped.keras
    with pytest.raises(ValueError, match=r"`optimizer` must be a (Keras|tf\.keras) .*Received: "
                                         r"optimizer="):
        wrapper("no-such-optimizer")
    with pytest.raises(ValueError, match=r"must not be a LookaheadOptimizer: Lookahead inside "
                                         r"Lookahead is NestedLookahead\(k, alpha, s, h\)"):
        wrapper(wrapper(wrapped.sgd(0.1)))
    lso = getattr(getattr(keras, "mixed_precision", None), "LossScaleOptimizer", None)
    if lso is None:
        pytest.skip("no keras.mixed_precision.LossScaleOptimizer on this stack (TF >= 2.4)")
    with pytest.raises(ValueError, match=r"not a wrapper such as LossScaleOptimizer"):
        wrapper(lso(wrapped.sgd(0.1)))


@pytest.mark.parametrize("pullback", ["reset", "pullback"])
@pytest.mark.parametrize("api", ["inject", "wrapper", "nested"])
def test_pullback_matches_reference(stack, data, api, pullback):
    """Pullback momentum on SGD(momentum=0.9) against the reference; "pullback" must differ from
    the aliased form the official code has (v_cached = v, updated in place: v <- a(2 - a) v)."""
    x, y, w0 = data
    if stack.family == "standalone":
        model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
        with pytest.raises(ValueError, match=r"`pullback='\w+'` needs the inner optimizer's "
                                             r"momentum, which SGD .* builds out of reach"):
            keras_lookahead.Lookahead(k=3, pullback=pullback).inject(model)
        assert "_keras_lookahead" not in vars(model)
        train(model, x, y)  # still trainable, as it was
        assert_weights(model, train_reference(MLPReference(w0, lr=0.1, momentum=0.9), x, y))
        return
    if api == "wrapper":
        stack.skip_without_wrapper()
    if api == "wrapper":
        model = stack.compile(stack.mlp(w0), wrapper(stack.sgd(0.1, 0.9), k=3, alpha=0.5,
                                                     pullback=pullback))
    else:
        model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
        la = (keras_lookahead.NestedLookahead(k=2, alpha=0.5, s=2, h=0.6, pullback=pullback)
              if api == "nested" else keras_lookahead.Lookahead(k=3, alpha=0.5,
                                                                pullback=pullback))
        la.inject(model)
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    levels = (2, 0.5, 2, 0.6) if api == "nested" else (3, 0.5, None, None)
    ref.attach(*levels, pullback=pullback)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    plain = MLPReference(w0, lr=0.1, momentum=0.9)
    plain.attach(*levels)
    assert max_gap(expected, train_reference(plain, x, y)) > STEPS_APART


def _optimizers(stack):
    if stack.family != "keras3" and stack.legacy_optimizer:
        return stack.keras.optimizers.legacy
    return stack.keras.optimizers


@pytest.mark.any_compile
@pytest.mark.parametrize("api", ["inject", "wrapper"])
def test_pullback_needs_momentum(stack, data, api):
    if stack.family == "standalone" or (api == "wrapper" and stack.no_wrapper()):
        pytest.skip("see test_pullback_matches_reference / test_clear_error_where_unsupported")
    optimizers = _optimizers(stack)
    x, y, w0 = data
    for inner in (optimizers.SGD(learning_rate=0.1), optimizers.Adagrad(learning_rate=0.1)):
        if api == "wrapper":
            # Keras 3 checks when the optimizer is built, tf.keras when it is made
            with pytest.raises(ValueError, match=r"`pullback='reset'` acts on the inner "
                                                 r"optimizer's momentum, but \w+ keeps no"):
                model = stack.compile(stack.mlp(w0), wrapper(inner, pullback="reset"))
                model.train_on_batch(x[:4], y[:4])
            continue
        model = stack.compile(stack.mlp(w0), inner)
        with pytest.raises(ValueError, match=r"keeps no momentum-like state"):
            keras_lookahead.Lookahead(pullback="pullback").inject(model)
        assert "_keras_lookahead" not in vars(model)


def _first_moments(stack, model):
    optimizer = model.optimizer
    if stack.family == "keras3" or not hasattr(optimizer, "get_slot"):
        return stack.values(optimizer._momentums)
    return stack.values([optimizer.get_slot(w, "m") for w in model.trainable_weights])


@pytest.mark.requires("pullback")
def test_pullback_reaches_adam_first_moment(stack, data):
    """On Adam, "reset" zeroes the first moment at each sync (and only then)."""
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), _optimizers(stack).Adam(learning_rate=0.01))
    keras_lookahead.Lookahead(k=2, pullback="reset").inject(model)
    firsts = []
    for i in range(4):
        model.train_on_batch(x[:4], y[:4])
        firsts.append(_first_moments(stack, model))
    for step, m in enumerate(firsts, 1):
        zero = all(np.all(v == 0) for v in m)
        assert zero == (step % 2 == 0), (step, m)
