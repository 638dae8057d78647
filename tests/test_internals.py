"""The private names keras_lookahead relies on (``keras_lookahead/compat/_internals.py``) are
there on this stack, of the kind listed; and the package uses no private name of Keras,
TensorFlow or PyTorch that the inventory misses. A release that renames one fails here, by name."""
import ast
import importlib
import inspect
import os

import pytest

import keras_lookahead
from keras_lookahead import compat
from keras_lookahead.compat import _internals

# what fit's path or the optimizer family changes nothing here: once per pytest run
pytestmark = [pytest.mark.core, pytest.mark.once]


def _owners(stack, data):
    """The objects that hold the names, on this stack (those it has)."""
    _, _, w0 = data
    keras = stack.keras
    model = stack.compile(stack.mlp(w0), stack.sgd(0.1, momentum=0.9))
    weights = model.trainable_weights
    owners = {"Model": model}
    if stack.tf is not None or stack.backend == "tensorflow":
        owners["Operation"] = __import__("tensorflow").Operation
    optimizers = keras.optimizers
    if stack.family == "tf":
        legacy = getattr(optimizers, "legacy", None)
        v2 = (legacy or optimizers).SGD(learning_rate=0.1, momentum=0.9)
        if hasattr(v2, "_create_slots"):  # OptimizerV2 (2.11+: the legacy module)
            owners["OptimizerV2"] = v2
    if stack.family == "keras3" or (stack.family == "tf" and stack.tf_minor >= (2, 11)):
        owners["Optimizer"] = optimizers.SGD(learning_rate=0.1, momentum=0.9)
        owners["Optimizer"].build(weights)
        for name in ("RMSprop", "Adam", "AdamW", "Nadam", "Lion", "Adamax"):
            cls = getattr(optimizers, name, None)
            if cls is not None:
                owners[name] = cls(learning_rate=0.1, **(
                    {"momentum": 0.9} if name == "RMSprop" else {}))
                owners[name].build(weights)
    return owners


def _expected(stack):
    """The inventory's entries for this stack."""
    if stack.family == "keras3":
        found = _internals.expected("keras3", stack.keras_minor, stack.backend)
        if stack.backend == "tensorflow":
            import tensorflow as tf
            found += _internals.expected("tensorflow", compat._minor(tf.__version__))
        return found
    if stack.family == "standalone":
        found = _internals.expected("standalone", stack.keras_minor)
    else:
        found = _internals.expected("tf.keras", stack.tf_minor)
    return found + _internals.expected("tensorflow", stack.tf_minor)


def test_every_private_name_is_there(stack, data):
    owners = _owners(stack, data)
    expected = _expected(stack)
    assert expected, f"no entry for {stack.label}: the test would show nothing"
    missing = []
    for entry in expected:
        if entry.owner.startswith("module:"):
            owner = importlib.import_module(entry.owner[len("module:"):])
        else:
            owner = owners[entry.owner]  # KeyError: the test lacks an owner the table names
        if entry.kind == "read":
            ok = entry.name in inspect.getsource(owner)
        else:
            ok = hasattr(owner, entry.name) and (
                callable(getattr(owner, entry.name)) == (entry.kind == "callable"))
        if not ok:
            missing.append(f"{entry.owner}.{entry.name} ({entry.kind}): {entry.why}")
    assert not missing, f"{stack.label}: gone or changed kind:\n  " + "\n  ".join(missing)


def _private_names_used():
    """Private attribute names the package reads, calls or sets on objects (``x._name``,
    ``getattr(x, "_name")``), and those it defines itself (functions, classes, attributes it
    assigns)."""
    used, own = set(), set()
    root = os.path.dirname(keras_lookahead.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(folder, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    own.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    own.add(node.id)  # module constants and class attributes of ours
                elif isinstance(node, ast.Attribute):
                    (own if isinstance(node.ctx, ast.Store) else used).add(node.attr)
                elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                        "getattr", "hasattr", "setattr") and len(node.args) > 1:
                    name = node.args[1]  # a Constant from Python 3.8; a Str (.s) on 3.7
                    value = name.value if hasattr(name, "value") else getattr(name, "s", None)
                    if isinstance(value, str):
                        used.add(value)

    def private(n):
        return n.startswith("_") and not n.startswith("__") and n != "_"

    return {n for n in used if private(n)}, own


def test_the_inventory_is_complete():
    used, own = _private_names_used()
    listed = {entry.name for entry in _internals.INTERNALS}
    unlisted = sorted(used - own - listed)
    assert not unlisted, ("private names of Keras / TensorFlow / PyTorch used but missing from "
                          f"compat/_internals.py: {unlisted}")
