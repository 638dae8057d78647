"""Step for step against the peers that implement the paper's rule (docs/design.md): optax's
``lookahead`` on JAX (for ``LookaheadOptimizer``) and TF Addons' ``Lookahead`` on tf.keras
2.11 - 2.15 (for ``inject`` and ``LookaheadOptimizer``). They are installed in those tox envs
only, which set KLA_PEER so that a peer that fails to import there fails the test instead of
skipping it."""
import os

import numpy as np
import pytest

import keras_lookahead
from keras_lookahead import Lookahead
from helpers import STEPS_APART, batch, max_gap

pytestmark = pytest.mark.any_compile


def _import_peer(name, module):
    if os.environ.get("KLA_PEER") != name:
        pytest.skip("{} is installed only in its own tox env (KLA_PEER={})".format(name, name))
    return __import__(module)


def _batches(data, steps):
    x, y, _ = data
    return [batch(x, y, i) for i in range(steps)]


def test_wrapper_matches_optax_lookahead(stack, data):
    """LookaheadOptimizer(SGD(0.1, momentum=0.9)) against optax.lookahead(optax.sgd(0.1,
    momentum=0.9)) on the same MLP, weights compared after each of 23 steps. (Keras' velocity
    v <- 0.9 v - lr g is optax's trace t <- g + 0.9 t scaled by -lr: the same updates.)"""
    if stack.family != "keras3" or stack.backend != "jax":
        pytest.skip("optax is a JAX library: compared on Keras 3 with the JAX backend")
    optax = _import_peer("optax", "optax")
    import jax
    import jax.numpy as jnp
    keras = stack.keras
    LookaheadOptimizer = keras_lookahead.LookaheadOptimizer
    _, _, w0 = data

    def loss(ws, xb, yb):
        out = jnp.tanh(xb @ ws[0] + ws[1]) @ ws[2] + ws[3]
        return jnp.mean((out - yb) ** 2)

    grad = jax.jit(jax.grad(loss))
    opt = optax.lookahead(optax.sgd(0.1, momentum=0.9), sync_period=3, slow_step_size=0.5)
    params = optax.LookaheadParams.init_synced([jnp.asarray(w) for w in w0])
    state = opt.init(params)

    weights = [keras.Variable(w) for w in w0]
    ours = LookaheadOptimizer(keras.optimizers.SGD(0.1, momentum=0.9), k=3, alpha=0.5)
    ours.build(weights)
    opt_vars = [v.value for v in ours.variables]
    values = [w.value for w in weights]
    for i, (xb, yb) in enumerate(_batches(data, 23)):
        updates, state = opt.update(grad(params.fast, xb, yb), state, params)
        params = optax.apply_updates(params, updates)
        values, opt_vars = ours.stateless_apply(opt_vars, grad(values, xb, yb), values)
        for a, b in zip(values, params.fast):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=0,
                                       err_msg="step {}".format(i + 1))
    plain = [jnp.asarray(w) for w in w0]
    sgd = optax.sgd(0.1, momentum=0.9)
    sgd_state = sgd.init(plain)
    for xb, yb in _batches(data, 23):
        u, sgd_state = sgd.update(grad(plain, xb, yb), sgd_state)
        plain = optax.apply_updates(plain, u)
    assert max_gap([np.asarray(v) for v in values], [np.asarray(p) for p in plain]) > STEPS_APART


@pytest.mark.optimizer_family
@pytest.mark.parametrize("api", ["inject", "wrapper"])
def test_matches_tf_addons_lookahead(stack, data, api):
    """inject over legacy SGD(0.1, momentum=0.9), and LookaheadOptimizer around it, against TF
    Addons' Lookahead around the same optimizer, compiled into twin models; weights compared
    after each of 23 train_on_batch."""
    if stack.family != "tf" or not stack.legacy_optimizer:
        pytest.skip("TF Addons wraps tf.keras' legacy optimizers: compared on tf.keras 2.11 "
                    "- 2.15 in the legacy variant")
    tfa = _import_peer("tensorflow_addons", "tensorflow_addons")
    LookaheadOptimizer = keras_lookahead.LookaheadOptimizer
    _, _, w0 = data
    if api == "wrapper":
        ours = stack.compile(stack.mlp(w0), LookaheadOptimizer(stack.sgd(0.1, momentum=0.9),
                                                               k=3, alpha=0.5))
    else:
        ours = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
        Lookahead(k=3, alpha=0.5).inject(ours)
    theirs = stack.compile(stack.mlp(w0), tfa.optimizers.Lookahead(
        stack.sgd(0.1, momentum=0.9), sync_period=3, slow_step_size=0.5))
    for i, (xb, yb) in enumerate(_batches(data, 23)):
        ours.train_on_batch(xb, yb)
        theirs.train_on_batch(xb, yb)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, atol=2e-5, rtol=0, err_msg="step {}".format(i + 1))
