"""``LookaheadOptimizer`` for tf.keras (TensorFlow 2.x) and tf_keras.

Two optimizer families live there: ``OptimizerV2`` (every tf.keras 2.x optimizer up to 2.10, then
``tf.keras.optimizers.legacy``) and the optimizer of 2.11+ (``tf.keras.optimizers.Optimizer`` from
2.11, and tf_keras). The wrapper is one body (:class:`_Wrapper`) on either base; the class is
picked from the inner optimizer's family, so ``LookaheadOptimizer(legacy.SGD())`` on 2.11+ is an
``OptimizerV2`` that Keras' own loss-scale optimizer can wrap.

Built like Keras' own loss-scale optimizers: ``apply_gradients`` calls the inner optimizer's, then
counts the update and syncs with the same ``TFState`` as ``inject``. The counter and slow weights
are the wrapper's own variables (``add_weight`` / ``add_slot`` on ``OptimizerV2``, ``_variables``
on the new optimizer), so they are listed in ``weights`` / ``variables`` and saved with it.
``learning_rate`` (``lr``) and ``iterations`` are the inner optimizer's.
"""
import tensorflow as tf

from keras_lookahead._validation import (ALPHA_DEFAULT, K_DEFAULT, TFA_NAMES, check_pullback,
                                         lookahead_arguments)
from keras_lookahead.compat import _tf
from keras_lookahead.compat._passthrough import InnerPassThrough

# 2.11+ (and tf_keras): the default optimizers are the new family, OptimizerV2 is in `legacy`
# (2.9 and 2.10 have a `legacy` too, of OptimizerV2 subclasses, next to an OptimizerV2 default).
_NEW = (tf.keras.optimizers.Optimizer
        if hasattr(tf.keras.optimizers.Optimizer, "add_variable_from_reference") else None)
_V2 = next(c for c in (tf.keras.optimizers.legacy.SGD if _NEW else tf.keras.optimizers.SGD)
           .__mro__ if c.__name__ == "OptimizerV2")


# What a Keras optimizer takes that belongs on the inner one.
_BASE_ARGUMENTS = ("clipnorm", "clipvalue", "global_clipnorm", "decay", "weight_decay",
                   "use_ema", "ema_momentum", "ema_overwrite_frequency", "jit_compile")


def _slow_name(level):
    """The slow copy of one level: ``slow``, then ``slow1``, ``slow2``, ... (as ``inject``)."""
    suffix = level or ""
    return f"slow{suffix}"


def _register(cls):
    # TF 2.0 - 2.2 serialize() writes the bare class name, later ones the registered name
    tf.keras.utils.get_custom_objects()[cls.__name__] = cls
    register = getattr(tf.keras.utils, "register_keras_serializable", None)
    if register is None:  # TF 2.0
        return cls
    return register(package="keras_lookahead", name=cls.__name__)(cls)


_CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


def _from_addons_config(config):
    """TF Addons' ``Lookahead`` config as our arguments. TF Addons clips the gradients by its
    own ``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` and then runs the inner optimizer's
    update rule, never the inner optimizer's clipping; ours calls the inner optimizer's
    ``apply_gradients``, so the clipping TF Addons applied becomes the inner optimizer's."""
    config = dict(config)
    clipping = {key: config.pop(key) for key in _CLIPPING if key in config}
    inner = config["optimizer"]
    if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
        inner_config = {k: v for k, v in inner["config"].items() if k not in _CLIPPING}
        inner_config.update((k, v) for k, v in clipping.items() if v is not None)
        config["optimizer"] = dict(inner, config=inner_config)
    else:  # not as TF Addons writes it: clipping set on the wrapper is refused by its name
        config.update((k, v) for k, v in clipping.items() if v is not None)
    return config


def _get_optimizer(optimizer):
    if isinstance(optimizer, (_V2,) + ((_NEW,) if _NEW else ())):
        return optimizer
    try:
        found = tf.keras.optimizers.get(optimizer)
    except (ValueError, TypeError) as error:
        found = error
    if not isinstance(found, (_V2,) + ((_NEW,) if _NEW else ())):
        error = f" ({found})" if isinstance(found, Exception) else ""
        raise ValueError(
            f"`optimizer` must be a tf.keras optimizer (TensorFlow {tf.__version__}), its name or "
            f"its config. Received: optimizer={optimizer!r}{error}")
    return found


class _Wrapper(InnerPassThrough):
    """What both families' ``LookaheadOptimizer`` share (mixed in before the Keras base)."""

    # from_config sets it on an optimizer made from TF Addons' config: set_weights then reads
    # TF Addons' order of weights (HDF5 files it saved)
    _tfa_layout = False

    def __init__(self, optimizer, k=K_DEFAULT, alpha=ALPHA_DEFAULT, pullback="none",
                 name="Lookahead", **kwargs):
        k, alpha = lookahead_arguments(k, alpha, kwargs)
        pullback = check_pullback(pullback)
        optimizer = _get_optimizer(optimizer)
        self._init_base(name, optimizer)
        self._optimizer = optimizer
        self._wrap(optimizer, k, alpha, pullback, kwargs)

    def _wrap(self, optimizer, k, alpha, pullback, kwargs):
        for argument in sorted(kwargs):
            value = kwargs[argument]
            hint = ("set it on the inner optimizer" if argument in _BASE_ARGUMENTS
                    else "it takes optimizer, k, alpha, pullback and name")
            raise ValueError(
                f"LookaheadOptimizer does not take `{argument}`: {hint}. Received: "
                f"{argument}={value!r}")
        if hasattr(optimizer, "_lookahead"):
            raise ValueError(
                "`optimizer` must not be a LookaheadOptimizer: Lookahead inside Lookahead is "
                "NestedLookahead(k, alpha, s, h).inject(model), with s inner syncs per outer one "
                f"and h the outer step size. Received: optimizer={optimizer!r}")
        if hasattr(optimizer, "inner_optimizer"):
            kind = type(optimizer).__name__
            raise ValueError(
                f"`optimizer` must be a plain optimizer, not a wrapper such as {kind}: wrap the "
                "LookaheadOptimizer in it instead (Keras does so itself under a mixed_float16 "
                f"policy). Received: optimizer={optimizer!r}")
        self.k, self.alpha, self.pullback = k, alpha, pullback
        self._momentum_of = (None if pullback == "none"
                             else _tf.momentum_lookup(optimizer, pullback))
        self._lookahead = None

    @property
    def inner_optimizer(self):
        return self._optimizer

    def _ensure_lookahead(self, weights):
        """Create (or extend to new weights) the state, outside any function being traced."""
        with tf.init_scope():
            if self._lookahead is None:
                self._lookahead = _tf.TFState(((self.k, self.alpha),), weights, self,
                                              self.pullback)
                self._lookahead.momentum_of = self._momentum_of
            else:
                self._lookahead.prepare(weights)

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        if not grads_and_vars:
            return self._optimizer.apply_gradients(grads_and_vars, *args, **kwargs)
        self._ensure_lookahead([v for _, v in grads_and_vars])
        return _tf.apply_gradients_hook(self._optimizer.apply_gradients, self._lookahead)(
            grads_and_vars, *args, **kwargs)

    @property
    def lr(self):
        return self._optimizer.learning_rate

    @lr.setter
    def lr(self, value):
        self._optimizer.learning_rate = value

    def slow_weights(self, variables=None, level=0):
        """The slow copies of ``variables`` (default: every weight the optimizer updated)."""
        if self._lookahead is None:
            raise ValueError("The LookaheadOptimizer has not applied any update yet, so it "
                             "has no slow weights.")
        if variables is None:
            variables = self._lookahead.weights()
        return self._lookahead.slow_weights(variables, level)

    def get_config(self):
        return {"name": self._name_for_config(), "k": self.k, "alpha": self.alpha,
                "pullback": self.pullback,
                "optimizer": tf.keras.optimizers.serialize(self._optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Our config, or TF Addons' (``tfa.optimizers.Lookahead.get_config()``: ``optimizer``,
        ``sync_period``, ``slow_step_size``, ``name``): that one always makes the
        ``OptimizerV2`` wrapper, as TF Addons wraps only those."""
        config = dict(config)
        config.pop("is_legacy_optimizer", None)  # added by tf.keras 2.12+ serialize()
        from_addons = any(theirs in config for _, theirs in TFA_NAMES)
        if from_addons:
            cls, config = LegacyLookaheadOptimizer, _from_addons_config(config)
        config["optimizer"] = cls._deserialize(config["optimizer"], custom_objects)
        optimizer = cls(**config)
        if from_addons:
            optimizer._as_tf_addons()
        return optimizer


class _V2Wrapper(_Wrapper, _V2):
    """On ``OptimizerV2``: the state is the wrapper's weight and slots."""

    _NEEDS_LEGACY_FLAG = _NEW is not None

    def _init_base(self, name, optimizer):
        _V2.__init__(self, name)
        self._track_trackable(optimizer, "inner_optimizer")

    def _name_for_config(self):
        return self._name

    @classmethod
    def _deserialize(cls, config, custom_objects):
        if cls._NEEDS_LEGACY_FLAG:
            return tf.keras.optimizers.deserialize(config, custom_objects=custom_objects,
                                                   use_legacy_optimizer=True)
        return tf.keras.optimizers.deserialize(config, custom_objects=custom_objects)

    def _as_tf_addons(self):
        """Made from TF Addons' config: read TF Addons' saved state. Its HDF5 list of weights
        (``set_weights``); its checkpoint names (a SavedModel's ``variables/variables``,
        restored with ``model.load_weights``): the inner optimizer is ``lh_base_optimizer``
        and TF Addons' step count ``iter``, which is the inner ``iterations`` there as here;
        the slow copies are ``slow`` slots in both. TF Addons syncs by that step count, so
        our counter starts from it (:meth:`counter`)."""
        self._tfa_layout = True
        self._track_trackable(self._optimizer, "lh_base_optimizer")
        self._track_trackable(self._optimizer.iterations, "iter")

    # the store TFState makes its variables with
    def counter(self, like):
        start = 0
        if self._tfa_layout:  # restored from TF Addons' checkpoint by now, or still 0
            start = int(tf.keras.backend.get_value(self._optimizer.iterations))
        counter = self.add_weight("lookahead_counter", shape=[], dtype=tf.int64,
                                  initializer=tf.keras.initializers.Constant(start)
                                  if start else "zeros",
                                  trainable=False,
                                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self._weights.append(counter)  # as OptimizerV2 does for its iterations
        return counter

    def slows(self, weights, levels, copy):
        return [[self.add_slot(w, _slow_name(level), initializer=_tf._initial_slow(w, copy))
                 for level in range(levels)] for w in weights]

    def cached(self, weights):
        return [self.add_slot(w, "cached_momentum", initializer="zeros") for w in weights]

    # what Keras reads from an OptimizerV2, delegated where the inner optimizer decides
    @property
    def weights(self):
        return self._optimizer.weights + self._weights

    def variables(self):
        return self.weights

    def set_weights(self, weights):
        weights = list(weights)
        if self._tfa_layout and self._lookahead is not None:
            weights = self._from_addons_layout(weights)
        _V2.set_weights(self, weights)

    def _from_addons_layout(self, weights):
        """TF Addons' ``Lookahead.weights`` (what its HDF5 files hold) in our order. Theirs:
        its ``iterations`` (which it hands the inner optimizer as its step count, and syncs
        by), one ``slow`` copy per weight, then the inner optimizer's weights without an
        ``iterations`` of their own. Ours: the inner optimizer's weights (``iterations``
        first), our counter, the slow copies; TF Addons' step count becomes both the inner
        ``iterations`` and the counter. Told apart by length alone (theirs is one shorter), so
        that our own list is never misread; anything else is left for the base class to check.
        (An inner optimizer that had made its own ``iterations`` before TF Addons wrapped it
        would add one to theirs: not read.)"""
        inner, own = self._optimizer.weights, self._weights
        slows = len(own) - 1
        if self.pullback != "none" or len(weights) != len(inner) + slows:
            return weights
        step = weights[0]
        return [step] + weights[1 + slows:] + [step] + weights[1:1 + slows]

    def _create_all_weights(self, var_list):
        self._optimizer._create_all_weights(var_list)
        self._ensure_lookahead(list(var_list))

    def get_gradients(self, loss, params):
        return self._optimizer.get_gradients(loss, params)

    def _compute_gradients(self, *args, **kwargs):
        return self._optimizer._compute_gradients(*args, **kwargs)

    def _clip_gradients(self, grads):
        return self._optimizer._clip_gradients(grads)

    def _aggregate_gradients(self, grads_and_vars):
        return self._optimizer._aggregate_gradients(grads_and_vars)

    @property
    def _HAS_AGGREGATE_GRAD(self):
        return getattr(self._optimizer, "_HAS_AGGREGATE_GRAD", False)


if _NEW is not None:
    class _NewWrapper(_Wrapper, _NEW):
        """On the 2.11+ optimizer: the state is in the wrapper's ``_variables``."""

        def __new__(cls, optimizer=None, *args, **kwargs):
            if isinstance(optimizer, _V2):
                # a legacy inner optimizer: the OptimizerV2 wrapper, which Keras can loss-scale
                return LegacyLookaheadOptimizer(optimizer, *args, **kwargs)
            return super().__new__(cls)

        def _init_base(self, name, optimizer):
            _NEW.__init__(self, name)
            # The inner optimizer's step count, tracked here too: a SavedModel revives every
            # optimizer in it as a plain one that makes an `_iterations` of its own, which
            # must find a saved value (the same variable, so saved once).
            self._iterations = optimizer.iterations

        def _name_for_config(self):
            return self.name

        @classmethod
        def _deserialize(cls, config, custom_objects):
            return tf.keras.optimizers.deserialize(config, custom_objects=custom_objects,
                                                   use_legacy_optimizer=False)

        def _create_iteration_variable(self):
            """None of its own: ``iterations`` is the inner optimizer's."""

        # the store TFState makes its variables with
        def counter(self, like):
            counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="lookahead_counter")
            self._variables.append(counter)
            return counter

        def slows(self, weights, levels, copy):
            return [[self.add_variable_from_reference(w, _slow_name(level),
                                                      initial_value=_tf._initial_slow(w, copy))
                     for level in range(levels)] for w in weights]

        def cached(self, weights):
            return [self.add_variable_from_reference(w, "cached_momentum") for w in weights]

        def build(self, var_list):
            self._optimizer.build(var_list)
            self._ensure_lookahead(list(var_list))
            self._built = True

        def _all_variables(self):
            inner = self._optimizer.variables
            return list(inner() if callable(inner) and not isinstance(inner, list) else inner) \
                + list(self._variables)

        if isinstance(getattr(_NEW, "variables"), property):
            variables = property(_all_variables)
        else:  # 2.11: a method
            def variables(self):
                return self._all_variables()

        def set_weights(self, weights):
            for variable, value in zip(self._all_variables(), weights):
                variable.assign(value)

        def finalize_variable_values(self, var_list):
            self._optimizer.finalize_variable_values(var_list)


_DOC = """Lookahead (Zhang et al., 2019) around a tf.keras optimizer.

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
            optimizer's momentum, as in ``Lookahead``.
        name: the optimizer's name.

    ``from_config`` also reads TF Addons' ``Lookahead`` config, and on tf.keras 2.x ``load_model``
    reads models saved with it (registered as ``Addons>Lookahead``): the README's "Coming from
    TF Addons".
    """

if _NEW is not None:
    @_register
    class LookaheadOptimizer(_NewWrapper):
        __doc__ = _DOC

    @_register
    class LegacyLookaheadOptimizer(_V2Wrapper):
        __doc__ = _DOC
else:
    @_register
    class LookaheadOptimizer(_V2Wrapper):
        __doc__ = _DOC

    LegacyLookaheadOptimizer = LookaheadOptimizer


def _register_for_tf_addons():
    """Make ``load_model`` read models saved with TF Addons' ``Lookahead`` (registered as
    ``Addons>Lookahead``) without TF Addons: as ``LegacyLookaheadOptimizer``, the wrapper of the
    family TF Addons wraps (``OptimizerV2``). Only on tf.keras 2.x: TF Addons ended with
    TensorFlow 2.15. Never over TF Addons' own class (imported first, it stays; imported after,
    it replaces ours). tf.keras before 2.13 refuses to register a second class under one name
    (``register_keras_serializable`` raises), so that registering ours there would make a later
    ``import tensorflow_addons`` fail: there it is registered only where TF Addons is not
    installed (else ``custom_objects={"Addons>Lookahead": LookaheadOptimizer}``)."""
    from keras_lookahead.compat import _importable, _installed, _minor
    stack, _ = _installed()
    if stack is None or stack.keras != "tf.keras":  # tf_keras (TF 2.16+): after TF Addons
        return
    objects = tf.keras.utils.get_custom_objects()
    if ADDONS_NAME in objects:
        return
    if _minor(tf.__version__) < (2, 13) and _importable("tensorflow_addons"):
        return
    objects[ADDONS_NAME] = LegacyLookaheadOptimizer


#: the name TF Addons registered its ``Lookahead`` under
ADDONS_NAME = "Addons>Lookahead"
_register_for_tf_addons()
