"""Which Keras a model belongs to, and the adapter that hooks its training step.

This is the only package that looks at versions. The choice is made per model, from the module
of its ``Model`` class (a process may hold standalone Keras and tf.keras side by side): that names
the Keras package, whose installed version is then checked against :data:`SUPPORTED`. Adapters
are imported only when a model of their Keras is seen; importing ``keras_lookahead`` imports the
installed Keras 3 or TensorFlow 2.x only to register ``LookaheadOptimizer`` for ``load_model``.
"""
import collections
import importlib.util
import os
import sys

from packaging.version import Version

#: One supported stack: its Keras, the first and last release proven (of TensorFlow for tf.keras),
#: what it runs on, and the Pythons its envs run.
Stack = collections.namedtuple("Stack", "keras first last runs_on pythons")

#: The supported stacks: the one table that the version checks below, :func:`supported_table`,
#: the README's table and tox.ini's envs all follow (tests/test_matrix.py checks the last two).
#: Ranges are inclusive and compared on (major, minor) unless a patch is given.
STACKS = (
    Stack("standalone Keras", "2.2.4", "2.3.1", "TensorFlow 1.14 - 1.15", ("3.7",)),
    Stack("tf.keras", "1.14", "2.15", "TensorFlow", ("3.7", "3.11")),
    Stack("tf_keras", "2.16", "2.21", "TensorFlow 2.16 - 2.21", ("3.11", "3.12", "3.13")),
    Stack("Keras 3", "3.0", "3.15", "TensorFlow 2.16 - 2.21, JAX, PyTorch",
          ("3.11", "3.12", "3.13")),
)
_PYTHON_NOTES = {"tf.keras": "3.7; 3.11 from TF 2.12",
                 "Keras 3": "3.11 - 3.13 (PyTorch: 3.11)"}


def _bounds(keras):
    stack, = [s for s in STACKS if s.keras == keras]
    if stack.first.count(".") == 2:
        return Version(stack.first), Version(stack.last)
    return tuple(tuple(int(p) for p in v.split(".")) for v in (stack.first, stack.last))


_STANDALONE_RANGE = _bounds("standalone Keras")
_TF_FOR_STANDALONE = ((1, 14), (1, 15))
_TF_KERAS_RANGE = _bounds("tf.keras")  # tf.keras, in tensorflow (to 2.5) or the keras package
_TF_KERAS_PACKAGE_RANGE = _bounds("tf_keras")  # tf_keras, TF_USE_LEGACY_KERAS=1
_KERAS3_RANGE = _bounds("Keras 3")


def _row(stack):
    versions = "{} - {}".format(stack.first, stack.last)
    if stack.keras == "tf.keras":
        versions = "TensorFlow " + versions
    pythons = stack.pythons[0] if len(stack.pythons) == 1 else "{} - {}".format(
        stack.pythons[0], stack.pythons[-1])
    return (stack.keras, versions, stack.runs_on, _PYTHON_NOTES.get(stack.keras, pythons))


# STACKS as text rows: (Keras, versions, runs on, Python); shown in errors and the README.
SUPPORTED = tuple(_row(s) for s in STACKS)


def _keras3_range_text():
    """The Keras 3 range as the table shows it, e.g. ``3.0 - 3.15``."""
    return SUPPORTED[-1][1]


class UnsupportedVersionError(RuntimeError):
    """The model comes from a Keras or TensorFlow version this release does not support."""


def supported_markdown():
    """The table of supported stacks as the README shows it (a markdown table)."""
    rows = [("Keras", "versions", "runs on", "Python"), ("---",) * 4] + list(SUPPORTED)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def supported_table():
    """The table of supported stacks, as text."""
    rows = [("Keras", "versions", "runs on", "Python")] + list(SUPPORTED)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def _unsupported(found):
    return UnsupportedVersionError(
        "keras_lookahead does not support {} yet. Supported stacks:\n{}".format(
            found, supported_table()))


def _minor(version):
    return Version(version).release[:2]


def _in_range(version, bounds):
    """Whether ``version`` lies in ``bounds`` (:func:`_bounds`): on (major, minor), or on the whole
    version where the bounds give a patch."""
    found = Version(version) if isinstance(bounds[0], Version) else _minor(version)
    return bounds[0] <= found <= bounds[1]


def _model_class(obj):
    """The Keras ``Model`` class among ``type(obj)``'s bases, or None."""
    for cls in type(obj).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if cls.__name__ == "Model" and root in ("keras", "tf_keras", "tensorflow",
                                                "tensorflow_core"):
            return cls
    return None


def _package(cls):
    """The top-level package a class comes from; TensorFlow 1.15/2.0 keep tf.keras in
    ``tensorflow_core``, which is ``tensorflow`` to the user."""
    root = (cls.__module__ or "").split(".")[0]
    return "tensorflow" if root == "tensorflow_core" else root


def check_optimizer(model, found):
    """TypeError unless ``model.optimizer`` comes from the model's own Keras (``found`` names
    it). ``compile`` refuses another Keras' optimizer, but ``model.optimizer = ...`` does not,
    and Lookahead's hook would then sit on a method that Keras' train step never calls."""
    optimizer = model.optimizer
    package = _package(_model_class(model))
    if package not in {_package(c) for c in type(optimizer).__mro__}:
        raise TypeError(
            "`model.optimizer` must be an optimizer of the model's Keras ({}, package `{}`), "
            "as compile makes it. Received: optimizer={!r} (of type {}.{}, from package "
            "`{}`)".format(found, package, optimizer, type(optimizer).__module__,
                           type(optimizer).__name__, _package(type(optimizer))))


def _keras2_adapter(name, cls):
    from keras_lookahead.compat import _keras2_tf
    return _keras2_tf.Keras2TFAdapter(name, cls)


def check_model(model):
    """TypeError unless ``model`` is a Keras model; returns its ``Model`` class."""
    cls = _model_class(model)
    if cls is None:
        raise TypeError(
            "`model` must be a Keras Model. Received: model={!r} (of type {}.{})".format(
                model, type(model).__module__, type(model).__name__))
    return cls


def adapter_for(model):
    """The adapter for ``model``; TypeError for a non-model, UnsupportedVersionError for a
    version outside :data:`SUPPORTED`."""
    cls = check_model(model)
    root = cls.__module__.split(".")[0]
    version = getattr(sys.modules.get(root), "__version__", "unknown")
    if root in ("tensorflow", "tensorflow_core"):
        # tf.keras living inside TensorFlow (TF <= 2.5)
        found = "tf.keras in TensorFlow {}".format(version)
        if not _in_range(version, _TF_KERAS_RANGE):
            raise _unsupported(found)
        return _keras2_adapter(found, cls)
    if root == "keras" and Version(version) >= Version("3"):
        import keras
        found = "Keras {} with the {} backend".format(version, keras.backend.backend())
        if not _in_range(version, _KERAS3_RANGE):
            raise _unsupported(found)
        from keras_lookahead.compat import _keras3
        return _keras3.Keras3Adapter(found)
    if root == "keras":
        import tensorflow
        tf_version = tensorflow.__version__
        if Version(version) < Version("2.4"):
            found = "Keras {} on TensorFlow {}".format(version, tf_version)
            backend = sys.modules["keras"].backend.backend()
            if backend != "tensorflow":
                raise _unsupported("Keras {} with the {} backend".format(version, backend))
            if not (_in_range(version, _STANDALONE_RANGE)
                    and _minor(tf_version) in _TF_FOR_STANDALONE):
                raise _unsupported(found)
            return _keras2_adapter(found, cls)
        if Version(version) < Version("3"):
            # from TF 2.6, tf.keras is the keras 2.x package
            found = "tf.keras {} (TensorFlow {})".format(version, tf_version)
            if not _in_range(version, _TF_KERAS_RANGE):
                raise _unsupported(found)
            return _keras2_adapter(found, cls)
    if root == "tf_keras":
        found = "tf_keras {}".format(version)
        if not _in_range(version, _TF_KERAS_PACKAGE_RANGE):
            raise _unsupported(found)
        return _keras2_adapter(found, cls)
    raise _unsupported("{} {}".format(root, version))


def _installed_keras_version():
    """The version of the installed ``keras`` distribution, without importing it (None if
    there is none, or on Python < 3.8 where no Keras 3 exists)."""
    try:
        from importlib import metadata
    except ImportError:
        return None
    try:
        return Version(metadata.version("keras"))
    except metadata.PackageNotFoundError:
        return None


def _legacy_keras_selected():
    """TF_USE_LEGACY_KERAS=1: ``tf.keras`` is tf_keras even where Keras 3 is installed (the
    same test TensorFlow makes)."""
    return os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true")


def _keras3_installed():
    version = _installed_keras_version()
    return version is not None and version.major >= 3 and not _legacy_keras_selected()


def _tf_keras_optimizers():
    """``(TensorFlow version, tf.keras is usable for LookaheadOptimizer)``; ImportError
    without TensorFlow."""
    import tensorflow as tf
    version = tf.__version__
    in_range = _in_range(version, ((2, 0), _TF_KERAS_PACKAGE_RANGE[1]))
    if in_range and _minor(version) >= _TF_KERAS_PACKAGE_RANGE[0]:
        in_range = _legacy_keras_selected()  # TF 2.16+: tf.keras is Keras 3 otherwise
    return version, in_range


def _importable(name):
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module without __spec__ (TensorFlow 1.14's lazy loader)
        return True


def register_optimizer():
    """Import (and so register for ``load_model``) the ``LookaheadOptimizer`` of the installed
    Keras: Keras 3, or tf.keras / tf_keras on TensorFlow 2.x; otherwise do nothing."""
    try:
        if _keras3_installed():
            if _in_range(str(_installed_keras_version()), _KERAS3_RANGE):
                from keras_lookahead.compat import _keras3_optimizer  # noqa: F401
            return
        if not _importable("tensorflow") or not _tf_keras_optimizers()[1]:
            return
        from keras_lookahead.compat import _tf_optimizer  # noqa: F401
    except ImportError:
        # A Keras without a usable backend: inject on other Kerases must still import;
        # LookaheadOptimizer then raises this error when it is asked for.
        pass


def _unavailable(error):
    """A stand-in ``LookaheadOptimizer`` for a stack this release has none for: importing it
    works (``from keras_lookahead import LookaheadOptimizer``, a module that only mentions it);
    making one, or loading one from a config, raises ``error()``, an UnsupportedVersionError."""

    class LookaheadOptimizer:
        def __new__(cls, *args, **kwargs):
            raise error()

        @classmethod
        def from_config(cls, config, custom_objects=None):
            raise error()

    LookaheadOptimizer.__module__ = "keras_lookahead"
    LookaheadOptimizer.__qualname__ = "LookaheadOptimizer"
    LookaheadOptimizer.__doc__ = (
        "Unavailable on this stack: making one raises UnsupportedVersionError.")
    return LookaheadOptimizer


def lookahead_optimizer_class():
    """The ``LookaheadOptimizer`` class for the installed Keras (tf.keras: the class of its
    default optimizer family; it turns into ``LegacyLookaheadOptimizer`` around a legacy one).
    Where this release has none, a stand-in that raises UnsupportedVersionError when used."""
    if _keras3_installed():
        version = _installed_keras_version()
        if not _in_range(str(version), _KERAS3_RANGE):
            return _unavailable(lambda: _unsupported("Keras {}".format(version)))
        from keras_lookahead.compat import _keras3_optimizer
        return _keras3_optimizer.LookaheadOptimizer
    try:
        tf_version, usable = _tf_keras_optimizers()
    except ImportError:
        tf_version, usable = None, False
    if not usable:
        found = "TensorFlow {}".format(tf_version) if tf_version else "no TensorFlow"
        if _legacy_keras_selected():
            found += " with TF_USE_LEGACY_KERAS=1"
        return _unavailable(lambda: UnsupportedVersionError(
            "LookaheadOptimizer needs Keras {}, tf.keras in TensorFlow 2.0 - 2.15 or "
            "tf_keras 2.16 - 2.21 in this release; found {}. On TensorFlow 1.x and standalone "
            "Keras, use Lookahead(k, alpha).inject(model) after compile, or "
            "keras_lookahead.graph.BaseLookAhead. Supported stacks for inject:\n{}".format(
                _keras3_range_text(), found, supported_table())))
    from keras_lookahead.compat import _tf_optimizer
    return _tf_optimizer.LookaheadOptimizer


def keras_module():
    """The Keras a script should build models with: Keras 3 where it is installed (and
    TF_USE_LEGACY_KERAS is not set), else tf_keras / tf.keras."""
    if _keras3_installed():
        import keras
        return keras
    if _legacy_keras_selected() and _importable("tf_keras"):
        import tf_keras
        return tf_keras
    import tensorflow as tf
    return tf.keras


def calls_test_hooks_in_fit(model):
    """Whether ``fit`` on ``model``'s Keras calls ``on_test_begin`` / ``on_test_end`` around
    its validation pass: everywhere but standalone Keras 2.2 / 2.3 (its fit validates in a
    loop of its own, without them)."""
    adapter_for(model)  # the supported-version check
    root = _model_class(model).__module__.split(".")[0]
    version = getattr(sys.modules.get(root), "__version__", "0")
    return not (root == "keras" and Version(version) < Version("2.4"))
