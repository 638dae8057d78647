"""Selects the Keras stack the suite runs against.

One tox env installs one TensorFlow; within it, each pytest run picks the Keras (``--keras``), the
process-wide execution mode (``--tf-mode``, set before any model exists, as TensorFlow requires)
and the ``compile`` variant (``--compile``) that decide which code path ``fit`` takes. The
``stack`` fixture hands the tests that Keras, so one suite serves every stack.
"""
import sys

import numpy as np
import pytest

sys.path.insert(0, __import__("os").path.dirname(__file__))

COMPILE_VARIANTS = {
    "default": {},
    "run_eagerly": {"run_eagerly": True},
    "no_tf_function": {"experimental_run_tf_function": False},
}


def pytest_addoption(parser):
    group = parser.getgroup("keras stack")
    group.addoption("--keras", choices=["tf", "standalone"], default="tf",
                    help="tf.keras (default) or standalone Keras")
    group.addoption("--tf-mode", choices=["default", "eager", "v2", "graph"], default="default",
                    help="TF1: eager = enable_eager_execution, v2 = enable_v2_behavior; "
                         "TF2: graph = disable_eager_execution")
    group.addoption("--compile", choices=sorted(COMPILE_VARIANTS), default="default",
                    help="extra compile() arguments that pick fit's code path")


class Stack(object):
    """The Keras under test and what the tests need from it."""

    def __init__(self, config):
        import tensorflow as tf
        mode = config.getoption("--tf-mode")
        if mode == "eager":
            tf.compat.v1.enable_eager_execution()
        elif mode == "v2":
            tf.compat.v1.enable_v2_behavior()
        elif mode == "graph":
            tf.compat.v1.disable_eager_execution()
        self.tf = tf
        self.family = config.getoption("--keras")
        if self.family == "standalone":
            import keras
            self.keras = keras
        else:
            self.keras = tf.keras
        self.K = self.keras.backend
        self.compile_kwargs = COMPILE_VARIANTS[config.getoption("--compile")]
        self.eager = tf.executing_eagerly()
        self.label = "{} {} | TensorFlow {} | mode={} | eager={} | compile={}".format(
            "Keras" if self.family == "standalone" else "tf.keras",
            getattr(self.keras, "__version__", ""), tf.__version__, mode, self.eager,
            self.compile_kwargs)

    def fresh(self):
        """A new Keras session; graph mode runs one step at a time (Keras 2.2.4's optimizers
        race with the backward pass on several inter-op threads, see INTERNALS.md)."""
        self.K.clear_session()
        if not self.eager:
            tf = self.tf
            config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1,
                                              intra_op_parallelism_threads=1)
            set_session = getattr(self.K, "set_session", None) or \
                tf.compat.v1.keras.backend.set_session
            set_session(tf.compat.v1.Session(graph=tf.compat.v1.get_default_graph(),
                                                    config=config))

    def compile(self, model, optimizer, loss="mse"):
        model.compile(optimizer=optimizer, loss=loss, **self.compile_kwargs)
        return model

    def sgd(self, lr, momentum=0.0):
        if self.family == "standalone":
            return self.keras.optimizers.SGD(lr=lr, momentum=momentum)
        return self.keras.optimizers.SGD(learning_rate=lr, momentum=momentum)

    def tf1_sgd(self, lr, momentum=0.0):
        train = self.tf.compat.v1.train
        if momentum:
            return train.MomentumOptimizer(lr, momentum)
        return train.GradientDescentOptimizer(lr)

    def mlp(self, weights=None, frozen_hidden=False, batchnorm=False):
        layers = self.keras.layers
        inp = layers.Input((3,))
        h = layers.BatchNormalization()(inp) if batchnorm else inp
        hidden = layers.Dense(3, activation="tanh", trainable=not frozen_hidden)
        out = layers.Dense(1)(hidden(h))
        model = self.keras.models.Model(inp, out)
        if weights is not None:
            model.set_weights(weights)
        return model


_STACK = []


def pytest_configure(config):
    _STACK.append(Stack(config))


def pytest_report_header(config):
    return "keras stack: " + _STACK[0].label


@pytest.fixture
def stack():
    s = _STACK[0]
    s.fresh()
    return s


@pytest.fixture
def data():
    rng = np.random.RandomState(42)
    x = rng.randn(8, 3).astype("float32")
    y = rng.randn(8, 1).astype("float32")
    weights = [rng.randn(3, 3).astype("float32") * 0.8, rng.randn(3).astype("float32") * 0.1,
               rng.randn(3, 1).astype("float32") * 0.8, rng.randn(1).astype("float32") * 0.1]
    return x, y, weights
