"""Lookahead optimizer (Zhang et al. 2019, arXiv 1907.08610) for every Keras.

    model.compile(optimizer="adam", loss="mse")
    Lookahead(k=5, alpha=0.5).inject(model)
    model.fit(x, y)
"""
from keras_lookahead import compat
from keras_lookahead.compat import SUPPORTED, UnsupportedVersionError, supported_table
from keras_lookahead.callback import LookaheadCallback, ValidateOnSlowWeights
from keras_lookahead.lookahead import (Lookahead, NestedLookahead, get_state, remove, set_state,
                                       slow_weights)

__version__ = "0.1.0"

__all__ = ["Lookahead", "NestedLookahead", "LookaheadOptimizer", "LookaheadCallback",
           "ValidateOnSlowWeights", "remove", "get_state", "set_state",
           "slow_weights", "SUPPORTED", "UnsupportedVersionError", "supported_table", "__version__"]

# With Keras 3 installed, register LookaheadOptimizer now, so that load_model finds it.
compat.register_optimizer()


def __getattr__(name):
    # LookaheadOptimizer is a class of the installed Keras; resolved on first use.
    if name == "LookaheadOptimizer":
        return compat.lookahead_optimizer_class()
    raise AttributeError("module 'keras_lookahead' has no attribute {!r}".format(name))
