"""What the test modules share: training a model and the numpy reference the same way, comparing
weights, and the worked example of docs/design.md."""
import numpy as np
import pytest

ATOL = 2e-5
STEPS_APART = 1e-2  # Lookahead vs plain SGD after 22 steps differ by ~1e-1; rounding by ~1e-6


def batch(x, y, i):
    """The i-th batch of 4 of the 8-sample ``data`` fixture, in the order fit takes them."""
    return x[4 * (i % 2):4 * (i % 2) + 4], y[4 * (i % 2):4 * (i % 2) + 4]


def train(model, x, y, on_batch=True):
    """22 optimizer steps: fit 4 epochs x 2 batches, fit 5 more, then 4 x train_on_batch (or,
    where train_on_batch cannot run, a third fit of 2 epochs: the same 4 batches in order)."""
    model.fit(x, y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    model.fit(x, y, batch_size=4, epochs=5, shuffle=False, verbose=0)
    if not on_batch:
        model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        return
    for i in range(4):
        model.train_on_batch(*batch(x, y, i))


def train_reference(ref, x, y):
    ref.fit(x, y, epochs=4, batch_size=4)
    ref.fit(x, y, epochs=5, batch_size=4)
    for i in range(4):
        ref.step(*batch(x, y, i))
    return ref.w


def assert_weights(model, expected, atol=ATOL):
    got = model.get_weights()
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=atol, rtol=0)


def max_gap(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def n_variables(optimizer):
    variables = getattr(optimizer, "variables", [])  # a method on OptimizerV2
    return len(variables() if callable(variables) else variables)


def traces(model):
    """What inject may change on a model: its attributes and (tf.keras, tf_keras) its
    checkpoint dependencies."""
    dependencies = getattr(model, "_checkpoint_dependencies", None)
    return dict(vars(model)), (None if dependencies is None
                               else sorted((d.name, id(d.ref)) for d in dependencies))


def assert_no_trace(model, before):
    """``model`` has what ``before = traces(model)`` had: the same attributes, each the same
    object (or an equal new empty cache), and the same checkpoint dependencies."""
    attributes, dependencies = before
    now, now_dependencies = traces(model)
    assert set(now) == set(attributes)
    for name, value in attributes.items():
        same = now[name] is value or (
            isinstance(value, (dict, list, type(None))) and type(now[name]) is type(value)
            and now[name] == value)
        assert same, name
    assert now_dependencies == dependencies


def make_optimizer(stack, kind, lr, momentum):
    if kind == "tf.train":
        return stack.tf1_sgd(lr, momentum)
    return stack.sgd(lr, momentum)


def worked_path(stack, lookahead, steps, lr=1.0, loss_factor=1.0, wrap=None):
    """theta after each of ``steps`` train_on_batch calls of docs/design.md's worked example:
    one weight, theta0 = 10, loss -factor * theta, SGD(lr): each update adds lr * factor.
    ``lookahead`` is injected (None: not); ``wrap`` maps the SGD to the compiled optimizer."""
    keras, K = stack.keras, stack.K
    inp = keras.layers.Input((1,))
    out = keras.layers.Dense(1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(10.0))(inp)
    optimizer = stack.sgd(lr) if wrap is None else wrap(stack.sgd(lr))
    model = stack.compile(keras.models.Model(inp, out), optimizer,
                          loss=lambda y_true, y_pred: -loss_factor * K.mean(
                              K.cast(y_pred, "float32")))
    if lookahead is not None:
        lookahead.inject(model)
    ones = np.ones((1, 1), "float32")
    path = []
    for _ in range(steps):
        model.train_on_batch(ones, ones)
        path.append(float(model.get_weights()[0][0, 0]))
    return model, path


def skip_unless_float16_overflows(stack):
    """(Under mixed_float16.) The loss-scale tests need the worked example's scaled gradient
    (1000 * 2^15) to overflow float16, so that the loss-scale optimizer skips steps; skip where
    bare Keras skips none: XLA on CPU in JAX <= 0.4.31 keeps that gradient in float32."""
    _, path = worked_path(stack, None, 1, lr=0.001, loss_factor=1000.0)
    if path[0] != 10.0:
        pytest.skip("the scaled gradient does not overflow float16 here, so no step is skipped "
                    "(bare Keras alike: {})".format(stack.label))
