"""The code paths of newer Keras that change how steps are counted: several steps per traced
execution, XLA, loss scaling that skips steps, and gradient accumulation. Each either matches the
numpy reference or is skipped with the reason it cannot apply to this stack."""
import numpy as np
import pytest

from keras_lookahead import Lookahead
from reference import MLPReference, worked_trajectory
from helpers import (STEPS_APART, assert_weights, max_gap, skip_unless_float16_overflows, train,
                     train_reference, worked_path)


@pytest.mark.parametrize("extra", [{"steps_per_execution": 2}, {"steps_per_execution": 3},
                                   {"jit_compile": True}],
                         ids=["steps_per_execution=2", "steps_per_execution=3", "jit_compile"])
def test_compile_paths_match_reference(stack, data, extra):
    (name, value), = extra.items()
    if not stack.compile_accepts(name):
        pytest.skip("compile() has no `{}` argument on this stack".format(name))
    if stack.compile_kwargs.get("run_eagerly"):
        pytest.skip("`{}` does not apply when run_eagerly=True".format(name))
    if stack.backend == "torch":
        pytest.skip("Keras refuses steps_per_execution > 1 on torch" if name != "jit_compile"
                    else "jit_compile on torch is torch.compile: minutes of C++ builds on CPU")
    if name == "steps_per_execution" and value > 2 and stack.family == "keras3" and \
            stack.backend == "tensorflow" and stack.keras_minor in ((3, 3), (3, 4)):
        pytest.skip("Keras 3.3 - 3.4's fit on TensorFlow fails when steps_per_execution is more "
                    "than the steps of an epoch (2 here), a bare model too")
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9), **extra)
    Lookahead(k=3, alpha=0.5).inject(model)
    # k = 3 against executions of 2 or 3 steps: counting executions fails. tf.keras'
    # train_on_batch reads steps_per_execution batches from its one batch, so fit only.
    train(model, x, y, on_batch=name != "steps_per_execution")

    ref = MLPReference(w0, lr=0.1, momentum=0.9)
    ref.attach(3, 0.5)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    assert max_gap(expected, train_reference(MLPReference(w0, 0.1, 0.9), x, y)) > STEPS_APART


@pytest.mark.requires("mixed_precision")
def test_mixed_precision_skipped_steps_are_not_counted(stack):
    """A loss large enough to overflow float16 at the initial loss scale (2^15): the loss-scale
    optimizer skips steps (halving the scale) until the scaled gradient fits. Lookahead must count
    only the applied updates: after the skips, theta follows the worked trajectory exactly."""
    set_policy = stack.mixed_precision()
    set_policy("mixed_float16")
    try:
        skip_unless_float16_overflows(stack)
        # d loss / d w = -1000: 1000 * 2^15 overflows float16; steps apply once scale <= 64
        model, path = worked_path(stack, Lookahead(k=3, alpha=0.5), 22, lr=0.001,
                                  loss_factor=1000.0)
        assert "LossScale" in type(model.optimizer).__name__
    finally:
        set_policy("float32")
    skipped = next(i for i, w in enumerate(path) if w != 10.0)
    assert skipped >= 3, path  # the loss scale really did skip steps
    np.testing.assert_allclose(path[skipped:], worked_trajectory(10, 22 - skipped, 3, 0.5),
                               atol=1e-5)
    state = vars(model)["_keras_lookahead"].state
    (slow,) = stack.values(state.slow_weights(model.trainable_weights))
    assert slow.dtype == np.float32 and np.all(np.isfinite(slow))


@pytest.mark.requires("keras3", reason="gradient_accumulation_steps is a Keras 3 optimizer "
                                       "argument")
def test_gradient_accumulation_counts_applied_updates(stack, data):
    x, y, w0 = data
    model = stack.compile(stack.mlp(w0),
                          stack.sgd(0.1, momentum=0.9, gradient_accumulation_steps=2))
    Lookahead(k=3, alpha=0.5).inject(model)
    train(model, x, y)  # 22 micro-batches, 11 updates; counting micro-steps fails

    ref = MLPReference(w0, lr=0.1, momentum=0.9, accumulate=2)
    ref.attach(3, 0.5)
    expected = train_reference(ref, x, y)
    assert_weights(model, expected)
    plain = train_reference(MLPReference(w0, lr=0.1, momentum=0.9, accumulate=2), x, y)
    assert max_gap(expected, plain) > STEPS_APART


@pytest.mark.any_compile
@pytest.mark.core
def test_default_keras_is_the_installed_one(stack):
    """Without --keras the suite runs on the installed Keras: Keras 3 if keras is 3.x, tf.keras
    (tf_keras) when TF_USE_LEGACY_KERAS asks for it or keras is 2.x."""
    from conftest import installed_family
    assert installed_family({"TF_USE_LEGACY_KERAS": "1"}) == "tf"
    try:
        from importlib import metadata
        major = int(metadata.version("keras").split(".")[0])
    except Exception as error:  # Python 3.7, or no keras distribution
        assert installed_family({}) == "tf", error
        return
    assert installed_family({}) == ("keras3" if major >= 3 else "tf")
