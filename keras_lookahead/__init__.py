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


def _check_namesake(paths=None):
    """Warn if the registry's ``keras-lookahead`` (an unrelated project that installs the same
    import package) is installed too: the two overwrite each other's files."""
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7: no importlib.metadata; nothing to check with
        return
    where = {"path": paths} if paths is not None else {}
    for dist in metadata.distributions(name="keras-lookahead", **where):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") == "keras-lookahead":
            import warnings
            warnings.warn(
                "Two distributions install the import package keras_lookahead: lookahead-keras "
                f"(this library) and keras-lookahead {dist.version} (an unrelated project, with "
                "Lookahead(optimizer, sync_period, slow_step)). Their files overwrite each "
                "other. Run `pip uninstall keras-lookahead`, then `pip install "
                "--force-reinstall lookahead-keras` (or `pip install --force-reinstall .` from "
                "a clone).", stacklevel=2)
            return


_check_namesake()


def __getattr__(name):
    # LookaheadOptimizer is a class of the installed Keras; resolved on first use.
    if name == "LookaheadOptimizer":
        return compat.lookahead_optimizer_class()
    raise AttributeError(f"module 'keras_lookahead' has no attribute {name!r}")
