"""Which Keras a model belongs to, and the adapter that hooks its training step.

This is the only package that looks at versions. The choice is made per model, from the module
of its ``Model`` class (a process may hold standalone Keras and tf.keras side by side), then the
installed version of that Keras is checked against :data:`SUPPORTED`. Adapters are imported only
when a model of their Keras is seen, so importing ``keras_lookahead`` imports no framework.
"""
import sys

from packaging.version import Version

# (Keras, versions, TensorFlow, Python): what the tox matrix proves, shown in errors and README.
SUPPORTED = (
    ("standalone Keras", "2.2.4 - 2.3.1", "1.14 - 1.15", "3.7"),
    ("tf.keras", "TensorFlow's own", "1.14, 1.15, 2.0", "3.7"),
)

_TF_KERAS_MINORS = ((1, 14), (1, 15), (2, 0))
_TF_FOR_STANDALONE = ((1, 14), (1, 15))
_STANDALONE_RANGE = (Version("2.2.4"), Version("2.3.1"))


class UnsupportedVersionError(RuntimeError):
    """The model comes from a Keras or TensorFlow version this release does not support."""


def supported_table():
    """The table of supported stacks, as text."""
    rows = [("Keras", "Keras version", "TensorFlow", "Python")] + list(SUPPORTED)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def _unsupported(found):
    return UnsupportedVersionError(
        "keras_lookahead does not support {} yet. Supported stacks:\n{}".format(
            found, supported_table()))


def _minor(version):
    return Version(version).release[:2]


def _model_class(obj):
    """The Keras ``Model`` class among ``type(obj)``'s bases, or None."""
    for cls in type(obj).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if cls.__name__ == "Model" and root in ("keras", "tf_keras", "tensorflow",
                                                "tensorflow_core"):
            return cls
    return None


def adapter_for(model):
    """The adapter for ``model``; TypeError for a non-model, UnsupportedVersionError for a
    version outside :data:`SUPPORTED`."""
    cls = _model_class(model)
    if cls is None:
        raise TypeError(
            "`model` must be a Keras Model. Received: model={!r} (of type {}.{})".format(
                model, type(model).__module__, type(model).__name__))
    root = cls.__module__.split(".")[0]
    if root in ("tensorflow", "tensorflow_core"):
        tf_version = sys.modules[root].__version__
        if _minor(tf_version) not in _TF_KERAS_MINORS:
            raise _unsupported("tf.keras in TensorFlow {}".format(tf_version))
        from keras_lookahead.compat import _tf1_era
        return _tf1_era.tf_keras_adapter(tf_version)
    if root == "keras":
        import keras
        version = keras.__version__
        if not (_STANDALONE_RANGE[0] <= Version(version) <= _STANDALONE_RANGE[1]):
            raise _unsupported("Keras {}".format(version))
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise _unsupported("Keras {} with the {} backend".format(version, backend))
        import tensorflow
        if _minor(tensorflow.__version__) not in _TF_FOR_STANDALONE:
            raise _unsupported("Keras {} on TensorFlow {}".format(version, tensorflow.__version__))
        from keras_lookahead.compat import _tf1_era
        return _tf1_era.standalone_keras_adapter(version, tensorflow.__version__)
    version = getattr(sys.modules.get(root), "__version__", "unknown")
    raise _unsupported("{} {}".format(root, version))
