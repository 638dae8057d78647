"""Where each optimizer keeps its momentum-like state, for ``pullback`` (docs/design.md, section
1), on every Keras: one table and one error. The adapters look a weight's momentum up here
(``_tf.momentum_lookup``, ``_keras3.momentum_variables``)."""
from typing import NamedTuple, Optional


class Momentum(NamedTuple):
    """Where one optimizer class keeps its momentum-like state (first moment, or momentum).

    slot: the ``get_slot`` name on an ``OptimizerV2`` or a ``tf.compat.v1.train`` optimizer.
    tf_attribute: the list (one variable per weight) on a tf.keras 2.11+ / tf_keras optimizer.
    keras3_attribute: the same list on a Keras 3 optimizer.
    needs_momentum: only where its config's ``momentum`` is > 0.
    """
    slot: Optional[str]
    tf_attribute: Optional[str]
    keras3_attribute: Optional[str]
    needs_momentum: bool = False


#: by class name, found on the optimizer's class or a base class of it
MOMENTUM = {
    "SGD": Momentum("momentum", "momentums", "momentums", needs_momentum=True),
    "RMSprop": Momentum("momentum", "_momentums", "_momentums", needs_momentum=True),
    "Adam": Momentum("m", "_momentums", "_momentums"),
    "AdamW": Momentum("m", "_momentums", "_momentums"),
    "Nadam": Momentum("m", "_momentums", "_momentums"),
    "Adamax": Momentum("m", "_m", "_m"),
    "Lion": Momentum(None, "momentums", "_momentums"),
    "Lamb": Momentum(None, None, "_momentums"),
    "MomentumOptimizer": Momentum("momentum", None, None),
    "AdamOptimizer": Momentum("m", None, None),
}


def entry(optimizer, read_config=True):
    """``optimizer``'s row of :data:`MOMENTUM` (its class or the nearest base class in it), or
    None. With ``read_config``, a row that needs momentum is None where the config's
    ``momentum`` is 0 (Keras 3 reads no config: it may be called inside a traced step, where
    Keras 3.0's ``get_config`` cannot read a variable; an empty list of momentums tells)."""
    found = next((MOMENTUM[c.__name__] for c in type(optimizer).__mro__
                  if c.__name__ in MOMENTUM), None)
    if found is not None and found.needs_momentum and read_config:
        config = optimizer.get_config() if hasattr(optimizer, "get_config") else {}
        if not config.get("momentum"):
            return None
    return found


def no_momentum(optimizer, pullback, family):
    """The ValueError for an ``optimizer`` that keeps no momentum-like state ``pullback`` can
    reach on ``family`` (a column of :data:`MOMENTUM`: ``slot``, ``tf_attribute`` or
    ``keras3_attribute``)."""
    names = [name for name, row in MOMENTUM.items()
             if getattr(row, family) is not None and not name.endswith("Optimizer")]
    listed = ", ".join(f"{name} with momentum > 0" if MOMENTUM[name].needs_momentum else name
                       for name in names)
    return ValueError(
        f"`pullback={pullback!r}` acts on the inner optimizer's momentum, but "
        f"{type(optimizer).__name__} keeps no momentum-like state (use {listed}, or "
        f"pullback=\"none\"). Received: pullback={pullback!r}")
