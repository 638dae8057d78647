"""The interface between the algorithm (``lookahead.py``, ``callback.py``) and a Keras family.

An adapter translates hooks and nothing else: where the family keeps a model's optimizer and
weights, how values are read and written, which optimizer method takes the update, and how the
cached train function is dropped. The rule itself is in ``keras_lookahead/_rule.py``; the state
(counter, slow weights) is the adapter's state class (``_tf.TFState``, ``_keras3.Keras3State``),
made by :meth:`Adapter.create_state`. ``compat.adapter_for`` picks the adapter from the one table
of stacks (``compat.STACKS``). See ``docs/design.md``, section 3.
"""
import abc


class Adapter(abc.ABC):
    """One Keras family. ``name``: the stack found, as errors print it (e.g. ``tf.keras 2.15.0
    (TensorFlow 2.15.1)``); ``model_class``: the ``Model`` class of the model it serves."""

    def __init__(self, name, model_class):
        self.name = name
        self.model_class = model_class

    @abc.abstractmethod
    def is_compiled(self, model):
        """Whether ``model`` has been compiled (has an optimizer to hook)."""

    @abc.abstractmethod
    def trainable_weights(self, model):
        """The weights the optimizer will be handed, in order."""

    @abc.abstractmethod
    def create_state(self, model, levels, pullback="none"):
        """Lookahead's state for ``model``: a counter and one slow copy per trainable weight
        and level. ``levels``: ``((k, alpha), ...)``, already validated; ``pullback``: what a
        sync does to the inner optimizer's momentum. Raises before making anything if the
        optimizer cannot serve ``pullback``."""

    @abc.abstractmethod
    def prepare(self, model, optimizer, state):
        """Before ``optimizer`` is hooked: give every trainable weight its slow copies in
        ``state`` and make what the family makes ahead (Keras 3: the optimizer is built, the
        state held in it)."""

    @abc.abstractmethod
    def hook(self, optimizer, state):
        """Wrap the method of ``optimizer`` (or of the optimizer it wraps) that applies an
        update, so that the update anchors, counts and syncs ``state``. Returns the
        ``_patch.Patch`` that undoes it."""

    @abc.abstractmethod
    def release(self, model, state):
        """Undo what :meth:`create_state` / :meth:`prepare` attached to the model or optimizer
        (checkpoint dependencies, tracked variables)."""

    @abc.abstractmethod
    def reset_train_function(self, model):
        """Drop the model's cached train function(s), so that the next step is built anew,
        through the hook."""

    @abc.abstractmethod
    def attach_state(self, model):
        """Make the model's variables hold the current values before they are read or written
        outside a step (JAX keeps them apart mid-``fit``); a no-op elsewhere."""

    @abc.abstractmethod
    def steps_per_execution(self, model):
        """How many steps one call of the train function runs (1 where the family has no
        such setting)."""

    @abc.abstractmethod
    def checksum(self, weights):
        """Per weight, a number that changes when training changes it, computed where the
        weights live (one small read): how ``inject`` tells that its hook ran."""

    @abc.abstractmethod
    def get_values(self, variables):
        """The variables' values, as numpy arrays (copies)."""

    @abc.abstractmethod
    def set_values(self, variables, values):
        """Assign ``values`` (numpy arrays) to ``variables``, in order."""
