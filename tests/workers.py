"""What the worker processes (resume_worker.py, distribute_worker.py) and the tests that start
them share: the data file, the worker's environment, and the model a worker trains."""
import os
import sys

import numpy as np

K, ALPHA = 3, 0.5
HERE = os.path.dirname(os.path.abspath(__file__))


def write_data(path, data):
    """The ``data`` fixture as ``path/data.npz``; returns that file."""
    x, y, w0 = data
    name = os.path.join(path, "data.npz")
    np.savez(name, x=x, y=y, **{"w%d" % i: w for i, w in enumerate(w0)})
    return name


def environment(stack):
    """A worker's environment: this stack's Keras (KLA_FAMILY), and keras_lookahead importable
    from where the tests import it."""
    import keras_lookahead
    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_lookahead.__file__)))
    return dict(os.environ, KLA_FAMILY=stack.family, PYTHONPATH=root)


def command(stack, script, *arguments):
    """The command line running ``tests/<script>`` with ``arguments`` on this stack."""
    return ([sys.executable, os.path.join(HERE, script)] + [str(a) for a in arguments]
            + (["--legacy"] if stack.legacy_optimizer else []))


def build_model(keras, data_file, api, legacy):
    """(In a worker.) The suite's MLP from ``data_file`` with Lookahead: ``inject`` or the
    ``wrapper``, around SGD(0.1, momentum=0.9); returns ``(model, x, y)``."""
    import keras_lookahead
    model, data = mlp(keras, data_file)
    optimizers = keras.optimizers.legacy if legacy else keras.optimizers
    sgd = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    if api == "wrapper":
        model.compile(keras_lookahead.LookaheadOptimizer(sgd, k=K, alpha=ALPHA), loss="mse")
    else:
        model.compile(sgd, loss="mse")
    return model, data["x"], data["y"]


def mlp(keras, data_file):
    """(In a worker.) The suite's MLP with the weights of ``data_file``, uncompiled; returns
    ``(model, data)``."""
    data = np.load(data_file)
    inp = keras.layers.Input((3,))
    hidden = keras.layers.Dense(3, activation="tanh")(inp)
    model = keras.models.Model(inp, keras.layers.Dense(1)(hidden))
    model.set_weights([data["w%d" % i] for i in range(4)])
    return model, data


def inject_if_asked(model, api):
    """inject comes after compile (and may come after a strategy's scope)."""
    if api == "inject":
        import keras_lookahead
        keras_lookahead.Lookahead(k=K, alpha=ALPHA).inject(model)
