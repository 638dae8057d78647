"""Selects the Keras stack the suite runs against.

One tox env installs one TensorFlow; within it, each pytest run picks the Keras (``--keras``) and
the process-wide execution mode (``--tf-mode``, set before any model exists, as TensorFlow
requires), and runs the suite once per *variant* (``--variants``): the ``compile`` arguments that
decide which code path ``fit`` takes, and the optimizer family (``legacy``: tf.keras 2.11+'s
``keras.optimizers.legacy``). The ``stack`` fixture hands the tests that Keras, so one suite
serves every stack.

Not every test depends on the variant. Markers say which (pytest.ini):

- ``any_compile``: the code path ``fit`` takes is not the subject (bad input refused before any
  training, saving and restoring variables, a step traced by the test itself): the test runs in
  the variants that compile by default (``default``, ``legacy``), not again under
  ``run_eagerly`` or ``no_tf_function``.
- ``once``: the first variant only: the test picks its own code path (``lookahead-keras
  compare``) or starts worker processes that train with the defaults.
- ``core``: the core suite (``pytest -m core``) that the envs between a family's first and last
  release run: exact trajectories for inject and the wrapper, bad input, save and resume.
- The ``legacy`` variant (tf.keras 2.11+ and tf_keras, beside the new optimizers) runs the core
  suite and the tests marked ``optimizer_family`` (which family the wrapper takes, TF Addons'
  legacy-only Lookahead): the rest of the suite proves the legacy family where it is the
  default, tf.keras 2.0 - 2.10 (OptimizerV2, the same classes).
"""
import copy

import numpy as np
import pytest

#: variant -> (extra compile() arguments, keras.optimizers.legacy)
VARIANTS = {
    "default": ({}, False),
    "run_eagerly": ({"run_eagerly": True}, False),
    "no_tf_function": ({"experimental_run_tf_function": False}, False),
    "legacy": ({}, True),
}


def pytest_addoption(parser):
    group = parser.getgroup("keras stack")
    group.addoption("--keras", choices=["tf", "standalone", "keras3"], default=None,
                    help="tf.keras (tf_keras under TF_USE_LEGACY_KERAS=1), standalone Keras "
                         "2.2/2.3, or Keras 3 on KERAS_BACKEND; default: keras3 if the installed "
                         "keras is 3.x and TF_USE_LEGACY_KERAS is not set, else tf")
    group.addoption("--tf-mode", choices=["default", "eager", "v2", "graph"], default="default",
                    help="TF1: eager = enable_eager_execution, v2 = enable_v2_behavior; "
                         "TF2: graph = disable_eager_execution")
    group.addoption("--variants", default="default",
                    help="comma-separated, each one of {}: the compile() arguments that pick "
                         "fit's code path (run_eagerly, no_tf_function) or the optimizer family "
                         "(legacy: tf.keras 2.11+'s keras.optimizers.legacy); every test runs "
                         "in each, but for its markers' limits (conftest.py)".format(
                             ", ".join(VARIANTS)))


def variants(config):
    """``--variants`` as a list, checked."""
    names = [v.strip() for v in config.getoption("--variants").split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names or len(set(names)) != len(names):
        raise pytest.UsageError("--variants must be distinct names among {}. Received: "
                                "--variants={}".format(", ".join(VARIANTS),
                                                       config.getoption("--variants")))
    return names


def installed_family(environ=None):
    """``--keras`` when it is not given: Keras 3 if the installed ``keras`` distribution is 3.x
    (a ``pip install .[test]`` next to Keras 3 runs as it should) and TF_USE_LEGACY_KERAS does
    not ask for tf_keras; else tf.keras. Read from the installed metadata, without importing
    Keras (TF1 modes must be set before TensorFlow builds anything)."""
    import os
    environ = os.environ if environ is None else environ
    if environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true"):
        return "tf"
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7: no Keras 3 there
        return "tf"
    try:
        major = int(metadata.version("keras").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return "tf"
    return "keras3" if major >= 3 else "tf"


def _minor(version):
    return tuple(int(p) for p in version.split(".")[:2])


class Stack:
    """The Keras under test and what the tests need from it."""

    @property
    def keras_minor(self):
        """(major, minor) of the Keras under test, e.g. (3, 8)."""
        return _minor(self.keras.__version__)

    @property
    def tf_minor(self):
        """(major, minor) of TensorFlow (not on a Keras 3 stack)."""
        return _minor(self.tf.__version__)

    def __init__(self, config, variant="default"):
        self.family = config.getoption("--keras") or installed_family()
        self.variant = variant
        self.compile_kwargs, self.legacy_optimizer = VARIANTS[variant]
        if self.family == "keras3":
            import keras
            self.keras, self.K = keras, keras.ops
            self.tf = None
            self.eager = True
            self.backend = keras.backend.backend()
            self._stack_label = "Keras {} | backend {}".format(keras.__version__, self.backend)
            return
        import tensorflow as tf
        self.backend = "tensorflow"
        mode = config.getoption("--tf-mode")
        if mode == "eager":
            tf.compat.v1.enable_eager_execution()
        elif mode == "v2":
            tf.compat.v1.enable_v2_behavior()
        elif mode == "graph":
            tf.compat.v1.disable_eager_execution()
        self.tf = tf
        if self.family == "standalone":
            import keras
            self.keras = keras
        else:
            self.keras = tf.keras
        self.K = self.keras.backend
        self.eager = tf.executing_eagerly()
        self._stack_label = "{} {} ({}) | TensorFlow {} | mode={} | eager={}".format(
            "Keras" if self.family == "standalone" else "tf.keras",
            getattr(self.keras, "__version__", ""), self.keras.__name__, tf.__version__, mode,
            self.eager)

    @property
    def label(self):
        return "{} | variant={} (compile={}{})".format(
            self._stack_label, self.variant, self.compile_kwargs,
            ", legacy optimizers" if self.legacy_optimizer else "")

    def in_variant(self, variant):
        """This stack (one import, one execution mode) in another variant."""
        other = copy.copy(self)
        other.variant = variant
        other.compile_kwargs, other.legacy_optimizer = VARIANTS[variant]
        return other

    def fresh(self):
        """A new Keras session; graph mode runs one step at a time (Keras 2.2.4's optimizers
        race with the backward pass on several inter-op threads, see docs/design.md, section 5)."""
        if self.family == "keras3":
            self.keras.backend.clear_session()
            return
        self.K.clear_session()
        if not self.eager:
            tf = self.tf
            config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1,
                                              intra_op_parallelism_threads=1)
            set_session = getattr(self.K, "set_session", None) or \
                tf.compat.v1.keras.backend.set_session
            set_session(tf.compat.v1.Session(graph=tf.compat.v1.get_default_graph(),
                                                    config=config))

    def no_wrapper(self):
        """Why this stack has no ``LookaheadOptimizer`` (it raises UnsupportedVersionError
        there, test_optimizer.test_clear_error_where_unsupported), or None."""
        if self.family == "standalone":
            return "standalone Keras"
        if self.tf is not None and self.tf.__version__.startswith("1."):
            return "TensorFlow 1.x"
        return None

    def mixed_precision(self):
        """``keras.mixed_precision.set_global_policy``, or None where there is none."""
        return getattr(getattr(self.keras, "mixed_precision", None), "set_global_policy", None)

    def skip_without_wrapper(self):
        reason = self.no_wrapper()
        if reason is not None:
            pytest.skip("no LookaheadOptimizer on {} (this stack: {})".format(reason, self.label))

    def compile(self, model, optimizer, loss="mse", **kwargs):
        model.compile(optimizer=optimizer, loss=loss, **dict(self.compile_kwargs, **kwargs))
        return model

    def compile_accepts(self, argument):
        import inspect
        return argument in inspect.signature(self.keras.Model.compile).parameters

    def values(self, variables):
        """Current values of variables, as numpy arrays."""
        if self.family == "keras3":
            return [np.array(self.keras.ops.convert_to_numpy(v)) for v in variables]
        return [np.array(v) for v in self.K.batch_get_value(list(variables))]

    def sgd(self, lr, momentum=0.0, **kwargs):
        if self.family == "standalone":
            return self.keras.optimizers.SGD(lr=lr, momentum=momentum, **kwargs)
        optimizers = self.keras.optimizers
        if self.legacy_optimizer:
            optimizers = optimizers.legacy
        return optimizers.SGD(learning_rate=lr, momentum=momentum, **kwargs)

    def tf1_sgd(self, lr, momentum=0.0):
        if self.tf is None:
            pytest.skip("no tf.compat.v1.train optimizers on Keras 3 ({})".format(self.backend))
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
        if frozen_hidden and self.family == "keras3":
            # Keras 3.0 and 3.1 build a layer made with trainable=False with trainable variables
            # (fit trains them, bare Keras too; setting layer.trainable again does not reach
            # them on TensorFlow): freeze the variables themselves.
            for variable in hidden.weights:
                variable.trainable = False
        model = self.keras.models.Model(inp, out)
        if weights is not None:
            model.set_weights(weights)
        return model


_STACKS = {}  # variant -> Stack, in --variants order


def pytest_configure(config):
    first, *others = variants(config)
    _STACKS[first] = Stack(config, first)
    for variant in others:
        _STACKS[variant] = _STACKS[first].in_variant(variant)


def pytest_report_header(config):
    return ["keras stack: " + s.label for s in _STACKS.values()]


#: what a test can require of its stack (``@pytest.mark.requires(name, ...)``): name -> the reason
#: it is skipped on a stack without it, or None
REQUIREMENTS = {
    "wrapper": lambda s: s.no_wrapper() and "no LookaheadOptimizer on {}".format(s.no_wrapper()),
    "keras3": lambda s: s.family != "keras3" and "a Keras 3 feature",
    "tensorflow": lambda s: s.backend != "tensorflow" and "TensorFlow code, and this stack "
                                                          "runs on {}".format(s.backend),
    "eager": lambda s: not s.eager and "needs eager execution",
    "jax": lambda s: s.backend != "jax" and "JAX code, and this stack runs on {}".format(
        s.backend),
    "tf_keras_family": lambda s: s.family == "keras3" and "a tf.keras / standalone Keras "
                                                          "feature",
    "mixed_precision": lambda s: s.mixed_precision() is None and "no keras.mixed_precision."
                                                                 "set_global_policy on this "
                                                                 "stack (TF >= 2.4)",
    "pullback": lambda s: s.family == "standalone" and "no pullback on standalone Keras (its "
                                                       "SGD builds its momentum out of reach: "
                                                       "test_pullback_matches_reference)",
    "train_step": lambda s: (s.family == "standalone" or not hasattr(s.keras.Model,
                                                                     "train_step"))
    and "train_step can be overridden from TensorFlow 2.2 and in Keras 3",
    "stops_mid_epoch": lambda s: s.family == "tf" and s.tf_minor in ((2, 2), (2, 3)) and (
        "fit in TF 2.2 / 2.3 reads stop_training only at the end of an epoch, so a callback "
        "cannot stop it mid-epoch (Keras' loop, not Lookahead)"),
    "h5_model": lambda s: s.family == "keras3" and "Keras 3 saves a whole model as .keras "
                                                   "(test_resume: keras_file)",
}
#: fixtures that stand for a requirement: a test taking ``wrapped`` requires the wrapper
FIXTURE_REQUIREMENTS = {"wrapped": ("wrapper",), "keras3": ("keras3",),
                        "eager": ("wrapper", "eager")}


def _skip_reason(metafunc, stack):
    """Why the test cannot run on ``stack`` (its ``requires`` markers and fixtures), or None."""
    found = [(n, m.kwargs.get("reason")) for m in metafunc.definition.iter_markers("requires")
             for n in m.args]
    for fixture, required in FIXTURE_REQUIREMENTS.items():
        if fixture in metafunc.fixturenames:
            found += [(n, None) for n in required]
    for name, why in found:
        reason = REQUIREMENTS[name](stack)  # KeyError: an unknown requirement
        if reason:
            return "{} (this stack: {})".format(why or reason, stack.label)
    return None


def pytest_generate_tests(metafunc):
    """Every test that uses ``stack`` runs once per variant its markers allow; where the stack
    lacks what the test requires, it is skipped with the reason."""
    if "stack" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker
    names = [v for v in _STACKS if v != "legacy" or marker("core") or marker("optimizer_family")]
    if marker("once"):
        names = names[:1]
    elif marker("any_compile"):
        names = [v for v in names if not _STACKS[v].compile_kwargs]
    params = []
    for name in names:
        reason = _skip_reason(metafunc, _STACKS[name])
        params.append(pytest.param(name, marks=pytest.mark.skip(reason=reason)) if reason
                      else name)
    metafunc.parametrize("stack", params, indirect=True)


@pytest.fixture
def stack(request):
    s = _STACKS[request.param]
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
