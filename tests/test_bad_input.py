"""Every public entry point, fed each kind of bad input it can get: a clear error (the argument,
the rule, the value received), and a model that trains afterwards exactly as it did before.

One table per kind: arguments checked when an object is made, and calls on a model. The model
rows train one step, make the bad call, then train 22 more steps and compare all 23 with the
numpy reference of what the model had before the call (bare SGD, or Lookahead if it was
injected), so an error that leaves a half-made hook behind fails here.
"""
import numpy as np
import pytest

import keras_lookahead
from keras_lookahead import (Lookahead, LookaheadCallback, NestedLookahead, ValidateOnSlowWeights,
                             get_state, remove, set_state, slow_weights)
from reference import MLPReference
from helpers import assert_weights, batch

pytestmark = [pytest.mark.any_compile, pytest.mark.core]


def _graph():
    try:
        from keras_lookahead import graph
        import tensorflow  # noqa: F401
    except ImportError as err:
        pytest.skip("graph.BaseLookAhead needs TensorFlow, not importable here: {}".format(err))
    return graph


def _wrapper(stack, **kwargs):
    return keras_lookahead.LookaheadOptimizer(stack.sgd(0.1), **kwargs)


# (what, make it, error type, message pattern)
CONSTRUCTION = [
    ("Lookahead k", lambda s: Lookahead(k=0), ValueError,
     r"`k` must be an integer >= 1\. Received: k=0"),
    ("Lookahead k float", lambda s: Lookahead(k=2.5), ValueError,
     r"`k` must be an integer >= 1\. Received: k=2\.5 \(of type float\)"),
    ("Lookahead alpha", lambda s: Lookahead(alpha=-0.5), ValueError,
     r"`alpha` must be a real number in the range \[0, 1\]\. Received: alpha=-0\.5"),
    ("Lookahead pullback", lambda s: Lookahead(pullback="always"), ValueError,
     r"`pullback` must be one of \"none\", \"reset\", \"pullback\"\. "
     r"Received: pullback='always'"),
    ("NestedLookahead s", lambda s: NestedLookahead(s=-1), ValueError,
     r"`s` must be an integer >= 0\. Received: s=-1"),
    ("NestedLookahead h", lambda s: NestedLookahead(h=2), ValueError,
     r"`h` must be a real number in the range \[0, 1\]\. Received: h=2"),
    ("NestedLookahead alpha", lambda s: NestedLookahead(alpha=None), ValueError,
     r"`alpha` must be a real number .*Received: alpha=None"),
    ("LookaheadCallback k", lambda s: LookaheadCallback(k="5"), ValueError,
     r"`k` must be an integer >= 1\. Received: k='5' \(of type str\)"),
    ("LookaheadCallback alpha", lambda s: LookaheadCallback(alpha=float("nan")), ValueError,
     r"`alpha` must be a real number in the range \[0, 1\]\. Received: alpha=nan"),
    ("ValidateOnSlowWeights level", lambda s: ValidateOnSlowWeights(level=-1), ValueError,
     r"`level` must be an integer >= 0\. Received: level=-1"),
    ("ValidateOnSlowWeights level type", lambda s: ValidateOnSlowWeights(level="outer"),
     ValueError, r"`level` must be an integer >= 0\. Received: level='outer'"),
    ("LookaheadOptimizer k", lambda s: _wrapper(s, k=0), ValueError,
     r"`k` must be an integer >= 1\. Received: k=0"),
    ("LookaheadOptimizer alpha", lambda s: _wrapper(s, alpha=1.01), ValueError,
     r"`alpha` must be a real number in the range \[0, 1\]\. Received: alpha=1\.01"),
    ("LookaheadOptimizer pullback", lambda s: _wrapper(s, pullback=True), ValueError,
     r"`pullback` must be one of .*Received: pullback=True"),
    ("LookaheadOptimizer inner", lambda s: keras_lookahead.LookaheadOptimizer(3.0), ValueError,
     r"`optimizer` must be a .*Received: optimizer=3\.0"),
    ("LookaheadOptimizer kwargs", lambda s: _wrapper(s, clipnorm=1.0), ValueError,
     r"does not take `clipnorm`: set it on the inner optimizer"),
    ("LookaheadOptimizer unknown keyword", lambda s: _wrapper(s, sync_every=3), ValueError,
     r"does not take `sync_every`: it takes optimizer, k, alpha, pullback and name\. "
     r"Received: sync_every=3"),
    ("BaseLookAhead k", lambda s: _graph().BaseLookAhead([], k=-1), ValueError,
     r"`k` must be an integer >= 1\. Received: k=-1"),
    ("BaseLookAhead model_vars", lambda s: _graph().BaseLookAhead([np.zeros(2)]), ValueError,
     r"`model_vars` must be a non-empty list of tf\.Variable\. Received: model_vars="),
]


@pytest.mark.parametrize("what,make,error,match", CONSTRUCTION,
                         ids=[row[0] for row in CONSTRUCTION])
def test_bad_construction(stack, what, make, error, match):
    if what.startswith("LookaheadOptimizer") and stack.no_wrapper():
        # There is no wrapper to take the argument: whatever it is, the error says so.
        error, match = keras_lookahead.UnsupportedVersionError, r"LookaheadOptimizer needs"
    with pytest.raises(error, match=match):
        make(stack)


def _other_keras_optimizer(stack):
    """An optimizer of another Keras installed next to the one under test, or a skip."""
    if stack.family == "standalone":
        return stack.tf.keras.optimizers.SGD(0.1)  # tf.keras, next to standalone Keras
    candidates = ["tf_keras"] if stack.family == "keras3" else ["keras", "tf_keras"]
    for name in candidates:
        try:
            other = __import__(name)
        except ImportError:
            continue
        model_package = stack.keras.models.Model.__module__.split(".")[0]
        if other.__name__ != model_package and hasattr(getattr(other, "optimizers", None),
                                                       "SGD"):
            return other.optimizers.SGD(0.1)
    pytest.skip("no second Keras is installed next to {}".format(stack.label))


def _assign_other_optimizer(stack, model):
    original = model.optimizer
    model.optimizer = _other_keras_optimizer(stack)
    try:
        Lookahead(k=3).inject(model)
    finally:
        model.optimizer = original


def _fit_with(callback):
    def call(stack, model, x, y):
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0,
                  validation_data=(x, y), callbacks=[callback])
    return call


# (what, the model before the call: "compiled" | "injected" | "uncompiled" | "frozen",
#  the call, error type, message pattern)
MODEL_CALLS = [
    ("inject uncompiled", "uncompiled", lambda s, m, x, y: Lookahead().inject(m), ValueError,
     r"`model` must be compiled before Lookahead is injected: call model\.compile\("),
    ("inject no trainable weights", "frozen", lambda s, m, x, y: Lookahead().inject(m),
     ValueError, r"`model` has no trainable weights, so Lookahead has nothing to do"),
    ("inject not a model", "compiled", lambda s, m, x, y: Lookahead().inject(m.layers[-1]),
     TypeError, r"`model` must be a Keras Model\. Received: model=.*Dense"),
    ("inject twice", "injected", lambda s, m, x, y: Lookahead(k=2).inject(m), RuntimeError,
     r"already injected into this model \(Lookahead\(k=3, alpha=0\.5\)\).*remove\(model\)"),
    ("inject other Keras optimizer", "compiled", lambda s, m, x, y: _assign_other_optimizer(s, m),
     TypeError, r"`model\.optimizer` must be an optimizer of the model's Keras \(.*\), as "
                r"compile makes it\. Received: optimizer=.*from package `\w+`"),
    ("inject pullback without momentum", "compiled",
     lambda s, m, x, y: Lookahead(pullback="reset").inject(m), ValueError,
     r"`pullback='reset'` acts on the inner optimizer's momentum, but SGD keeps no"),
    ("remove without Lookahead", "compiled", lambda s, m, x, y: remove(m), ValueError,
     r"`model` has no Lookahead injected\. Received: model="),
    ("remove not a model", "injected", lambda s, m, x, y: remove(m.layers[-1]), TypeError,
     r"`model` must be a Keras Model\. Received: model=.*Dense"),
    ("get_state not a model", "injected", lambda s, m, x, y: get_state(m.layers[-1]), TypeError,
     r"`model` must be a Keras Model\. Received: model=.*Dense"),
    ("slow_weights without Lookahead", "compiled",
     lambda s, m, x, y: slow_weights(m).__enter__(), ValueError,
     r"`model` has no Lookahead: neither injected nor a LookaheadOptimizer"),
    ("slow_weights level", "injected", lambda s, m, x, y: slow_weights(m, level=1).__enter__(),
     ValueError, r"`level` must be an integer in \[0, 1\) for Lookahead\(k=3, alpha=0\.5\)\. "
                 r"Received: level=1"),
    ("get_state without Lookahead", "compiled", lambda s, m, x, y: get_state(m), ValueError,
     r"`model` has no Lookahead"),
    ("set_state wrong arrays", "injected",
     lambda s, m, x, y: set_state(m, [np.zeros(3)]), ValueError,
     r"`arrays` must be what get_state returned .*Received: 1 arrays of shapes \[\(3,\)\]"),
    ("set_state wrong dtype", "injected",
     lambda s, m, x, y: set_state(m, [a.astype("float64") if a.ndim == 0 else a
                                      for a in get_state(m)]), ValueError,
     r"`arrays` must be what get_state returned .*dtypes \['int\d+', 'float32'.*Received: 5 "
     r"arrays of shapes .* and dtypes \['float64', 'float32'"),
    ("ValidateOnSlowWeights level", "injected",
     _fit_with(ValidateOnSlowWeights(level=1)), ValueError,
     r"`level` must be an integer in \[0, 1\) for Lookahead\(k=3, alpha=0\.5\)"),
    ("ValidateOnSlowWeights without Lookahead", "compiled",
     _fit_with(ValidateOnSlowWeights()), ValueError, r"`model` has no Lookahead"),
]


def _groups():
    """MODEL_CALLS by the model they start from, each group made on one model (a model costs
    what its step takes to trace): the calls in turn, then the trajectory. The one call that
    may be skipped (no second Keras installed) is a group of its own."""
    groups = {}
    for row in MODEL_CALLS:
        key = row[0] if row[0] == "inject other Keras optimizer" else row[1]
        groups.setdefault(key, []).append(row)
    return groups


GROUPS = _groups()


@pytest.mark.parametrize("group", list(GROUPS))
def test_bad_call_leaves_the_model_as_it_was(stack, data, group):
    """Each bad call raises its error, naming what is wrong, and changes nothing: the model is
    as injected (or not) as before, and trains on exactly as if no call had been made."""
    x, y, w0 = data
    before = GROUPS[group][0][1]
    model = stack.mlp(w0, frozen_hidden=before == "frozen")
    ref = MLPReference(w0, lr=0.1)
    if before == "frozen":
        model.layers[-1].trainable = False
    if before != "uncompiled":
        stack.compile(model, stack.sgd(0.1))
    if before == "injected":
        Lookahead(k=3, alpha=0.5).inject(model)
        ref.attach(3, 0.5)
    if before in ("compiled", "injected"):
        model.train_on_batch(x[:4], y[:4])
        ref.step(x[:4], y[:4])

    for what, _, call, error, match in GROUPS[group]:
        try:
            with pytest.raises(error, match=match):
                call(stack, model, x, y)
        except (AssertionError, pytest.fail.Exception) as failure:
            pytest.fail("{}: {}".format(what, failure))
        assert ("_keras_lookahead" in vars(model)) == (before == "injected"), what

    if before == "frozen":
        return
    if before == "uncompiled":
        stack.compile(model, stack.sgd(0.1))
    # and trains on as before: 7 more steps (2 syncs after inject), through fit and train_on_batch
    model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    model.train_on_batch(*batch(x, y, 0))
    ref.fit(x, y, epochs=3, batch_size=4)
    ref.step(*batch(x, y, 0))
    assert_weights(model, ref.w)


def test_inject_unbuilt_model_says_build_it(stack, data):
    """A compiled model that was never built (no Input, never called) has no weights yet."""
    x, y, _ = data
    model = stack.keras.models.Sequential([stack.keras.layers.Dense(1)])
    stack.compile(model, stack.sgd(0.1))
    with pytest.raises(ValueError, match=r"`model` is not built yet, so it has no weights for "
                                         r"Lookahead to follow: build it first, by calling it on "
                                         r"a batch of data .*Received: model=.*built=False"):
        Lookahead().inject(model)
    assert "_keras_lookahead" not in vars(model)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # builds it: then inject is fine
    Lookahead(k=2).inject(model)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert keras_lookahead.get_state(model)[0] == 2
