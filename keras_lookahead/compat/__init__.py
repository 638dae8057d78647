"""Which Keras a model belongs to, and the adapter that hooks its training step.

This is the only package that looks at versions, and :data:`STACKS` is where it decides: a
model's stack is the row that claims the package and version of its ``Model`` class (a process
may hold standalone Keras and tf.keras side by side), checked against the row's range; the
installed stack (for ``LookaheadOptimizer`` and scripts) is the row of the Keras that
``import keras`` / ``tf.keras`` gives. Adapters are imported only when a model of their Keras is
seen; importing ``keras_lookahead`` imports the installed Keras 3 or TensorFlow 2.x only to
register ``LookaheadOptimizer`` for ``load_model``. See ``docs/design.md``, section 3.
"""
import importlib
import importlib.util
import os
import sys
from typing import NamedTuple, Optional, Tuple

from packaging.version import Version


class Claim(NamedTuple):
    """Models whose ``Model`` class comes from ``package`` at a version in ``[lowest, below)``
    (None: unbounded) belong to the row; ``found`` words what was found for errors (fields:
    ``version`` of the package, ``tf`` TensorFlow's version, ``backend``)."""
    package: str
    lowest: Optional[str]
    below: Optional[str]
    found: str


class Stack(NamedTuple):
    """One supported stack: its Keras, the first and last release proven (of TensorFlow for
    tf.keras), what it runs on and the Pythons its envs run (the README's columns), which
    models belong to it, the adapter that hooks them (``module.Class`` in this package), the
    module of its ``LookaheadOptimizer`` (None: it has none) and the first release that has
    one, the module a script builds models with, and the TensorFlow it must run on (None:
    any)."""
    keras: str
    first: str
    last: str
    runs_on: str
    pythons: Tuple[str, ...]
    claims: Tuple[Claim, ...]
    adapter: str
    wrapper: Optional[str]
    wrapper_first: Optional[str]
    module: str
    tensorflow: Optional[Tuple[str, str]] = None


#: The supported stacks: the one table that :func:`adapter_for`, the ``LookaheadOptimizer``
#: entry points, :func:`supported_table`, the README's table and tox.ini's envs all follow
#: (tests/test_matrix.py checks the last two). Ranges are inclusive and compared on
#: (major, minor) unless a patch is given.
STACKS = (
    Stack("standalone Keras", "2.2.4", "2.3.1", "TensorFlow 1.14 - 1.15", ("3.7",),
          claims=(Claim("keras", None, "2.4", "Keras {version} on TensorFlow {tf}"),),
          adapter="_keras2_tf.Keras2TFAdapter", wrapper=None, wrapper_first=None,
          module="keras", tensorflow=("1.14", "1.15")),
    Stack("tf.keras", "1.14", "2.15", "TensorFlow", ("3.7", "3.11"),
          claims=(Claim("tensorflow", None, None, "tf.keras in TensorFlow {version}"),
                  # TensorFlow 1.15 / 2.0 keep tf.keras in tensorflow_core
                  Claim("tensorflow_core", None, None, "tf.keras in TensorFlow {version}"),
                  # from TensorFlow 2.6, tf.keras is the keras 2.x package
                  Claim("keras", "2.4", "3", "tf.keras {version} (TensorFlow {tf})")),
          adapter="_keras2_tf.Keras2TFAdapter", wrapper="_tf_optimizer", wrapper_first="2.0",
          module="tensorflow.keras"),
    Stack("tf_keras", "2.16", "2.21", "TensorFlow 2.16 - 2.21", ("3.11", "3.12", "3.13"),
          claims=(Claim("tf_keras", None, None, "tf_keras {version}"),),
          adapter="_keras2_tf.Keras2TFAdapter", wrapper="_tf_optimizer", wrapper_first=None,
          module="tf_keras"),
    Stack("Keras 3", "3.0", "3.15", "TensorFlow 2.16 - 2.21, JAX, PyTorch",
          ("3.11", "3.12", "3.13"),
          claims=(Claim("keras", "3", None, "Keras {version} with the {backend} backend"),),
          adapter="_keras3.Keras3Adapter", wrapper="_keras3_optimizer", wrapper_first=None,
          module="keras"),
)
_PYTHON_NOTES = {"tf.keras": "3.7; 3.11 from TF 2.12",
                 "Keras 3": "3.11 - 3.13 (PyTorch: 3.11)"}


def _stack(keras):
    """The row of :data:`STACKS` named ``keras``."""
    row, = [s for s in STACKS if s.keras == keras]
    return row


def _bounds(stack):
    """``stack``'s range: (first, last) as Versions where they give a patch, else as
    (major, minor)."""
    if stack.first.count(".") == 2:
        return Version(stack.first), Version(stack.last)
    return _minor(stack.first), _minor(stack.last)


def _row(stack):
    versions = f"{stack.first} - {stack.last}"
    if stack.keras == "tf.keras":
        versions = "TensorFlow " + versions
    pythons = stack.pythons[0] if len(stack.pythons) == 1 else (
        f"{stack.pythons[0]} - {stack.pythons[-1]}")
    return (stack.keras, versions, stack.runs_on, _PYTHON_NOTES.get(stack.keras, pythons))


# STACKS as text rows: (Keras, versions, runs on, Python); shown in errors and the README.
SUPPORTED = tuple(_row(s) for s in STACKS)


def _keras3_range_text():
    """The Keras 3 range as the table shows it, e.g. ``3.0 - 3.15``."""
    return _row(_stack("Keras 3"))[1]


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
        f"keras_lookahead does not support {found} yet. Supported stacks:\n{supported_table()}")


def _minor(version):
    return Version(version).release[:2]


def _in_range(version, bounds):
    """Whether ``version`` lies in ``bounds`` (:func:`_bounds`): on (major, minor), or on the whole
    version where the bounds give a patch."""
    found = Version(version) if isinstance(bounds[0], Version) else _minor(version)
    return bounds[0] <= found <= bounds[1]


def _model_class(obj):
    """The Keras ``Model`` class among ``type(obj)``'s bases, or None."""
    packages = {c.package for s in STACKS for c in s.claims}
    for cls in type(obj).__mro__:
        if cls.__name__ == "Model" and (cls.__module__ or "").split(".")[0] in packages:
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
        kind = type(optimizer)
        raise TypeError(
            f"`model.optimizer` must be an optimizer of the model's Keras ({found}, package "
            f"`{package}`), as compile makes it. Received: optimizer={optimizer!r} (of type "
            f"{kind.__module__}.{kind.__name__}, from package `{_package(kind)}`)")


def check_model(model):
    """TypeError unless ``model`` is a Keras model; returns its ``Model`` class."""
    cls = _model_class(model)
    if cls is None:
        kind = type(model)
        raise TypeError(
            f"`model` must be a Keras Model. Received: model={model!r} (of type "
            f"{kind.__module__}.{kind.__name__})")
    return cls


def _claims(claim, version):
    return ((claim.lowest is None or Version(version) >= Version(claim.lowest))
            and (claim.below is None or Version(version) < Version(claim.below)))


def _backend(package):
    backend = getattr(sys.modules.get(package), "backend", None)
    return backend.backend() if hasattr(backend, "backend") else "tensorflow"


def stack_of(model):
    """``(row of STACKS, what was found)`` for ``model``'s Keras; TypeError for a non-model,
    UnsupportedVersionError where no row claims it or its version is outside the row's range."""
    root = check_model(model).__module__.split(".")[0]
    version = getattr(sys.modules.get(root), "__version__", "unknown")
    tf_version = getattr(sys.modules.get("tensorflow"), "__version__", "unknown")
    for stack in STACKS:
        for claim in stack.claims:
            if claim.package != root or not _claims(claim, version):
                continue
            found = claim.found.format(version=version, tf=tf_version, backend=_backend(root))
            if stack.tensorflow and _backend(root) != "tensorflow":
                name = stack.keras.split()[-1]
                raise _unsupported(f"{name} {version} with the {_backend(root)} backend")
            in_range = _in_range(version, _bounds(stack)) and (
                not stack.tensorflow or _in_range(tf_version, tuple(
                    _minor(v) for v in stack.tensorflow)))
            if not in_range:
                raise _unsupported(found)
            return stack, found
    raise _unsupported(f"{root} {version}")


def adapter_for(model):
    """The adapter for ``model``, made as its row of :data:`STACKS` names; TypeError for a
    non-model, UnsupportedVersionError for a version outside :data:`SUPPORTED`."""
    stack, found = stack_of(model)
    module, name = stack.adapter.rsplit(".", 1)
    adapter = getattr(importlib.import_module("keras_lookahead.compat." + module), name)
    return adapter(found, _model_class(model))


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


def _installed():
    """``(row of STACKS, version)`` of the Keras a script gets by default (``import keras``
    where that is Keras 3, else ``tf.keras``; the version is the one the row's range is on).
    The row is None where ``tf.keras`` is Keras 3 but Keras 3 is not selected; ImportError
    without Keras 3 and TensorFlow."""
    if _keras3_installed():
        return _stack("Keras 3"), str(_installed_keras_version())
    import tensorflow as tf
    version = tf.__version__
    if _minor(version) <= _minor(_stack("tf.keras").last):
        return _stack("tf.keras"), version
    # TF 2.16+: tf.keras is tf_keras only with TF_USE_LEGACY_KERAS=1, Keras 3 otherwise
    return (_stack("tf_keras") if _legacy_keras_selected() else None), version


def _wrapper_in_range(stack, version):
    """Whether ``stack`` at ``version`` has a ``LookaheadOptimizer``: in its range, and from
    its ``wrapper_first`` on."""
    return (stack.wrapper is not None and _in_range(version, _bounds(stack))
            and _minor(version) >= _minor(stack.wrapper_first or stack.first))


def _importable(name):
    """Whether ``import name`` can succeed: imported already, or found on the path; not where
    ``sys.modules`` holds None for it (an import is blocked, raising ImportError)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # a module without __spec__ (TensorFlow 1.14's lazy loader)
        return True


def register_optimizer():
    """Import (and so register for ``load_model``) the ``LookaheadOptimizer`` of the installed
    Keras, where its row of :data:`STACKS` has one; otherwise do nothing."""
    try:
        if not _keras3_installed() and not _importable("tensorflow"):
            return
        stack, version = _installed()
        if stack is not None and _wrapper_in_range(stack, version):
            importlib.import_module("keras_lookahead.compat." + stack.wrapper)
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


def _wrapper_ranges():
    """Where a ``LookaheadOptimizer`` exists, as an error words it."""
    texts = []
    for stack in reversed(STACKS):  # the newest first
        if stack.wrapper is None:
            continue
        first = stack.wrapper_first or stack.first
        prefix = {"tf.keras": "tf.keras in TensorFlow ", "Keras 3": "Keras "}.get(
            stack.keras, stack.keras + " ")
        texts.append(f"{prefix}{first} - {stack.last}")
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def lookahead_optimizer_class():
    """The ``LookaheadOptimizer`` class for the installed Keras (tf.keras: the class of its
    default optimizer family; it turns into ``LegacyLookaheadOptimizer`` around a legacy one).
    Where this release has none, a stand-in that raises UnsupportedVersionError when used."""
    try:
        stack, version = _installed()
    except ImportError:
        stack, version = None, None
    if stack is not None and _wrapper_in_range(stack, version):
        return importlib.import_module("keras_lookahead.compat." + stack.wrapper)\
            .LookaheadOptimizer
    if stack is not None and stack.keras == "Keras 3":
        return _unavailable(lambda: _unsupported(f"Keras {version}"))
    found = f"TensorFlow {version}" if version else "no TensorFlow"
    if _legacy_keras_selected():
        found += " with TF_USE_LEGACY_KERAS=1"
    return _unavailable(lambda: UnsupportedVersionError(
        f"LookaheadOptimizer needs {_wrapper_ranges()} in this release; found {found}. On "
        "TensorFlow 1.x and standalone Keras, use Lookahead(k, alpha).inject(model) after "
        "compile, or keras_lookahead.graph.BaseLookAhead. Supported stacks for inject:\n"
        f"{supported_table()}"))



def keras_module():
    """The Keras a script should build models with: the module its installed row of
    :data:`STACKS` names (Keras 3 where it is installed and TF_USE_LEGACY_KERAS is not set,
    else tf_keras / tf.keras)."""
    try:
        stack, _ = _installed()
    except ImportError:
        stack = None
    name = stack.module if stack is not None else "tensorflow.keras"
    if not _importable(name.split(".")[0]):
        name = "tensorflow.keras"
    package, _, attribute = name.partition(".")
    module = importlib.import_module(package)
    return getattr(module, attribute) if attribute else module


def calls_test_hooks_in_fit(model):
    """Whether ``fit`` on ``model``'s Keras calls ``on_test_begin`` / ``on_test_end`` around
    its validation pass: everywhere but standalone Keras 2.2 / 2.3 (its fit validates in a
    loop of its own, without them)."""
    stack, _ = stack_of(model)  # also the supported-version check
    return stack.keras != "standalone Keras"
