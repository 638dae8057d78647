"""``LookaheadOptimizer`` for Keras 3: Lookahead as an optimizer that wraps another.

Built like Keras' own ``LossScaleOptimizer``: the wrapper applies nothing itself; ``apply`` calls
the inner optimizer's ``apply`` and then counts the update and syncs, with the same state and sync
as ``inject`` (``Keras3State``), held as the wrapper's own variables. ``stateless_apply`` (JAX)
is the base class's: it maps the wrapper's variables, which list the inner ones, and calls
``apply`` in a ``StatelessScope``. ``learning_rate`` and ``iterations`` are the inner optimizer's.
"""
import keras

from keras_lookahead._validation import (ALPHA_DEFAULT, K_DEFAULT, check_pullback,
                                         lookahead_arguments)
from keras_lookahead.compat._keras3 import Keras3State, update_applied
from keras_lookahead.compat._passthrough import InnerPassThrough

_BASE_ARGUMENTS = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
                   "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                   "gradient_accumulation_steps")


@keras.saving.register_keras_serializable(package="keras_lookahead", name="LookaheadOptimizer")
class LookaheadOptimizer(InnerPassThrough, keras.optimizers.Optimizer):
    """Lookahead (Zhang et al., 2019) around any Keras 3 optimizer.

    The inner optimizer takes the fast steps; after every ``k``-th update it applies, the slow
    weights (copies of the weights as the first update finds them) move
    ``slow += alpha * (fast - slow)`` and the weights are reset to them.

    Args:
        optimizer: the inner optimizer: an instance, a name (``"adam"``) or a config dict.
        k: int >= 1, inner updates between two syncs (TF Addons' ``sync_period``, also
            taken under that name).
        alpha: float in [0, 1], the slow weights' step size (TF Addons' ``slow_step_size``,
            also taken under that name).
        pullback: ``"none"``, ``"reset"`` or ``"pullback"``: what each sync does to the inner
            optimizer's momentum, as in ``Lookahead`` (checked when the optimizer is built).
        name: the optimizer's name.

    Example:
        >>> model.compile(optimizer=LookaheadOptimizer("adam", k=5, alpha=0.5), loss="mse")
    """

    def __init__(self, optimizer, k=K_DEFAULT, alpha=ALPHA_DEFAULT, pullback="none",
                 name="lookahead", **kwargs):
        k, alpha = lookahead_arguments(k, alpha, kwargs)
        pullback = check_pullback(pullback)
        for argument in _BASE_ARGUMENTS:
            if kwargs.get(argument) not in (None, False) and not (
                    argument == "ema_momentum" and kwargs[argument] == 0.99):
                value = kwargs[argument]
                raise ValueError(
                    f"LookaheadOptimizer does not take `{argument}`: set it on the inner "
                    f"optimizer. Received: {argument}={value!r}")
            kwargs.pop(argument, None)
        for argument in sorted(kwargs):
            value = kwargs[argument]
            raise ValueError(
                f"LookaheadOptimizer does not take `{argument}`: it takes optimizer, k, alpha, "
                f"pullback and name. Received: {argument}={value!r}")
        inner = _get_optimizer(optimizer)
        if isinstance(inner, LookaheadOptimizer):
            raise ValueError(
                "`optimizer` must not be a LookaheadOptimizer: Lookahead inside Lookahead is "
                "NestedLookahead(k, alpha, s, h).inject(model), with s inner syncs per outer one "
                f"and h the outer step size. Received: optimizer={inner!r}")
        if getattr(inner, "inner_optimizer", None) is not None:
            kind = type(inner).__name__
            raise ValueError(
                f"`optimizer` must be a plain optimizer, not a wrapper such as {kind}: wrap the "
                f"LookaheadOptimizer in it instead ({kind}(LookaheadOptimizer(...)); Keras does "
                f"so itself under a mixed_float16 policy). Received: optimizer={inner!r}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner
        self.k, self.alpha, self.pullback = k, alpha, pullback
        self._lookahead = Keras3State(((k, alpha),), pullback=pullback)

    @InnerPassThrough.iterations.setter
    def iterations(self, variable):
        if "inner_optimizer" not in vars(self):
            # Keras 3.0 - 3.4: the base class's __init__ sets its own counter as `iterations`
            # (later ones as `_iterations`); the wrapper keeps it, and counts nothing with it.
            self._own_iterations = variable
            return
        self.inner_optimizer.iterations = variable

    def build(self, var_list):
        var_list = list(var_list)
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        self._lookahead.hold_in(self, var_list, self.inner_optimizer)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return
        if not self.built:
            self.build(trainable_variables)
        weights = (self._trainable_variables if trainable_variables is None
                   else list(trainable_variables))
        self._lookahead.apply(
            weights, lambda: self.inner_optimizer.apply(grads, trainable_variables),
            lambda: update_applied(self.inner_optimizer))

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def slow_weights(self, variables=None, level=0):
        """The slow copies of ``variables`` (default: every weight the optimizer updates)."""
        if variables is None:
            variables = self._trainable_variables
        return self._lookahead.slow_weights(variables, level)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "k": self.k,
            "alpha": self.alpha,
            "pullback": self.pullback,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects)
        return cls(**config)


def _get_optimizer(optimizer):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    try:
        found = keras.optimizers.get(optimizer)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`optimizer` must be a Keras {keras.__version__} optimizer, its name or its config. "
            f"Received: optimizer={optimizer!r} ({error})")
    if not isinstance(found, keras.optimizers.Optimizer):
        raise ValueError(
            f"`optimizer` must be a Keras {keras.__version__} optimizer, its name or its config. "
            f"Received: optimizer={optimizer!r}")
    return found
