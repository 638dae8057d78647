"""``Lookahead.inject`` on the stack selected in conftest, against the numpy reference.

Each exactness test trains >= 20 steps over two ``fit`` calls and ``train_on_batch`` and compares
the weights with ``reference.py``; where Lookahead should change the result, it also checks that
the plain-SGD path ends far away, so a hook that silently never fires fails here.
"""
import sys

import numpy as np
import pytest

import keras_lookahead
from keras_lookahead import Lookahead, NestedLookahead, compat, remove
from helpers import (ATOL, STEPS_APART, assert_no_trace, assert_weights, make_optimizer, max_gap,
                     n_variables, traces, train, train_reference, worked_path)
from reference import MLPReference

@pytest.mark.core
def test_worked_trajectory(stack):
    """docs/design.md: theta0 = 10, every update adds 1 (SGD(1) on loss -w), k = 3, alpha = .5."""
    _, path = worked_path(stack, Lookahead(k=3, alpha=0.5), 10)
    assert path == [11, 12, 11.5, 12.5, 13.5, 13, 14, 15, 14.5, 15.5]


def test_nested_worked_trajectory(stack):
    """docs/design.md: theta0 = 10, +1 per update, k = 2, alpha = .5, s = 2, h = .5."""
    _, path = worked_path(stack, NestedLookahead(k=2, alpha=0.5, s=2, h=0.5), 8)
    assert path == [11, 11, 12, 11, 12, 12, 13, 12]


@pytest.mark.core
@pytest.mark.parametrize("k,alpha,s,h", [(2, 0.5, 3, 0.6), (3, 0.8, 2, 0.3)])
def test_nested_matches_reference(stack, data, k, alpha, s, h):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    NestedLookahead(k=k, alpha=alpha, s=s, h=h).inject(model)
    train(model, x, y)

    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(k, alpha, s, h)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    plain_la = MLPReference(w0, lr=0.1, momentum=0.9)
    plain_la.attach(k, alpha)
    assert max_gap(expected, train_reference(plain_la, x, y)) > STEPS_APART


#: (k, alpha, momentum): the rule's edges (k = 1 syncs every step; alpha = 1 is the inner
#: optimizer alone, alpha = 0 keeps the anchor) with and without momentum, on a Keras optimizer;
#: a tf.train optimizer (the other update inject hooks) on one case without momentum and one with
#: (which update runs and what the rule does are independent: pairs, not the product)
RULE_CASES = [(1, 0.5, 0.0), (3, 0.5, 0.0), (5, 0.8, 0.9), (2, 1.0, 0.0), (4, 0.0, 0.9),
              (6, 0.3, 0.0)]


@pytest.mark.core
@pytest.mark.parametrize("optimizer,k,alpha,momentum",
                         [("keras",) + case for case in RULE_CASES]
                         + [("tf.train",) + case for case in RULE_CASES[1:3]])
def test_matches_reference(stack, data, optimizer, k, alpha, momentum):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), make_optimizer(stack, optimizer, 0.1, momentum))
    Lookahead(k=k, alpha=alpha).inject(model)
    train(model, x, y)

    ref = MLPReference(w0, lr=0.1, momentum=momentum)
    ref.attach(k, alpha)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    plain = train_reference(MLPReference(w0, lr=0.1, momentum=momentum), x, y)
    if alpha < 1:
        assert max_gap(expected, plain) > STEPS_APART  # the test can tell Lookahead from SGD
    else:
        assert max_gap(expected, plain) < ATOL


@pytest.mark.optimizer_family
def test_first_fit_traces_once_with_optimizer_v2(stack, data):
    """inject makes an OptimizerV2's state (tf.keras 2.2 - 2.10, the legacy optimizers after)
    before the first fit, whose train function is then traced once: a traced step that creates
    variables is traced twice, as a bare model's is here. Exact all the same."""
    x, y, w0 = data
    if stack.family != "tf" or stack.compile_kwargs or not stack.eager or \
            not hasattr(stack.sgd(0.1), "_create_all_weights"):
        pytest.skip("inject makes the optimizer's state ahead on tf.keras' OptimizerV2 with a "
                    "traced train step (TF 2.2+) only ({})".format(stack.label))
    counts = []
    for inject in (False, True):
        model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
        if inject:
            Lookahead(k=3, alpha=0.5).inject(model)
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        count = getattr(model.train_function, "experimental_get_tracing_count", None)
        if count is None:
            pytest.skip("tf.function counts its traces from TF 2.3 ({})".format(stack.label))
        counts.append(count())
    assert counts == [2, 1]
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    ref.fit(x, y, epochs=2, batch_size=4)
    assert_weights(model, ref.w)


def test_inject_after_fit(stack, data):
    """Weights trained before inject become the anchor; the cached train function is rebuilt,
    and the momentum the first fit built carries on (standalone Keras rebuilds the optimizer's
    state variables with its update ops)."""
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model.train_on_batch(x[:4], y[:4])
    Lookahead(k=3, alpha=0.5).inject(model)
    train(model, x, y)

    def before(ref):
        ref.fit(x, y, epochs=3, batch_size=4)
        ref.step(x[:4], y[:4])
        return ref

    ref = before(MLPReference(w0, lr=0.1, momentum=0.9))
    ref.attach(3, 0.5)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    lost = before(MLPReference(w0, lr=0.1, momentum=0.9))
    lost.v = [np.zeros_like(v) for v in lost.v]
    lost.attach(3, 0.5)
    assert max_gap(expected, train_reference(lost, x, y)) > STEPS_APART


@pytest.mark.parametrize("new_optimizer", [False, True])
def test_recompile_keeps_lookahead(stack, data, new_optimizer):
    """compile again (same or new optimizer): Lookahead, its counter and slow weights carry on."""
    x, y, w0 = data
    opt = stack.sgd(0.1)
    model = stack.compile(stack.mlp(w0), opt)
    Lookahead(k=4, alpha=0.5).inject(model)
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)  # 6 steps: mid-period
    stack.compile(model, stack.sgd(0.1) if new_optimizer else opt)
    train(model, x, y)

    ref = MLPReference(w0, lr=0.1)
    ref.attach(4, 0.5)
    ref.fit(x, y, epochs=3, batch_size=4)
    assert_weights(model, train_reference(ref, x, y))


def test_frozen_layers_and_batchnorm_statistics_untouched(stack, data):
    x, y, _ = data
    runs = []
    for inject in (True, False):
        stack.fresh()
        model = stack.mlp(frozen_hidden=True, batchnorm=True)
        init = model.get_weights()
        stack.compile(model, stack.sgd(0.1))
        if inject:
            Lookahead(k=3, alpha=0.5).inject(model)
            state = vars(model)["_keras_lookahead"].state
            assert len(state._slots) == len(model.trainable_weights) == 4  # BN gamma/beta, Dense
        train(model, x, y)
        bn, hidden = model.layers[1], model.layers[2]
        runs.append(dict(
            stats=stack.values([bn.moving_mean, bn.moving_variance]),
            hidden=hidden.get_weights(), init_hidden=[init[4], init[5]],
            trainable=stack.values(model.trainable_weights)))
    with_la, without = runs
    for a, b in zip(with_la["stats"], without["stats"]):
        np.testing.assert_array_equal(a, b)  # BN sees the data directly: same statistics
    assert not np.allclose(with_la["stats"][0], 0)  # and they did move
    for run in runs:
        for got, init in zip(run["hidden"], run["init_hidden"]):
            np.testing.assert_array_equal(got, init)  # the frozen layer never moved
    assert max_gap(with_la["trainable"], without["trainable"]) > STEPS_APART


def test_remove_restores_the_bare_optimizer(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1))
    before = traces(model)
    Lookahead(k=2, alpha=0.5).inject(model)
    remove(model)
    assert_no_trace(model, before)
    for hook in ("apply", "apply_gradients", "get_updates"):
        assert hook not in vars(model.optimizer)
    train(model, x, y)
    assert_weights(model, train_reference(MLPReference(w0, lr=0.1), x, y))
    with pytest.raises(ValueError, match="has no Lookahead"):
        remove(model)


@pytest.mark.any_compile
def test_inject_twice_is_an_error_and_keeps_the_first(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1))
    Lookahead(k=3, alpha=0.5).inject(model)
    with pytest.raises(RuntimeError, match=r"already injected.*Lookahead\(k=3, alpha=0.5\)"):
        Lookahead(k=2, alpha=0.9).inject(model)
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1)
    ref.attach(3, 0.5)
    assert_weights(model, train_reference(ref, x, y))


@pytest.mark.any_compile
def test_uncompiled_model(stack):
    model = stack.mlp()
    with pytest.raises(ValueError, match=r"must be compiled.*model\.compile\("):
        Lookahead().inject(model)
    assert "_keras_lookahead" not in vars(model)


@pytest.mark.any_compile
@pytest.mark.parametrize("thing", ["model", 3, None])
def test_not_a_model(stack, thing):
    with pytest.raises(TypeError, match=r"`model` must be a Keras Model\. Received: model="):
        Lookahead().inject(thing)


@pytest.mark.any_compile
def test_a_layer_is_not_a_model(stack):
    layer = stack.keras.layers.Dense(2)
    with pytest.raises(TypeError, match=r"must be a Keras Model.*Dense"):
        Lookahead().inject(layer)


@pytest.mark.any_compile
def test_no_trainable_weights(stack):
    model = stack.mlp(frozen_hidden=True)
    model.layers[-1].trainable = False
    stack.compile(model, stack.sgd(0.1))
    with pytest.raises(ValueError, match="no trainable weights"):
        Lookahead().inject(model)


def test_failed_inject_leaves_the_model_as_it_was(stack, data, monkeypatch):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1))
    model.train_on_batch(x[:4], y[:4])  # builds what fit builds (Keras 3: the optimizer)
    before, opt_attrs = traces(model), dict(vars(model.optimizer))
    n_opt_vars = n_variables(model.optimizer)
    original_patch = keras_lookahead.lookahead.Patch

    def failing_patch(obj, name, replacement):
        if name == "compile":
            raise RuntimeError("simulated failure")
        return original_patch(obj, name, replacement)

    monkeypatch.setattr(keras_lookahead.lookahead, "Patch", failing_patch)
    with pytest.raises(RuntimeError, match="simulated failure"):
        Lookahead(k=2, alpha=0.5).inject(model)
    assert_no_trace(model, before)
    assert set(vars(model.optimizer)) == set(opt_attrs)
    assert all(vars(model.optimizer)[n] is v for n, v in opt_attrs.items())
    assert n_opt_vars == n_variables(model.optimizer)
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1)
    ref.step(x[:4], y[:4])
    assert_weights(model, train_reference(ref, x, y))


@pytest.mark.any_compile
def test_unsupported_version_names_it_and_the_table(stack, monkeypatch):
    model = stack.compile(stack.mlp(), stack.sgd(0.1))
    monkeypatch.setattr(compat, "_bounds", lambda row: ((9, 0), (9, 0)))  # every row: 9.0 only
    if stack.family == "standalone":
        found = "Keras " + stack.keras.__version__
    elif stack.family == "keras3":
        found = "Keras {} with the {} backend".format(stack.keras.__version__, stack.backend)
    else:
        root = type(model).__module__.split(".")[0]  # tensorflow, keras or tf_keras
        found = sys.modules[root].__version__
    with pytest.raises(keras_lookahead.UnsupportedVersionError) as err:
        Lookahead().inject(model)
    message = str(err.value)
    assert found in message
    assert keras_lookahead.supported_table() in message
    assert "standalone Keras" in message and "TensorFlow 1.14 - 2.15" in message
    assert "_keras_lookahead" not in vars(model)


@pytest.mark.parametrize("lookahead,attach", [
    (NestedLookahead(k=2, alpha=0.5, s=3, h=0.6), dict(k=2, alpha=0.5, s=3, h=0.6)),
    (Lookahead(k=3, alpha=0.8, pullback="pullback"), dict(k=3, alpha=0.8, pullback="pullback")),
    (Lookahead(k=3, alpha=0.8), dict(k=3, alpha=0.8))])
def test_sync_in_pieces_matches_reference(stack, data, monkeypatch, lookahead, attach):
    """A sync goes over the weights in pieces, one after the other (peak memory: 64 MiB on
    TensorFlow, and on torch where it is not fused; on JAX one loop per 4 MiB): with a limit of
    one byte every weight is its own piece, and training is still exact (nested, pullback and
    plain)."""
    if stack.family == "standalone" and attach.get("pullback"):
        pytest.skip("standalone Keras' SGD builds its momentum out of pullback's reach")
    monkeypatch.setattr(compat._slots, "PIECE_BYTES", 1)
    if stack.family == "keras3":
        from keras_lookahead.compat import _keras3
        monkeypatch.setattr(_keras3, "_LOOP_BYTES", 1)
    assert list(compat._slots.pieces([4, 4, 4], 1)) == [[0], [1], [2]]
    assert list(compat._slots.pieces([4, 4, 4], 8)) == [[0, 1], [2]]
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    lookahead.inject(model)
    train(model, x, y)
    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(**attach)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    plain = train_reference(MLPReference(w0, lr=0.1, momentum=0.9), x, y)
    assert max_gap(expected, plain) > STEPS_APART
