"""Every private name of Keras, TensorFlow and PyTorch that keras_lookahead reads, calls, or
overrides on their objects, per family, with the releases that must have it and why
(``docs/design.md``, section 4).

``tests/test_internals.py`` runs on every env: it checks that each name the running stack should
have is there, of the kind listed, and that the package uses no private name of theirs that is
missing here. A Keras release that renames one fails that test, by name, instead of a trajectory
test far away (or nothing: much of this code falls back quietly where an older release lacks a
name).
"""
from typing import NamedTuple, Optional, Tuple

Version = Tuple[int, int]


class Internal(NamedTuple):
    """One private name.

    family: ``tf.keras`` (tf.keras in TF 1.14 - 2.15 and tf_keras 2.16+, versions of TensorFlow),
        ``standalone`` (standalone Keras 2.2 / 2.3, versions of Keras), ``keras3`` (versions of
        Keras), ``tensorflow`` (any Keras on TensorFlow, versions of TensorFlow).
    owner: what holds the name: ``Model`` (a compiled model), ``OptimizerV2`` (tf.keras' optimizer
        before 2.11, ``keras.optimizers.legacy`` after), ``Optimizer`` (tf.keras 2.11+ / Keras 3,
        built), an optimizer class name (built, for its momentum), ``Operation`` (the class), or
        a module (``module:<dotted path>``).
    kind: ``callable``, ``value`` (an attribute, of the instance or its class), or ``read``
        (keras_lookahead sets it and the owner module's source reads it).
    since, until: the first and last release (major, minor) of the family that must have it;
        None: every supported one.
    backend: Keras 3 only on this backend.
    """
    family: str
    owner: str
    name: str
    kind: str
    why: str
    since: Optional[Version] = None
    until: Optional[Version] = None
    backend: Optional[str] = None


_CHECKPOINT = "make Lookahead's variables a checkpoint dependency of the model, and take it off"
_WRAPPER = "LookaheadOptimizer answers what Keras asks an optimizer as the inner one would"
_PULLBACK = "pullback: the inner optimizer's momentum of a weight"

INTERNALS = (
    # tf.keras and tf_keras (compat/_keras2_tf.py, _tf.py, _tf_optimizer.py, callback.py)
    Internal("tf.keras", "Model", "_collected_trainable_weights", "value",
             "what the v1 compile hands the optimizer, when it differs from trainable_weights",
             until=(2, 1)),
    Internal("tf.keras", "Model", "_distributed_function_cache", "value",
             "the v2 loop's cache of train functions, cleared in place at inject", until=(2, 1)),
    Internal("tf.keras", "Model", "_track_trackable", "callable", _CHECKPOINT),
    Internal("tf.keras", "Model", "_lookup_dependency", "callable", _CHECKPOINT),
    Internal("tf.keras", "Model", "_self_unconditional_checkpoint_dependencies", "value",
             _CHECKPOINT),
    Internal("tf.keras", "Model", "_self_unconditional_dependency_names", "value", _CHECKPOINT),
    Internal("tf.keras", "Model", "_steps_per_execution", "value",
             "the callback refuses several steps per execution", since=(2, 4)),
    Internal("tf.keras", "Model", "_distribution_strategy", "value",
             "Lookahead's variables are made in the model's tf.distribute strategy"),
    Internal("tf.keras", "OptimizerV2", "_create_all_weights", "callable",
             "inject makes the optimizer's state before the first step (one trace, not two); "
             + _WRAPPER, since=(2, 2)),
    Internal("tf.keras", "OptimizerV2", "_compute_gradients", "callable", _WRAPPER),
    Internal("tf.keras", "OptimizerV2", "_clip_gradients", "callable", _WRAPPER,
             since=(2, 2), until=(2, 3)),
    Internal("tf.keras", "OptimizerV2", "_aggregate_gradients", "callable", _WRAPPER,
             since=(2, 2)),
    Internal("tf.keras", "OptimizerV2", "_HAS_AGGREGATE_GRAD", "value", _WRAPPER, since=(2, 2)),
    Internal("tf.keras", "OptimizerV2", "_weights", "value",
             "the wrapper keeps its counter where OptimizerV2 keeps its iterations"),
    Internal("tf.keras", "OptimizerV2", "_name", "value", "the wrapper's config names it"),
    Internal("tf.keras", "OptimizerV2", "_track_trackable", "callable",
             "the wrapper tracks its inner optimizer (saved with it)"),
    Internal("tf.keras", "Optimizer", "_index_dict", "value", _PULLBACK + " (its index)",
             since=(2, 11)),
    Internal("tf.keras", "Optimizer", "_var_key", "callable", _PULLBACK + " (its key)",
             since=(2, 11)),
    Internal("tf.keras", "Optimizer", "_iterations", "value",
             "the wrapper shares the inner optimizer's step count", since=(2, 11)),
    Internal("tf.keras", "Optimizer", "_variables", "value",
             "the wrapper keeps its state where the 2.11+ optimizer keeps its own",
             since=(2, 11)),
    Internal("tf.keras", "Optimizer", "_built", "value", "the wrapper builds once",
             since=(2, 11)),
    Internal("tf.keras", "RMSprop", "_momentums", "value", _PULLBACK, since=(2, 11)),
    Internal("tf.keras", "Adam", "_momentums", "value", _PULLBACK, since=(2, 11)),
    Internal("tf.keras", "Nadam", "_momentums", "value", _PULLBACK, since=(2, 11)),
    Internal("tf.keras", "Adamax", "_m", "value", _PULLBACK, since=(2, 11)),
    # standalone Keras (compat/_keras2_tf.py, _tf.py)
    Internal("standalone", "Model", "_collected_trainable_weights", "value",
             "what compile hands the optimizer, when it differs from trainable_weights"),
    Internal("standalone", "module:keras.backend.tensorflow_backend", "_keras_initialized",
             "read", "set on Lookahead's variables, which standalone Keras would initialise "
                     "again otherwise"),
    # TensorFlow, under any Keras (compat/_tf.py)
    Internal("tensorflow", "module:tensorflow.python.ops.control_flow_util",
             "GraphOrParentsInXlaContext", "callable",
             "whether a step is traced for XLA (TensorFlow's own test)"),
    Internal("tensorflow", "module:tensorflow.python.framework.ops",
             "executing_eagerly_outside_functions", "callable",
             "TF2's function-building mode, where TF 1.14 / 1.15 lack the public name"),
    Internal("tensorflow", "Operation", "_add_control_input", "callable",
             "the update's writes ordered after the anchor, and nothing else"),
    # Keras 3 (compat/_keras3.py, _keras3_optimizer.py)
    Internal("keras3", "Optimizer", "_trainable_variables", "value",
             "the weights apply updates when none are passed"),
    Internal("keras3", "Optimizer", "_variables", "value",
             "the wrapper's own variables, beside the inner optimizer's"),
    Internal("keras3", "Optimizer", "_iterations", "value",
             "the raw count of apply calls, under gradient accumulation", since=(3, 5)),
    Internal("keras3", "Optimizer", "_get_variable_index", "callable", _PULLBACK + " (its index)"),
    Internal("keras3", "Optimizer", "_untrack_variable", "callable",
             "Lookahead's state moves to another optimizer at recompile", since=(3, 3)),
    Internal("keras3", "Optimizer", "_tracker", "value",
             "Lookahead's state moves to another optimizer at recompile (before "
             "_untrack_variable)", until=(3, 2)),
    Internal("keras3", "Optimizer", "_distribution_strategy", "value",
             "Lookahead's variables are made in the optimizer's tf.distribute strategy",
             backend="tensorflow"),
    Internal("keras3", "Model", "jax_state_sync", "callable",
             "mid-fit on JAX the state lives outside the variables: put back before reading",
             backend="jax"),
    Internal("keras3", "RMSprop", "_momentums", "value", _PULLBACK),
    Internal("keras3", "Adam", "_momentums", "value", _PULLBACK),
    Internal("keras3", "AdamW", "_momentums", "value", _PULLBACK),
    Internal("keras3", "Nadam", "_momentums", "value", _PULLBACK),
    Internal("keras3", "Lion", "_momentums", "value", _PULLBACK),
    Internal("keras3", "Adamax", "_m", "value", _PULLBACK),
    Internal("keras3", "module:torch", "_foreach_lerp_", "callable",
             "the fused in-place sync on PyTorch", backend="torch"),
    Internal("keras3", "module:torch", "_foreach_copy_", "callable",
             "the fused in-place sync on PyTorch", backend="torch"),
)


def expected(family, version, backend=None):
    """The entries of ``family`` that a stack at ``version`` ((major, minor) of TensorFlow for
    ``tf.keras`` and ``tensorflow``, of Keras for ``standalone`` and ``keras3``) on ``backend``
    (Keras 3) must have."""
    return [entry for entry in INTERNALS
            if entry.family == family
            and (entry.since is None or version >= entry.since)
            and (entry.until is None or version <= entry.until)
            and (entry.backend is None or entry.backend == backend)]
