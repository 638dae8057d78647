"""Property-based tests (hypothesis) of the rule against the numpy reference: random k, alpha,
step counts and a save point where the state is carried to a new model (get_state /
set_state). hypothesis is installed in two envs only, one TF1 (standalone Keras 2.3 on TF 1.15)
and one Keras 3 (3.15 on JAX); they set KLA_HYPOTHESIS=1, so a failed import there fails."""
import os

import numpy as np
import pytest

import keras_lookahead
from reference import worked_trajectory

if os.environ.get("KLA_HYPOTHESIS") != "1":
    pytest.skip("hypothesis runs in py37-tf115-keras231 and py313-keras315-jax only "
                "(KLA_HYPOTHESIS=1)", allow_module_level=True)

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

pytestmark = pytest.mark.any_compile


def _one_weight_model(stack, k, alpha, theta0):
    """docs/design.md's worked example: one weight, loss -theta, SGD(1): each update adds 1."""
    keras, K = stack.keras, stack.K
    inp = keras.layers.Input((1,))
    out = keras.layers.Dense(1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(theta0))(inp)
    model = stack.compile(keras.models.Model(inp, out), stack.sgd(1.0),
                          loss=lambda y_true, y_pred: -K.mean(y_pred))
    keras_lookahead.Lookahead(k=k, alpha=alpha).inject(model)
    return model


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.integers(1, 6), alpha=st.floats(0.0, 1.0), steps=st.integers(1, 14),
       save=st.integers(0, 14))
def test_rule_and_resume_match_reference(stack, k, alpha, steps, save):
    """Train ``save`` steps, carry weights and state to a new model, train the rest: after every
    step theta is the reference trajectory's, and the state holds its counter."""
    save = min(save, steps)
    theta0 = 10.0
    expected = worked_trajectory(theta0, steps, k, alpha)
    ones = np.ones((1, 1), "float32")
    model = _one_weight_model(stack, k, alpha, theta0)
    path = []
    for step in range(steps):
        if step == save and step > 0:
            fast, state = model.get_weights(), keras_lookahead.get_state(model)
            assert int(state[0]) == step
            model = _one_weight_model(stack, k, alpha, theta0)
            model.set_weights(fast)
            keras_lookahead.set_state(model, state)
        model.train_on_batch(ones, ones)
        path.append(float(model.get_weights()[0][0, 0]))
    np.testing.assert_allclose(path, expected, rtol=0, atol=2e-5 * (theta0 + steps))
