"""keras_lookahead.graph.BaseLookAhead: TF1-style graph ops, in a tf.compat.v1 session."""
import numpy as np
import pytest

from reference import worked_trajectory

pytestmark = [pytest.mark.any_compile, pytest.mark.requires(
    "tensorflow", reason="BaseLookAhead is TensorFlow graph code")]


@pytest.fixture
def v1(stack):
    import tensorflow as tf
    return tf.compat.v1


def _problem(v1, optimizer):
    """w = 10, loss = -w: every optimizer step adds 1 (SGD, learning rate 1)."""
    w = v1.get_variable("w", initializer=np.float32(10.0))
    return w, optimizer.minimize(-w)


@pytest.mark.parametrize("same_run", [True, False], ids=["one sess.run", "two sess.runs"])
def test_worked_trajectory(v1, same_run):
    from keras_lookahead.graph import BaseLookAhead
    with v1.Graph().as_default():
        w, train = _problem(v1, v1.train.GradientDescentOptimizer(1.0))
        lookahead = BaseLookAhead([w], k=3, alpha=0.5)
        ops = lookahead.get_ops() if same_run else lookahead.get_ops(after=())
        config = v1.ConfigProto(inter_op_parallelism_threads=2)
        with v1.Session(config=config) as sess:
            sess.run(v1.global_variables_initializer())
            path = []
            for _ in range(10):
                if same_run:
                    sess.run([train] + ops)
                else:
                    sess.run(train)
                    sess.run(ops)
                path.append(float(sess.run(w)))
            assert int(sess.run(lookahead.counter)) == 10
    assert path == worked_trajectory(10, 10, k=3, alpha=0.5)


def test_momentum_and_scope(v1):
    """Momentum state left alone; slow variables under 'lookahead/', not trainable."""
    from keras_lookahead.graph import BaseLookAhead
    with v1.Graph().as_default():
        w = v1.get_variable("w", initializer=np.float32(10.0))
        train = v1.train.MomentumOptimizer(1.0, 0.5).minimize(-w)
        lookahead = BaseLookAhead([w], k=2, alpha=0.5)
        ops = lookahead.get_ops(after=train)
        assert [v.name for v in lookahead.slow_vars] == ["lookahead/w:0"]
        assert lookahead.counter.name == "lookahead/counter:0"
        assert all(v not in v1.trainable_variables() for v in lookahead.slow_vars)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = []
            for _ in range(6):
                sess.run([train] + ops)
                path.append(float(sess.run(w)))
    # accum = .5 accum + 1 per step: updates 1, 1.5, 1.75, 1.875, ...; slow 10 at t2 (11.5 ->
    # 10.75), t4 (10.75 + 1.75 + 1.875 = 14.375 -> 12.5625), t6
    expected, theta, slow, accum = [], 10.0, 10.0, 0.0
    for t in range(1, 7):
        accum = 0.5 * accum + 1.0
        theta += accum
        if t % 2 == 0:
            slow = slow + 0.5 * (theta - slow)
            theta = slow
        expected.append(theta)
    np.testing.assert_allclose(path, expected, rtol=0, atol=1e-5)


def test_bad_input(v1):
    from keras_lookahead.graph import BaseLookAhead
    with v1.Graph().as_default():
        w = v1.get_variable("w", initializer=np.float32(1.0))
        with pytest.raises(ValueError, match="`k` must be an integer >= 1. Received: k=0"):
            BaseLookAhead([w], k=0)
        with pytest.raises(ValueError, match=r"`alpha` must be a real number in the range"):
            BaseLookAhead([w], alpha=2.0)
        with pytest.raises(ValueError, match="`model_vars` must be a non-empty list"):
            BaseLookAhead([])


def test_anchor_is_the_initialised_value(v1):
    """A random initializer runs once: the slow copy starts equal to the weight."""
    from keras_lookahead.graph import BaseLookAhead
    with v1.Graph().as_default():
        w = v1.get_variable("w", shape=[50], initializer=v1.random_normal_initializer())
        lookahead = BaseLookAhead([w], k=2)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(lookahead.slow_vars[0]), sess.run(w))
            assert np.std(sess.run(w)) > 0.1
